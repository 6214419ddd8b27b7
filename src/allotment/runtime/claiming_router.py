"""The router's calls that claim a key environment-wide before the customer's own turn
(docs/scale-out.md SCL-81..SCL-88): an event's idempotency key, a reservation id, the event keys
a commit records, a CloudEvent's (source, id). Each key is claimed on its home shard
(`EnvironmentWide`, runtime/environment_wide.py), so that a customer of another shard cannot
use it too, and given back when the turn refused it, as in one process.

`ShardRouter` (runtime/sharding.py) is this router with the calls that need no claim.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

import msgspec

from allotment.domain.cloud_usage import dedup_key
from allotment.domain.commands import CommitReservation, Preflight, RecordUsage, Reserve
from allotment.domain.meters import CloudEvent
from allotment.domain.replies import Rejected, Reply
from allotment.runtime.environment_wide import DUPLICATE, commit_keys, holds, per_shard
from allotment.runtime.key_claims import reservation_key
from allotment.runtime.ports import CustomerLookup, KeyClaim, Projector, Shard
from allotment.runtime.reservations import (
    SettleCommand,
    not_this_customers,
    reservation_not_found,
    reservation_taken,
)
from allotment.runtime.router_reach import RouterReach, exists

__all__ = ("ClaimingRouter",)

T = TypeVar("T")
R = TypeVar("R")
Event = tuple[CustomerLookup, RecordUsage, uuid.UUID | None]


class ClaimingRouter(RouterReach):
    """The calls of a `ShardRouter` that claim a key on its home first (see the module's doc)."""

    async def ingest(
        self, lookup: CustomerLookup, event: RecordUsage, feature_uuid: uuid.UUID | None
    ) -> Reply:
        """The key claimed on its home first (SCL-81), then the customer's own turn; a feature
        the turn auto-created broadcast before the reply (SCL-87)."""
        index = await self._find(lookup) or 0
        leased = await self.shared.lease(index, event.idempotency_key)
        if leased is False:
            return DUPLICATE  # EVT-35: another shard's customer holds the key
        reply = await self._on(index, lambda s: s.ingest(lookup, event, feature_uuid))
        if isinstance(reply, Rejected):
            if leased:  # SCL-82: the key is free again, as in one process
                await self.shared.give_back(index, event.idempotency_key)
        elif event.feature_key is not None:
            await self.shared.share_features([(lookup, event, feature_uuid)], [reply])
        return reply

    async def ingest_batch(self, events: list[Event]) -> list[Reply]:
        """The batch in stretches in which no key is named from two shards, one after the
        other (SCL-85a): a key's home does not ask itself, so two shards' claims of one key in
        one call would not be granted in the batch's order, as one by one they are."""
        shards = [await self._find(lookup) or 0 for lookup, _, _ in events]
        replies: list[Reply] = []
        start = 0
        while start < len(events):
            end = _stretch_end(events, shards, start)
            replies.extend(await self._ingest_stretch(events[start:end]))
            start = end
        return replies

    async def _ingest_stretch(self, events: list[Event]) -> list[Reply]:
        """The keys claimed on their homes, one call per home (SCL-85); then each shard's
        events in one call, the shards at once; replies in the batch's order."""
        claims = [KeyClaim(event.idempotency_key, await self._find(lookup) or 0)
                  for lookup, event, _ in events]  # fmt: skip
        leased = await self.shared.ask_homes(claims)
        replies: list[Reply] = [DUPLICATE] * len(events)
        groups: dict[int, list[int]] = {}
        for position, (claim, lease) in enumerate(zip(claims, leased, strict=True)):
            if lease is not False:
                groups.setdefault(claim.shard, []).append(position)

        async def run(index: int, positions: list[int]) -> list[Reply]:
            part = [events[p] for p in positions]
            return await self._on(index, lambda s: s.ingest_batch(part))

        if groups:
            await per_shard(groups, run, replies)
        kept = [not isinstance(reply, Rejected) for reply in replies]
        await self.shared.settle_leases(claims, leased, kept)
        await self.shared.share_features(events, replies)
        return replies

    async def reserve(self, lookup: CustomerLookup, command: Reserve | Preflight) -> Reply:
        """The id claimed on its home first (SCL-84), then the customer's own turn."""
        index = await self._find(lookup) or 0
        held = command if isinstance(command, Reserve) else command.reserve
        key = reservation_key(held.reservation_id)
        leased = await self.shared.lease(index, key)
        if leased is False:
            return reservation_taken(held.reservation_id)  # RSV-1: another shard's customer's
        reply = await self._on(index, lambda s: s.reserve(lookup, command))
        if leased and not holds(reply):  # SCL-84: nothing held, the id is free again
            await self.shared.give_back(index, key)
        if isinstance(command, Reserve):
            self.routes.reservations[command.reservation_id] = index  # SCL-7
        return reply

    async def _reservation_shard(self, reservation_id: str, customer: CustomerLookup | None) -> int:
        if customer is not None:
            return await self._find(customer) or 0
        return await self._holder(reservation_id) or 0

    async def _holder(self, reservation_id: str) -> int | None:
        """The shard holding a reservation id, learned or searched (SCL-7, SCL-8)."""
        index = self.routes.reservations.get(reservation_id)
        if index is None:
            index = await self._search(
                lambda s: s.read_reservation(reservation_id, None, exists),
                self.routes.reservations, reservation_id,
            )  # fmt: skip
        return index

    async def _on_reservation(
        self, reservation_id: str, customer: CustomerLookup | None,
        call: Callable[[Shard], Awaitable[R]],
    ) -> R | Rejected:  # fmt: skip
        """`call` on the shard of the reservation, or of the customer the body names. That
        customer's shard not knowing the id, while another shard holds it, is the answer one
        process gives a body naming another customer than the holder (RSV-28, SCL-84)."""
        index = await self._reservation_shard(reservation_id, customer)
        answer = await self._on(index, call)
        if customer is None or answer != reservation_not_found(reservation_id):
            return answer
        holder = await self._holder(reservation_id)
        return answer if holder in (None, index) else not_this_customers(reservation_id)

    async def settle(
        self, reservation_id: str, command: SettleCommand, customer: CustomerLookup | None
    ) -> Reply:
        if isinstance(command, CommitReservation):
            return await self._commit(reservation_id, command, customer)
        return await self._on_reservation(
            reservation_id, customer, lambda s: s.settle(reservation_id, command, customer)
        )

    async def _commit(
        self, reservation_id: str, command: CommitReservation, customer: CustomerLookup | None
    ) -> Reply:
        """SCL-88: the event keys the commit would record, read from the reservation, claimed
        on their homes; a key another shard holds goes to the turn as a duplicate (RSV-13), and
        the leases of a refused commit are given back."""
        index = await self._reservation_shard(reservation_id, customer)
        keys = await self._on(index, lambda s: s.read_reservation(
            reservation_id, customer, functools.partial(commit_keys, command)))  # fmt: skip
        claims = [KeyClaim(key, index) for key in keys] if isinstance(keys, list) else []
        leased = await self.shared.ask_homes(claims)
        refused = frozenset(
            c.key for c, lease in zip(claims, leased, strict=True) if lease is False
        )
        if refused:
            command = msgspec.structs.replace(command, duplicate_keys=refused)
        reply = await self._on_reservation(
            reservation_id, customer, lambda s: s.settle(reservation_id, command, customer)
        )
        kept = [not isinstance(reply, Rejected)] * len(claims)
        await self.shared.settle_leases(claims, leased, kept)
        return reply

    async def read_reservation(
        self, reservation_id: str, customer: CustomerLookup | None, projector: Projector[T]
    ) -> T | Rejected:
        return await self._on_reservation(
            reservation_id, customer,
            lambda s: s.read_reservation(reservation_id, customer, projector),
        )  # fmt: skip

    async def claim_keys(self, claims: list[KeyClaim]) -> list[bool]:
        """Each key claimed on its home for the shard named with it (SCL-81)."""
        return [answer is not False for answer in await self.shared.ask_homes(claims)]

    async def ingest_cloud_events(self, events: list[CloudEvent]) -> int:
        """Each event's (source, id) claimed on its home (SCL-86), then each event to its
        subject's shard (SCL-6), every shard's part at once; one another shard holds is a
        duplicate, as its own shard's would be (OM-6).

        A (source, id) the batch named before is dropped here, before any claim: the first
        event counts (OM-7). Claimed too, a later event of another shard could take the key
        from the first: when the key's home is the first event's shard, the first is not
        claimed (its shard judges it), and the home would grant the later one before the
        first reached its index."""
        first: dict[str, CloudEvent] = {}
        for event in events:
            first.setdefault(dedup_key(event.source, event.event_id), event)
        events = list(first.values())
        claims = [KeyClaim(key, self.routes.of_subject(e.subject), "keep")
                  for key, e in first.items()]  # fmt: skip
        kept = await self.shared.ask_homes(claims)
        parts: dict[int, list[CloudEvent]] = {}
        for event, claim, keep in zip(events, claims, kept, strict=True):
            if keep is not False:
                parts.setdefault(claim.shard, []).append(event)
        counts = [0] * len(self.members)  # each shard's new events, at its own index

        async def run(index: int, _: list[int]) -> list[int]:
            return [await self._on(index, lambda s: s.ingest_cloud_events(parts[index]))]

        if parts:
            await per_shard({index: [index] for index in parts}, run, counts)
        return sum(counts)


def _stretch_end(events: list[Event], shards: list[int], start: int) -> int:
    """Where the stretch from `start` ends: before the first event whose key an earlier event
    of the stretch named from another shard."""
    named: dict[str, int] = {}
    for position in range(start, len(events)):
        key = events[position][1].idempotency_key
        if named.setdefault(key, shards[position]) != shards[position]:
            return position
    return len(events)
