"""What persistence needs of a shard, and what it offers the runtime in return.

The runtime's shards satisfy `RecoverableShard` and `AnalyticsSource`; persistence's `Storage`
(journals and snapshots) and `AnalyticsJob` (the analytics files) take them as these protocols
only, so persistence never imports the runtime. The runtime holds a `ShardStore` and an
`AnalyticsRunner`, never the classes behind them (wiring.py picks those).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol, TypeVar

import anyio
import msgspec

from allotment.domain.catalog import Catalog
from allotment.domain.cost import PriceTable
from allotment.domain.facts import Fact
from allotment.domain.payment_records import PaymentRecord
from allotment.domain.state import CustomerState
from allotment.histogram import Histogram
from allotment.persistence.compact_state import Keys
from allotment.persistence.ports import Journal, JournalRecord
from allotment.persistence.reports import (
    AnalyticsReport,
    CheckpointReport,
    ExportReport,
    RecoveryReport,
)

__all__ = (
    "AnalyticsMerger",
    "AnalyticsRunner",
    "AnalyticsSource",
    "AuditRecord",
    "AuditSource",
    "EnvironmentPayments",
    "KeyIndex",
    "KeyTables",
    "NotificationOutbox",
    "RecordedPrices",
    "RecoverableShard",
    "RunningJournal",
    "ShardStore",
)


class AuditRecord(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """One ENTITLEMENT_CHECKED audit event: zero usage, never billed (ENT-30, ENT-31)."""

    at: datetime
    customer_id: uuid.UUID
    external_id: str | None
    feature_key: str
    allowed: bool
    method: str
    reason: str | None = None
    requested_units: Decimal | None = None
    would_exceed_limit: bool | None = None
    event_name: str | None = None
    meta: dict[str, Any] | None = None
    flow_id: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class KeyTables:
    """An event-key index's tables as a snapshot takes them: one count per table, the live
    keys per day number, and the tables themselves, copied one at a time as iterated."""

    slots_used: list[int]
    keys_per_day: dict[int, int]
    tables: Iterator[bytes]


class KeyIndex(Protocol):
    """The accepted event keys of one environment, as snapshots save and restore them."""

    def exported(self) -> AbstractContextManager[KeyTables]: ...

    def merge_pending(self) -> Iterator[None]:
        """Within `exported`, once every table is copied: apply what was claimed meanwhile,
        yielding between batches."""
        ...

    def import_tables(
        self, tables: Sequence[bytes | bytearray], used: list[int], day_counts: dict[int, int]
    ) -> None: ...


class EnvironmentPayments(Protocol):
    """Payments of an environment that no customer owns (MNY-C3), as snapshots keep them."""

    def update(self, records: Iterable[PaymentRecord]) -> None: ...

    def values(self) -> list[PaymentRecord]: ...


class RecordedPrices(Protocol):
    """An environment's model price table as snapshots keep it (OPS-D6)."""

    @property
    def recorded(self) -> PriceTable | None:
        """The table last journalled; None while the price file's applies."""
        ...

    def restore(self, recorded: PriceTable | None) -> None: ...


class NotificationOutbox(Protocol):
    """Where a shard hands every customer record it journals, for the notifications among its
    facts (issue 15: the journal IS the outbox). The adapter (webhooks/dispatcher.py) renders
    and sends them only once the record is durable, and keeps what it logged, so recovery
    re-feeds every replayed record and the adapter drops what it already has (by event id).
    """

    def committed(
        self,
        position: int,
        customer_id: uuid.UUID,
        external_id: str | None,
        facts: Sequence[Fact],
        durable: Callable[[int], Awaitable[None]] | None,
    ) -> None:
        """A record was appended at `position`; `durable(position)` returns once it is durable
        (None: it is already, being replayed from disk). Called inside the turn: cheap, sync,
        never raises for delivery's troubles."""
        ...

    async def logged_through(self, position: int) -> None:
        """Return once the notifications of every record up to `position` handed in are in
        the adapter's own durable log. A checkpoint awaits it before its snapshot covers
        `position`, so no committed notification falls between the snapshot and that log."""
        ...

    @property
    def full(self) -> bool:
        """Whether the records handed in and not yet in the adapter's log reached its bound.
        `committed` never refuses one (its cause is committed); the shard refuses changes
        while this is true (`runtime.errors.Overloaded`), so nothing is lost and the bound
        is passed only by the changes admitted before it was reached, and by recovery's
        re-feed (the journal's records after the snapshot)."""
        ...


