"""The analytics job: drain the hot path's buffers into Parquet history, collect the current
state in slices of the event loop, and rebuild `analytics.duckdb` on a worker thread."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import anyio
import msgspec
from anyio.lowlevel import checkpoint

from allotment.persistence.analytics import build_database, write_history
from allotment.persistence.analytics_rows import (
    Columns,
    StateRows,
    audit_rows,
    catalog_rows,
    event_rows,
    ledger_rows,
)
from allotment.runtime.clock import Clock
from allotment.runtime.shard import LocalShard

__all__ = ("AnalyticsJob", "AnalyticsReport")

logger = logging.getLogger("allotment.analytics")

SLICE_CUSTOMERS = 250  # customers collected per slice of the event loop


class AnalyticsReport(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    taken_at: str
    customers: int
    history_rows: int
    seconds: float


class AnalyticsJob:
    def __init__(self, data_dir: Path, clock: Clock) -> None:
        self.data_dir = data_dir
        self._clock = clock
        self._lock = anyio.Lock()

    async def run_once(
        self, shards: dict[str, LocalShard], positions: dict[str, int]
    ) -> AnalyticsReport:
        """One complete snapshot. Concurrent calls queue, so two never write at once."""
        async with self._lock:
            return await self._run(shards, positions)

    async def _run(
        self, shards: dict[str, LocalShard], positions: dict[str, int]
    ) -> AnalyticsReport:
        started = time.perf_counter()
        taken_at = self._clock.now()
        history = 0
        tables: dict[str, dict[str, Columns]] = {}
        info: dict[str, Columns] = {}
        for environment, shard in shards.items():
            drained = {
                "events": event_rows(shard.events.drain()),
                "entitlement_checks": audit_rows(shard.audits.drain()),
                "credit_transactions": ledger_rows(shard.ledger.drain()),
            }
            for table, columns in drained.items():
                history += await anyio.to_thread.run_sync(
                    write_history, self.data_dir, table, columns, environment
                )
            rows = StateRows()
            catalog = shard.catalog
            states = shard.states()
            for start in range(0, len(states), SLICE_CUSTOMERS):
                for state in states[start : start + SLICE_CUSTOMERS]:
                    rows.add(state, catalog)
                await checkpoint()
            tables[environment] = {**rows.tables, **catalog_rows(catalog)}
            info[environment] = {
                "journal_position": [positions.get(environment, 0)],
                "snapshot_taken_at": [taken_at],
                "customers": [len(states)],
            }
        path = await anyio.to_thread.run_sync(build_database, self.data_dir, tables, info)
        report = AnalyticsReport(
            path=str(path),
            taken_at=taken_at.isoformat(),
            customers=sum(len(s.states()) for s in shards.values()),
            history_rows=history,
            seconds=time.perf_counter() - started,
        )
        logger.info("analytics snapshot %s", msgspec.json.encode(report).decode())
        return report
