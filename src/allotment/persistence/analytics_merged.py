"""The merged analytics database of a sharded front door (docs/scale-out.md SCL-74..SCL-76):
after the shards wrote theirs, `<data-dir>/analytics.duckdb` is rebuilt from all of them, on
a worker thread (DuckDB blocks). Both the in-process `ShardedSystem` and the Ray front door
use it: over Ray the shards' directories must be readable where the front door runs."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import anyio
import msgspec

from allotment.persistence.analytics_merge import merge_databases, merge_reports
from allotment.persistence.reports import AnalyticsReport
from allotment.persistence.shard_layout import shard_dir

__all__ = ("MergedAnalytics",)

logger = logging.getLogger("allotment.analytics")


class MergedAnalytics:
    """A `store_ports.AnalyticsMerger` over `<data-dir>/shards/<k>/` (SCL-74..SCL-76)."""

    def __init__(self, data_dir: Path, shards: int, every_s: float) -> None:
        self.data_dir = data_dir
        self.shard_dirs = [shard_dir(data_dir, k) for k in range(shards)]
        self.every_s = every_s
        self._lock = anyio.Lock()  # one merge at a time: each replaces the same file
        self._merged: list[int] | None = None  # the shards' files' mtimes at the last merge

    async def merge(self, reports: Sequence[AnalyticsReport]) -> AnalyticsReport:
        """The shards' databases just written (`reports`) merged into one; its report."""
        async with self._lock:
            marks = self._marks()
            report = await anyio.to_thread.run_sync(
                merge_reports, self.data_dir, self.shard_dirs, reports
            )
            self._merged = marks
        logger.info("analytics merged %s", msgspec.json.encode(report).decode())
        return report

    async def follow(self) -> None:
        """The schedule: each shard rebuilds its own database on its own schedule; the merged
        one is rebuilt once any of theirs changed since (a failure is retried next time)."""
        while True:
            await anyio.sleep(self.every_s)
            try:
                async with self._lock:
                    marks = self._marks()
                    if marks != self._merged and all(marks):
                        await anyio.to_thread.run_sync(
                            merge_databases, self.data_dir, self.shard_dirs
                        )
                        self._merged = marks
            except Exception:
                logger.exception("merging the shards' analytics failed; the next run retries")

    def _marks(self) -> list[int]:
        """Each shard's `analytics.duckdb` modification time (0: not written yet)."""
        marks = []
        for directory in self.shard_dirs:
            path = directory / "analytics.duckdb"
            marks.append(path.stat().st_mtime_ns if path.exists() else 0)
        return marks
