"""The actor system: one shard per environment in this process, the clock, and the sweep that
fires due transitions (SCH-1) even for customers nobody is calling."""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from functools import partial
from typing import Protocol

import anyio
import anyio.lowlevel
import anyio.to_thread
import msgspec
from anyio.abc import TaskGroup

from allotment.domain.catalog import Catalog
from allotment.domain.cost import PriceTable
from allotment.persistence.errors import JournalUnavailable
from allotment.persistence.ports import Journal
from allotment.persistence.reports import AnalyticsReport, CheckpointReport
from allotment.persistence.store_ports import AnalyticsRunner, NotificationOutbox, ShardStore
from allotment.runtime import heap
from allotment.runtime.analytics_reads import AnalyticsReads
from allotment.runtime.buffers import BufferStatistics
from allotment.runtime.clock import Clock, ClockStore, ManualClock
from allotment.runtime.errors import ShardUnavailable
from allotment.runtime.ids import new_id as process_ids
from allotment.runtime.local_shard import LocalShard, ShardSettings
from allotment.runtime.meter_reads import CloudEventHistory
from allotment.runtime.placement import IdMint
from allotment.runtime.ports import Shard
from allotment.runtime.queued_shard import QueuedShard
from allotment.runtime.upkeep import CheckpointPolicy, Upkeep

__all__ = (
    "ActorSystem",
    "CheckpointPolicy",
    "ClockNotManual",
    "ClockNotSaved",
    "ShardStatistics",
    "SystemSettings",
)

logger = logging.getLogger("allotment.system")


class ClockNotManual(RuntimeError):
    """The clock can only be moved when the server runs with `--clock manual`."""


class HostedWebhooks(Protocol):
    """What a shard host runs of its webhook service (webhooks/service.py); the rest of it is
    called by name (`hosted_shards.HostedShards.webhooks`)."""

    def running(self) -> AbstractAsyncContextManager[None]: ...

    def wake(self) -> None: ...


class ClockNotSaved(RuntimeError):
    """The manual clock's new time could not be saved (OPS-D4), so the clock did not move:
    free disk space or fix the data directory's permissions, then advance it again."""


class SystemSettings(ShardSettings, Protocol):
    rebuild_every_s: float


class JournalStatistics(msgspec.Struct, frozen=True, kw_only=True):
    position: int
    durable_position: int
    pending_bytes: int
    pending_bytes_max: int