class RecoverableShard(Protocol):
    """A shard as recovery rebuilds it and a checkpoint saves it."""

    @property
    def prices(self) -> RecordedPrices: ...

    @property
    def environment_payments(self) -> EnvironmentPayments: ...

    @property
    def catalog(self) -> Catalog: ...

    @property
    def event_keys(self) -> KeyIndex: ...

    def customer_count(self) -> int: ...

    def states(self) -> list[CustomerState]: ...

    def customer_order(self) -> list[uuid.UUID]:
        """Every customer's id, in creation order (a copy: customers created later are not
        in it)."""
        ...

    def stored_customer(self, customer_id: uuid.UUID) -> bytes | CustomerState:
        """A customer as of now: its stored form when current, else its state (to encode)."""
        ...

    def restore(
        self,
        catalog: Catalog,
        states: list[CustomerState],
        keys: dict[date, list[bytes]],
        stored: Iterable[tuple[uuid.UUID, bytes]] = (),
        stored_keys: Iterable[Keys] = (),
    ) -> None:
        """Load a snapshot's catalog, customers (decoded, or stored by id, with their keys
        in the same order, read only when the indexes are rebuilt) and (old-format) event
        keys."""
        ...

    catalog_version: int  # of several shards: the broadcast version held (SCL-77)

    def numbers_taken(self) -> dict[str, int]:
        """The highest invoice and credit-note sequence journalled, by kind (SCL-71)."""
        ...

    def restore_numbers(self, taken: dict[str, int]) -> None:
        """Continue the sequences above a snapshot's `numbers_taken` (SCL-72)."""
        ...

    def replay(self, record: JournalRecord) -> None:
        """Apply one journal record after the snapshot."""
        ...

    async def notifications_logged(self, position: int) -> None:
        """Return once the outbox holds the notifications of every record up to `position`
        (at once without an outbox): see `NotificationOutbox.logged_through`."""
        ...

    def reindex(self) -> None:
        """Rebuild the indexes and timers once every record is applied."""
        ...

    def checkpoint_refusal(self) -> str | None:
        """Why the shard's memory may be ahead of its journal (then no checkpoint may publish
        it: ARCHITECTURE principle 10), or None while it is safe to save."""
        ...


class AuditSource(Protocol):
    """A shard's buffer of audit records, drained into the analytics history."""

    def __len__(self) -> int: ...

    def drain(self, count_max: int | None = None) -> list[AuditRecord]: ...

    def requeue(self, items: list[AuditRecord]) -> None: ...


class AnalyticsSource(Protocol):
    """A shard as an analytics snapshot reads it."""

    @property
    def environment_payments(self) -> EnvironmentPayments: ...

    @property
    def catalog(self) -> Catalog: ...

    @property
    def audits(self) -> AuditSource: ...

    def customer_count(self) -> int: ...

    def each_state(self) -> Iterator[CustomerState]:
        """Every customer's state now, one at a time (see `CustomerDirectory.states`)."""
        ...


class RunningJournal(Journal, Protocol):
    """A journal whose writes are done by a task the runtime runs (the file journal)."""

    @property
    def commits(self) -> int:
        """Group commits so far: each is one write (and one sync, when syncing)."""
        ...

    @property
    def commit_seconds(self) -> Histogram:
        """How long each group commit took (write and sync), kept across rebuilds."""
        ...

    @property
    def commit_records(self) -> Histogram:
        """How many records each group commit wrote, kept across rebuilds."""
        ...

    async def run(self) -> None:
        """Write and sync what is appended, until cancelled."""
        ...


S = TypeVar("S", bound=RecoverableShard)


class ShardStore(Protocol):
    """Journals and snapshots of every environment: recovery at start, checkpoints while
    running, and the release of a failed shard's journal before it is rebuilt."""

    @property
    def data_dir(self) -> Path: ...

    @property
    def recoveries(self) -> list[RecoveryReport]:
        """One report per environment recovered, oldest first."""
        ...

    def existing_environments(self) -> list[str]: ...

    def readiness_problems(self, disk_free_min_bytes: int) -> list[str]:
        """Why the data directory cannot take writes now (none: it can)."""
        ...

    def journal(self, environment: str) -> RunningJournal: ...

    def open_shard(self, environment: str, make_shard: Callable[[Journal], S]) -> S:
        """Recover `environment`: its latest snapshot, then the journal after it."""
        ...

    def exclusive(self, environment: str) -> anyio.Lock:
        """The lock that checkpoints and rebuilds of `environment` take."""
        ...

    async def release_journal(self, environment: str) -> None:
        """Close the journal of a shard about to be rebuilt.

        Raises:
            OSError: the disk still refuses writes; try again later.
        """
        ...

    def due_for_checkpoint(self, environment: str, every_records: int) -> bool: ...

    def changed_since_checkpoint(self, environment: str) -> bool:
        """Whether the journal holds records the last checkpoint does not cover (when it does
        not, a checkpoint would rewrite the same snapshot: issue 13, item 6)."""
        ...

    async def checkpoint(self, environment: str, shard: RecoverableShard) -> CheckpointReport:
        """Save `shard` as a snapshot and drop the journal segments it covers.

        Raises:
            CheckpointRefused: the shard or its journal failed; nothing was published.
        """
        ...


class AnalyticsMerger(Protocol):
    """Merges the shards' analytics databases into one (persistence/analytics_merged.py)."""

    async def merge(self, reports: Sequence[AnalyticsReport]) -> AnalyticsReport:
        """The shards' databases, just written (`reports`), merged; the whole's report."""
        ...

    async def follow(self) -> None:
        """Merge again whenever a shard's own database changed, for ever."""
        ...


class AnalyticsRunner(Protocol):
    """Writes the analytics files (`analytics.duckdb`, the Parquet histories)."""

    async def run_once(
        self,
        shards: dict[str, AnalyticsSource],
        positions: dict[str, int],
        durable: dict[str, int],
    ) -> AnalyticsReport: ...

    async def drain(self, durable: dict[str, int]) -> list[ExportReport]:
        """Export the journal histories up to `durable`; for shutdown, never raises."""
        ...
