"""Where a customer lives when an environment is split over N shards (SCL-1..SCL-6).

A customer's *tag* is 32 bits of BLAKE2b over `environment NUL customerReferenceId` (SCL-1):
stable across processes, machines and Python versions, unlike `hash()`, which is salted per
process. Its shard is `tag mod N` (SCL-2). Every id a shard mints for a customer (the
customer's own id, its subscriptions, invoices, credit notes, credit pools, and the ULIDs of
its OpenMeter entitlements and grants) carries the customer's tag in its low 32 bits (SCL-3),
so the router finds the shard of any such id in O(1) without asking anyone, and still finds
it after a reshard to M shards: the tag does not change, only the modulus (SCL-4).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid

from allotment.runtime.ids import IdSource
from allotment.runtime.ids import new_id as process_ids

__all__ = ("IdMint", "placement_tag", "shard_of", "tag_of_id", "tag_of_ulid")

TAG_BITS = 32
TAG_MASK = (1 << TAG_BITS) - 1
_CROCKFORD = {c: i for i, c in enumerate("0123456789ABCDEFGHJKMNPQRSTVWXYZ")}


def placement_tag(environment: str, reference: str) -> int:
    """SCL-1: the stable 32-bit hash of a customer's environment and reference id."""
    digest = hashlib.blake2b(
        f"{environment}\x00{reference}".encode(), digest_size=TAG_BITS // 8
    ).digest()
    return int.from_bytes(digest, "big")


def shard_of(tag: int, shards: int) -> int:
    """SCL-2: the shard of a tag among `shards`."""
    return tag % shards


def tag_of_id(entity_id: uuid.UUID) -> int:
    """SCL-3: the tag a shard-minted UUID carries (its low 32 bits)."""
    return entity_id.int & TAG_MASK


def tag_of_ulid(text: str) -> int | None:
    """SCL-3: the tag of a shard-minted ULID (OpenMeter entitlement and grant ids), whose low
    80 bits are a minted UUID's; None when `text` is not a ULID."""
    if len(text) != 26:
        return None
    number = 0
    for char in text.upper():
        value = _CROCKFORD.get(char)
        if value is None:
            return None
        number = (number << 5) | value
    return number & TAG_MASK


class IdMint:
    """The ids one shard of N mints: fresh UUIDs (`ids`, the process's cheap source by
    default) whose low 32 bits are the tag of the customer whose turn is running (`tag`, set
    by the turn before it decides, SCL-3).

    A customer without a reference id (an OpenMeter customer created without a key) gets a
    random tag that places it on this very shard (`tag mod N == index`, SCL-5), so it never
    has to move before its first turn."""

    __slots__ = ("_ids", "environment", "index", "shards", "tag")

    def __init__(
        self,
        environment: str,
        index: int,
        shards: int,
        ids: IdSource = process_ids,
    ) -> None:
        assert 0 <= index < shards
        self.environment = environment
        self.index = index
        self.shards = shards
        self.tag = 0
        self._ids = ids

    def new_id(self) -> uuid.UUID:
        return self._ids.tagged(self.tag)

    def customer_id(self, reference: str | None) -> uuid.UUID:
        """A new customer's id, and from now on the tag of its turns' ids."""
        if reference is not None:
            self.tag = placement_tag(self.environment, reference)
        else:
            spread = secrets.randbelow((TAG_MASK - self.index) // self.shards + 1)
            self.tag = self.index + spread * self.shards
        return self.new_id()
