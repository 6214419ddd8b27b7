"""What persistence offers the runtime, and the records they exchange: the journal (facts are
appended before a state change is acknowledged), API keys, and the records a journal yields.
What persistence needs of a shard to recover, checkpoint and publish it is in
`persistence/store_ports.py`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

import msgspec

from allotment.domain.facts import EnvironmentFact, Fact

__all__ = ("ApiKey", "Journal", "JournalRecord", "KeyAuthority")


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
    """What the server knows of an API key: never the key itself (AUTH-8)."""

    digest: str  # hex SHA-256 of the key
    environment: str  # "test" (sk_test_) or "live" (sk_live_)
    scopes: tuple[str, ...]
    hint: str  # prefix and last 4 characters, to recognise a key in listings
    created_at: datetime


class KeyAuthority(Protocol):
    """Who says which key is valid (persistence/keys.py keeps them as hashes on disk)."""

    def authenticate(self, key: str) -> ApiKey | None:
        """The key's record, or None when it is unknown, malformed or revoked. Constant time
        in the key's content."""
        ...