class ShardStatistics(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    environment: str
    status: str  # "ok", or "failed" while the shard waits to be rebuilt from disk
    customers: int
    event_keys: int
    timers: int
    journal: JournalStatistics
    audits: BufferStatistics
    rebuilds: int
    turns: int  # turns begun since the start, across rebuilds
    failure: str | None = None  # why it failed (absent when ok)


class ActorSystem:
    """Owns the shards. `running()` opens the task group that runs the sweep.

    With a `storage`, every environment lives on disk (its journal, snapshots and analytics,
    run by `analytics`); without one, each environment's journal comes from
    `journal_factory`, and state lives as long as the process. wiring.py picks the adapters.
    """

    # Readiness's reason when this process has no data directory to check (OPS-P10).
    ready_without_storage = "serving from memory (no data directory)"

    def __init__(
        self,
        catalog: Catalog,
        clock: Clock,
        prices: PriceTable,
        settings: SystemSettings,
        journal_factory: Callable[[str], Journal],
        timer_interval_s: float = 1.0,
        new_id: Callable[[], uuid.UUID] = process_ids,
        storage: ShardStore | None = None,
        analytics: AnalyticsRunner | None = None,
        checkpoint: CheckpointPolicy | None = None,
        analytics_every_s: float = 60.0,
        queued: bool = False,
        clock_store: ClockStore | None = None,
        outbox: Callable[[str], NotificationOutbox] | None = None,
        mint: Callable[[str], IdMint] | None = None,
    ) -> None:
        self.clock = clock
        self._mint = mint  # one shard of several: each environment's ids name it (SCL-3)
        self._clock_store = clock_store  # where a manual clock's time is kept (OPS-D4)
        self._clock_lock = anyio.Lock()  # advances save and move one at a time
        self._catalog = catalog
        self._prices = prices
        self._settings = settings
        self._journal_factory = journal_factory
        self._outbox = outbox  # each environment's, kept across rebuilds (webhooks)
        self._timer_interval_s = timer_interval_s
        self._new_id = new_id
        self._shards: dict[str, LocalShard] = {}
        self.storage = storage
        self._task_group: TaskGroup | None = None
        self._writers: dict[str, anyio.CancelScope] = {}  # each journal's writer task
        self._rebuilds: dict[str, int] = {}
        self._turns_before: dict[str, int] = {}  # turns run by the shards a rebuild replaced
        self._queued = queued
        self._front: dict[str, QueuedShard] = {}  # while running, when queued
        self.analytics = analytics
        # OpenMeter's reads of the journal's CloudEvents (issue 16): set by wiring when the
        # system has a data directory; None in memory.
        self.history: CloudEventHistory | None = None
        # A shard host's own webhook service (issue 19, SCL-67): set by wiring for a shard in
        # another process, whose journal feeds it; the front door reaches it by method name.
        self.webhooks: HostedWebhooks | None = None
        # The console's reads of the analytics snapshot (issue 20): None in memory.
        self.analytics_reads: AnalyticsReads | None = None
        self.upkeep: Upkeep | None = None  # checkpoints and analytics, when there is storage
        if storage is not None:
            assert analytics is not None
            self.upkeep = Upkeep(
                storage, analytics, self._shards, clock, checkpoint or CheckpointPolicy(),
                analytics_every_s,
            )  # fmt: skip
            for environment in storage.existing_environments():
                self.shard(environment)  # recover everything on disk before serving

    def _make_shard(self, environment: str, journal: Journal) -> LocalShard:
        outbox = self._outbox(environment) if self._outbox is not None else None
        return LocalShard(
            self._catalog, self.clock, journal, self._prices, self._settings, self._new_id,
            outbox, None if self._mint is None else self._mint(environment),
        )  # fmt: skip

    def shard(self, environment: str) -> LocalShard:
        """The shard of an environment ("test" or "live"); environments share no data (AUTH-4)."""
        shard = self._shards.get(environment)
        if shard is None:
            if self.storage is not None:
                shard = self._recover(environment)
                self._shards[environment] = shard
                if self._task_group is not None:
                    self._start_environment(self._task_group, environment)
            else:
                shard = self._make_shard(environment, self._journal_factory(environment))
                self._shards[environment] = shard
        return shard

    def _recover(self, environment: str) -> LocalShard:
        """The environment's shard as its snapshot and journal leave it.

        Raises:
            JournalCorrupt: damage in the middle of the journal; start-up must stop.
        """
        assert self.storage is not None
        with heap.recovering():
            return self.storage.open_shard(environment, partial(self._make_shard, environment))

    def route(self, environment: str) -> Shard:
        """The shard the front door talks to: the local shard itself, or, when the system was
        built `queued`, a `QueuedShard` that reaches it through a mailbox (as a Ray actor
        would be reached)."""
        shard = self.shard(environment)
        if not self._queued:
            return shard
        front = self._front.get(environment)
        if front is None:
            if self._task_group is None:
                raise RuntimeError("a queued shard is reached only while the system runs")
            front = self._front[environment] = QueuedShard(lambda: self._shards[environment])
            self._task_group.start_soon(front.run)
        return front

    def _start_environment(self, tg: TaskGroup, environment: str) -> None:
        self._start_writer(tg, environment)
        assert self.upkeep is not None
        tg.start_soon(self.upkeep.run_checkpoints, environment)

    def _start_writer(self, tg: TaskGroup, environment: str) -> None:
        assert self.storage is not None
        journal = self.storage.journal(environment)
        scope = self._writers[environment] = anyio.CancelScope()

        async def write() -> None:
            with scope:
                await journal.run()

        tg.start_soon(write)

    async def rebuild(self, environment: str) -> bool:
        """Replace a failed shard by one recovered from its snapshot and journal (the only
        truth: memory may hold facts the disk refused, or a half-applied fact). Returns
        whether it was rebuilt; a disk that still refuses writes leaves it failed for the next
        try. A system without storage cannot rebuild: its failed shard stays failed."""
        if self.storage is None or self._task_group is None:
            return False
        old = self._shards[environment]
        async with self.storage.exclusive(environment):  # no checkpoint meanwhile
            try:
                await self.storage.release_journal(environment)
            except OSError as error:
                logger.warning("shard %s cannot be rebuilt yet: %s", environment, error)
                return False
            self._writers[environment].cancel()
            try:
                shard = self._recover(environment)
            except OSError as error:  # its new segment could not be written: try again later
                logger.warning("shard %s cannot be rebuilt yet: %s", environment, error)
                return False
            self._shards[environment] = shard
            self._start_writer(self._task_group, environment)
        self._rebuilds[environment] = self._rebuilds.get(environment, 0) + 1
        self._turns_before[environment] = self._turns(environment, old)
        logger.warning(
            "shard %s rebuilt from disk after: %s (%d customers)",
            environment,
            old.failure,
            shard.customer_count(),
        )
        return True

    async def _supervise(self) -> None:
        """Rebuild failed shards, trying again every `rebuild_every_s` until the disk lets it."""
        while True:
            await anyio.sleep(self._settings.rebuild_every_s)
            for environment, shard in list(self._shards.items()):
                shard.notice_journal_failure()
                if shard.failure is None:
                    continue
                try:
                    await self.rebuild(environment)
                except Exception:  # e.g. the journal turned out corrupt: say so, keep trying
                    logger.exception("rebuilding shard %s failed", environment)

    @property
    def analytics_enabled(self) -> bool:
        """Whether `snapshot_analytics` can write a database (there is a data directory)."""
        return self.analytics is not None

    async def snapshot_analytics(self) -> AnalyticsReport:
        """Rebuild `analytics.duckdb` now (the admin API calls this; the schedule skips a run
        with nothing new: `runtime.upkeep`).

        Raises:
            ShardUnavailable: a shard failed; its memory is not the journal's truth.
        """
        assert self.upkeep is not None
        return await self.upkeep.snapshot_analytics()

    async def checkpoint_all(self) -> list[CheckpointReport]:
        """Checkpoint every environment now (tests, benchmarks, the admin API).

        Raises:
            ShardUnavailable: a shard or its journal failed; it is saved after its rebuild.
        """
        assert self.upkeep is not None
        return await self.upkeep.checkpoint_all()

    async def run_due(self) -> int:
        """Fire every transition due by now in every shard.

        Raises:
            ShardUnavailable: a shard is failed (its transitions wait for the rebuild).
        """
        return sum([await shard.run_due() for shard in self._shards.values()])

    async def advance_clock(self, to: datetime) -> int:
        """Move the manual clock to `to` and apply everything due by then, before returning.

        Raises:
            ClockNotManual: the server runs on the system clock.
            ValueError: `to` is in the past.
            ClockNotSaved: the new time could not be saved; the clock did not move.
        """
        clock = self.clock
        if not isinstance(clock, ManualClock):
            raise ClockNotManual(
                "The clock can only be moved when the server runs with --clock manual."
            )
        async with self._clock_lock:
            if to < clock.now():
                raise ValueError("the manual clock only moves forward")
            if self._clock_store is not None:  # saved first: a restart never goes back (OPS-D4)
                try:
                    await anyio.to_thread.run_sync(self._clock_store.save, to)
                except OSError as error:
                    raise ClockNotSaved(
                        f"the clock's new time could not be saved: {error}"
                    ) from error
            clock.advance_to(to)
        return await self.run_due()

    @property
    def serving(self) -> bool:
        """Whether `running()` is open: recovered, with writers, checkpoints and sweep running."""
        return self._task_group is not None

    def statistics(self) -> list[ShardStatistics]:
        return [self._statistics(env, shard) for env, shard in self._shards.items()]

    async def current_statistics(self) -> list[ShardStatistics]:
        """`statistics()` as of this moment, for a reader that may wait: the same here; a
        front door whose shards are other processes asks them (ray_shard.RaySystem, SCL-91)."""
        return self.statistics()

    def _statistics(self, environment: str, shard: LocalShard) -> ShardStatistics:
        shard.notice_journal_failure()
        journal = shard.journal
        return ShardStatistics(
            environment=environment,
            status="ok" if shard.failure is None else "failed",
            failure=shard.failure,
            customers=shard.customer_count(),
            event_keys=len(shard.event_keys),
            timers=len(shard.timers),
            journal=JournalStatistics(
                position=journal.position,
                durable_position=journal.durable_position,
                pending_bytes=journal.pending_bytes,
                pending_bytes_max=self._settings.journal_pending_bytes_max,
            ),
            audits=shard.audits.statistics(),
            rebuilds=self._rebuilds.get(environment, 0),
            turns=self._turns(environment, shard),
        )

    def _turns(self, environment: str, shard: LocalShard) -> int:
        return self._turns_before.get(environment, 0) + shard.turns.turns_run

    async def _sweep(self) -> None:
        while True:
            next_at = min(
                (t for s in self._shards.values() if (t := s.next_timer()) is not None),
                default=None,
            )
            delay = self._timer_interval_s
            if next_at is not None:
                delay = min(delay, max(0.0, (next_at - self.clock.now()).total_seconds()))
            await anyio.sleep(delay if math.isfinite(delay) else self._timer_interval_s)
            for environment, shard in list(self._shards.items()):
                try:
                    await shard.run_due()
                except ShardUnavailable:
                    pass  # its transitions run after the rebuild
                except Exception:  # the sweep outlives any one failure; the next pass retries
                    logger.exception("sweep of %s failed", environment)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[ActorSystem]:
        """Run the journal writers, checkpoints and the sweep while the context is open."""
        async with anyio.create_task_group() as tg:
            self._task_group = tg
            if self.storage is not None:
                for environment in self._shards:
                    self._start_environment(tg, environment)
                assert self.upkeep is not None
                self.upkeep.analytics_alive = True  # before a request can ask (OPS-P9)
                tg.start_soon(self.upkeep.run_analytics)
                tg.start_soon(self._supervise)
            if not self.clock.manual:
                tg.start_soon(self._sweep)
            try:
                yield self
            finally:
                self._task_group = None
                self._front.clear()  # their tasks end with this task group
                if self.storage is not None:
                    with anyio.move_on_after(30, shield=True):
                        await self._flush_all()
                    assert self.upkeep is not None
                    await self.upkeep.analytics.drain(self.upkeep.durable())  # bounded
                tg.cancel_scope.cancel()

    async def _flush_all(self) -> None:
        assert self.storage is not None
        for environment in self._shards:
            try:
                await self.storage.journal(environment).flush()
            except JournalUnavailable:
                logger.error("journal of %s failed; unflushed changes were never acknowledged",
                             environment)  # fmt: skip
