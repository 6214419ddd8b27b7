"""What persistence offers the runtime, and the records they exchange: the journal (facts are
appended before a state change is acknowledged), API keys, and the records a journal yields.
What persistence needs of a shard to recover, checkpoint and publish it is in
`persistence/store_ports.py`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol

import msgspec

from allotment.domain.facts import EnvironmentFact, Fact

__all__ = ("ApiKey", "Journal", "JournalRecord", "KeyAdmin", "KeyAuthority", "KeyRefused")


class JournalRecord(msgspec.Struct, frozen=True, array_like=True):
    """One turn's facts for one customer, or one environment fact (customer_id is None): a
    catalog change or a payment no customer owns. The field keeps its historical name."""

    position: int
    customer_id: uuid.UUID | None
    facts: list[Fact]
    catalog: list[EnvironmentFact]


class Journal(Protocol):
    """An append-only log of records: one `append` is one record at the next position.

    Positions start at 1 and grow by exactly one per append, whatever the number of facts, in
    every implementation (the file journal and its in-memory twin agree). A journal is healthy
    until a write or sync fails; then it is failed until a new one is opened, and refuses
    everything that could make undurable state look durable.
    """

    @property
    def position(self) -> int:
        """The last position handed out (0 before the first append). Appended is not
        durable: await `wait_durable` before acknowledging."""
        ...

    @property
    def durable_position(self) -> int:
        """The last position as durable as the journal promises; never above `position`, and
        it never moves again once the journal is failed."""
        ...

    @property
    def pending_bytes(self) -> int:
        """Bytes appended but not yet written (always 0 in memory). The shard caps it before
        a turn; `append` itself never refuses for it."""
        ...

    @property
    def failure(self) -> BaseException | None:
        """The error that failed the journal, or None while it is healthy."""
        ...

    def append(self, customer_id: uuid.UUID, facts: Sequence[Fact]) -> int:
        """Buffer one record of a customer's facts; synchronous and cheap.

        Returns:
            The record's position, `position + 1` (also for an empty `facts`).

        Raises:
            JournalUnavailable: the journal is failed; nothing was appended.
        """
        ...

    def append_catalog(self, fact: EnvironmentFact) -> int:
        """Buffer one record holding an environment fact (a catalog change, or a payment no
        customer owns); as `append` otherwise."""
        ...

    async def wait_durable(self, position: int) -> None:
        """Return once every record up to `position` is durable (in the sense of the
        journal's durability mode; at once for a position already durable).

        Raises:
            JournalUnavailable: the journal failed before `position` became durable. The
                change must not be acknowledged; it is not kept.
        """
        ...

    async def flush(self) -> None:
        """Wait until everything appended so far is written, whatever the durability mode.

        Raises:
            JournalUnavailable: the journal is failed, before or during the wait, even if
                everything was written: whoever flushes (a checkpoint) must not go on to
                publish state while the journal is failed.
        """
        ...


class ApiKey(msgspec.Struct, frozen=True, kw_only=True):
    """What the server knows of an API key: never the key itself (AUTH-8).

    Fields after `created_at` came with key management (issue 13); records written before
    decode with their defaults.
    """

    digest: str  # hex SHA-256 of the key
    environment: str  # "test" (sk_test_) or "live" (sk_live_)
    scopes: tuple[str, ...]
    hint: str  # prefix and last 4 characters, to recognise a key in listings
    created_at: datetime
    name: str = ""
    prefix: str = ""  # the key's first 16 characters: its public id (OPS-K2); "" before
    last_used_at: datetime | None = None  # to within the usage flush period (OPS-K5)
    revoked_at: datetime | None = None

    @property
    def key_id(self) -> str:
        """How listings, `allotment keys revoke` and the admin API name the key: its prefix,
        or for a key created before prefixes were kept, the start of its digest."""
        return self.prefix or f"sha256:{self.digest[:16]}"


class KeyAuthority(Protocol):
    """Who says which key is valid (persistence/keys.py keeps them as hashes on disk)."""

    def authenticate(self, key: str) -> ApiKey | None:
        """The key's record, or None when it is unknown, malformed or revoked. Constant time
        in the key's content."""
        ...


class KeyRefused(Exception):
    """A key operation that cannot be done: an unknown or ambiguous key, a bad name or scope.
    The message says what to do; the admin API answers it as `status`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class KeyAdmin(KeyAuthority, Protocol):
    """Key management (OPS-K1..OPS-K6): what `allotment keys` and the admin API do. Every
    change is on disk, and seen by the running server, before it returns."""

    def maintained(self) -> AbstractAsyncContextManager[None]:
        """Held while the server runs: background upkeep (last-use times, hand edits)."""
        ...

    async def list_keys(self) -> list[ApiKey]:
        """Every stored key, revoked ones included, oldest first; last use recorded up to
        now."""
        ...

    async def create_key(
        self, name: str, scopes: tuple[str, ...], environment: str
    ) -> tuple[str, ApiKey]:
        """A new key and its record: the only time the key itself is seen.

        Raises:
            KeyRefused: the name or a scope is not valid.
        """
        ...

    async def revoke_key(self, key_id: str) -> ApiKey:
        """Revoke the key with this id (or, when exactly one active key has it, this name).

        Raises:
            KeyRefused: no such key (404), or a name several keys share (409).
        """
        ...
