"""Background upkeep of a system with storage: checkpoints and analytics snapshots, on a schedule,
skipped when nothing changed since the last one (issue 13, item 6), and counted for `/metrics`.

"Nothing changed" is exact, never a guess from time:

- **checkpoint** (OPS-M5): the environment's journal position is the one the last checkpoint
  (or the snapshot it recovered from) covers. Everything a snapshot holds (customers, catalog,
  unapplied payments, event keys) changes only through a journal record, so the snapshot it
  would write is the one on disk. Event keys past the window are still expired meanwhile
  (memory only; a snapshot that still holds them is expired again after recovery).
- **analytics** (OPS-M6): every environment's journal position and durable position are those
  of the last snapshot written, no environment came or went, and no audit record waits in a
  buffer. The database and the Parquet histories would come out the same; only their
  `snapshot_taken_at` would move. The first scheduled run after a start always runs.

A skip is counted (`allotment_checkpoints_total{result="skipped"}`,
`allotment_analytics_runs_total{result="skipped"}`). Explicit calls (the admin API's snapshot,
`checkpoint_all`) always run: whoever asks gets the work done.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import anyio
import anyio.lowlevel
import msgspec

from allotment.histogram import DURATION_BUCKETS, Histogram
from allotment.persistence.errors import CheckpointRefused
from allotment.persistence.reports import AnalyticsReport, CheckpointReport
from allotment.persistence.store_ports import AnalyticsRunner, AnalyticsSource, ShardStore
from allotment.runtime import heap
from allotment.runtime.clock import Clock
from allotment.runtime.errors import ShardUnavailable
from allotment.runtime.local_shard import LocalShard

__all__ = ("RESULTS", "CheckpointPolicy", "Upkeep", "UpkeepStatistics")

logger = logging.getLogger("allotment.system")

WRITTEN, SKIPPED, FAILED = "written", "skipped", "failed"
RESULTS = (WRITTEN, SKIPPED, FAILED)  # of a checkpoint or an analytics snapshot

# What an analytics snapshot was taken from: (environment, journal position, durable position)
# of every environment, in order.
_Mark = tuple[tuple[str, int, int], ...]


class CheckpointPolicy(msgspec.Struct, frozen=True, kw_only=True):
    every_s: float = 300.0
    every_records: int = 100_000
    poll_s: float = 1.0


class UpkeepStatistics:
    """Outcomes and durations of the upkeep, as plain counts (`/metrics` renders them)."""

    def __init__(self) -> None:
        self.checkpoints: dict[tuple[str, str], int] = {}  # (environment, result) -> count
        self.checkpoint_seconds: dict[str, Histogram] = {}  # environment -> durations
        self.checkpoint_bytes: dict[str, int] = {}  # environment -> size of the last snapshot
        self.analytics_runs: dict[str, int] = {}  # result -> count
        self.analytics_seconds = Histogram(DURATION_BUCKETS)

    def checkpoint(self, environment: str, result: str, report: CheckpointReport | None) -> None:
        key = (environment, result)
        self.checkpoints[key] = self.checkpoints.get(key, 0) + 1
        if report is not None:
            seconds = self.checkpoint_seconds.get(environment)
            if seconds is None:
                seconds = self.checkpoint_seconds[environment] = Histogram(DURATION_BUCKETS)
            seconds.observe(report.seconds)
            self.checkpoint_bytes[environment] = report.bytes

    def analytics(self, result: str, report: AnalyticsReport | None) -> None:
        self.analytics_runs[result] = self.analytics_runs.get(result, 0) + 1
        if report is not None:
            self.analytics_seconds.observe(report.seconds)


class Upkeep:
    """Checkpoints and analytics snapshots of `shards` (the system's own dict, which a rebuild
    updates in place)."""

    def __init__(
        self,
        storage: ShardStore,
        analytics: AnalyticsRunner,
        shards: Mapping[str, LocalShard],
        clock: Clock,
        policy: CheckpointPolicy,
        analytics_every_s: float,
    ) -> None:
        self.storage = storage
        self.analytics = analytics
        self._shards = shards
        self._clock = clock
        self._policy = policy
        self._analytics_every_s = analytics_every_s
        self._analytics_mark: _Mark | None = None  # None until a snapshot was written
        self.statistics = UpkeepStatistics()
        self.analytics_alive = False  # while the analytics schedule runs (readiness, OPS-P9)
        self.analytics_failure: str | None = None  # why its last run failed, until one works

    # -- checkpoints -----------------------------------------------------------------------

    async def run_checkpoints(self, environment: str) -> None:
        """Checkpoint every `every_s` seconds, or sooner after `every_records` records."""
        policy = self._policy
        waited = 0.0
        while True:
            await anyio.sleep(policy.poll_s)
            waited += policy.poll_s
            if waited >= policy.every_s or self.storage.due_for_checkpoint(
                environment, policy.every_records
            ):
                waited = 0.0
                try:
                    await self.checkpoint_if_changed(environment)
                except Exception:  # a refused or failed checkpoint never stops the server
                    logger.exception(
                        "checkpoint of %s failed; the journal still holds it all", environment
                    )

    async def checkpoint_if_changed(self, environment: str) -> CheckpointReport | None:
        """The scheduled checkpoint: None, and counted as skipped, when the journal has nothing
        the last checkpoint does not cover (OPS-M5).

        Raises:
            CheckpointRefused: the shard or its journal failed; nothing was published.
        """
        shard = self._shards[environment]
        for _ in shard.event_keys.expire_gradually(self._clock.now().date()):
            await anyio.lowlevel.checkpoint()  # requests run between tables
        if not self.storage.changed_since_checkpoint(environment):
            self.statistics.checkpoint(environment, SKIPPED, None)
            return None
        report = await self.checkpoint(environment)
        heap.settle()  # what lived until a checkpoint is state: keep it unscanned
        return report

    async def checkpoint(self, environment: str) -> CheckpointReport:
        """Checkpoint `environment` now, counting the outcome.

        Raises:
            CheckpointRefused: the shard or its journal failed; nothing was published.
        """
        try:
            report = await self.storage.checkpoint(environment, self._shards[environment])
        except Exception:
            self.statistics.checkpoint(environment, FAILED, None)
            raise
        self.statistics.checkpoint(environment, WRITTEN, report)
        return report

    async def checkpoint_all(self) -> list[CheckpointReport]:
        """Checkpoint every environment now, changed or not.

        Raises:
            ShardUnavailable: a shard or its journal failed; it is saved after its rebuild.
        """
        try:
            return [await self.checkpoint(environment) for environment in list(self._shards)]
        except CheckpointRefused as refused:
            raise ShardUnavailable(str(refused)) from refused

    # -- analytics -------------------------------------------------------------------------

    async def run_analytics(self) -> None:
        try:
            while True:
                await anyio.sleep(self._analytics_every_s)
                try:
                    await self.snapshot_analytics_if_changed()
                except Exception:
                    logger.exception("analytics snapshot failed; the next run retries")
        finally:
            self.analytics_alive = False  # readiness (OPS-P9) asks whether this loop runs

    async def snapshot_analytics_if_changed(self) -> AnalyticsReport | None:
        """The scheduled snapshot: None, and counted as skipped, when nothing changed since
        the last one written (OPS-M6).

        Raises:
            ShardUnavailable: a shard failed; its memory is not the journal's truth.
            AnalyticsFailed: the worker failed; the previous files stay.
        """
        idle = all(len(shard.audits) == 0 for shard in self._shards.values())
        if idle and self._mark() == self._analytics_mark:
            self.statistics.analytics(SKIPPED, None)
            return None
        return await self.snapshot_analytics()

    async def snapshot_analytics(self) -> AnalyticsReport:
        """Rebuild `analytics.duckdb` now (the admin API and the schedule both call this).

        Raises:
            ShardUnavailable: a shard failed; its memory is not the journal's truth.
            AnalyticsFailed: the worker failed; the previous files stay.
        """
        for shard in self._shards.values():
            shard.notice_journal_failure()
            if shard.failure is not None:  # its memory is not the journal's truth: publish none
                raise ShardUnavailable(shard.failure)
        mark = self._mark()
        positions = {environment: position for environment, position, _ in mark}
        sources: dict[str, AnalyticsSource] = dict(self._shards)
        try:
            report = await self.analytics.run_once(sources, positions, self.durable())
        except Exception as error:
            self.statistics.analytics(FAILED, None)
            self.analytics_failure = str(error) or type(error).__name__  # until a run works
            raise
        self.analytics_failure = None
        # Records appended while it ran are after `mark`: the next run sees a change.
        self._analytics_mark = mark
        self.statistics.analytics(WRITTEN, report)
        return report

    def durable(self) -> dict[str, int]:
        """Each environment's durable journal position: the history is exported up to it."""
        return {env: self.storage.journal(env).durable_position for env in self._shards}

    def _mark(self) -> _Mark:
        return tuple(
            (env, self.storage.journal(env).position, self.storage.journal(env).durable_position)
            for env in sorted(self._shards)
        )
