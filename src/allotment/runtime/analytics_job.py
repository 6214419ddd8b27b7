"""The analytics job: drain the hot path's buffers into Parquet history, collect the current
state in slices of the event loop, and rebuild `analytics.duckdb` on a worker thread."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pyarrow as pa
from anyio.lowlevel import checkpoint

from allotment.persistence.analytics import build_database, to_arrow, write_history
from allotment.persistence.analytics_rows import (
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

SLICE_CUSTOMERS = 100  # customers collected per slice of the event loop
SLICE_ROWS = 2_000  # history rows converted per slice


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
        tables: dict[str, list[pa.Table]] = {}
        info: list[pa.Table] = []
        customers = 0
        for environment, shard in shards.items():
            history += await self._history(shard, environment)
            catalog = shard.catalog
            for name, columns in catalog_rows(catalog).items():
                tables.setdefault(name, []).append(to_arrow(columns, environment))
            states = shard.states()
            customers += len(states)
            for start in range(0, len(states), SLICE_CUSTOMERS):
                rows = StateRows()
                for state in states[start : start + SLICE_CUSTOMERS]:
                    rows.add(state, catalog)
                for name, columns in rows.tables.items():
                    tables.setdefault(name, []).append(to_arrow(columns, environment))
                await checkpoint()
            if not states:
                for name, columns in StateRows().tables.items():
                    tables.setdefault(name, []).append(to_arrow(columns, environment))
            info.append(
                to_arrow(
                    {
                        "journal_position": [positions.get(environment, 0)],
                        "snapshot_taken_at": [taken_at],
                        "customers": [len(states)],
                    },
                    environment,
                )
            )
        path = await anyio.to_thread.run_sync(build_database, self.data_dir, tables, info)
        report = AnalyticsReport(
            path=str(path),
            taken_at=taken_at.isoformat(),
            customers=customers,
            history_rows=history,
            seconds=time.perf_counter() - started,
        )
        logger.info("analytics snapshot %s", msgspec.json.encode(report).decode())
        return report

    async def _history(self, shard: LocalShard, environment: str) -> int:
        """Drain the buffers in slices, converting each slice to Arrow on the loop (it holds the
        GIL either way; slices keep each hold short), then write Parquet on a thread."""
        written = 0
        sources = (
            ("events", shard.events, event_rows),
            ("entitlement_checks", shard.audits, audit_rows),
            ("credit_transactions", shard.ledger, ledger_rows),
        )
        for table, buffer, to_rows in sources:
            batches = [to_arrow(to_rows([]), environment)]  # fixes the schema when empty
            # Only what is there now: rows arriving meanwhile belong to the next snapshot, or
            # a busy server would keep this loop (and its batches) growing forever.
            left = len(buffer)
            drained: list[Any] = []
            while left > 0:
                rows = buffer.drain(min(SLICE_ROWS, left))
                left -= len(rows)
                drained += rows
                batches.append(to_arrow(to_rows(rows), environment))
                await checkpoint()
            try:
                written += await anyio.to_thread.run_sync(
                    write_history, self.data_dir, table, batches
                )
            except Exception:
                buffer.requeue(drained)  # ENT-33: retried with the next snapshot
                raise
        return written
