"""`ShardedSystem`: an environment's customers over N member systems, one per shard, each with
its own journal, snapshots, timer sweep and analytics under `<data-dir>/shards/<k>/` (SCL-20).

It is an `ActorSystem` to the front door: `route(environment)` gives the environment's
`ShardRouter` over every member's shard, and the system-wide operations (statistics, the
clock, checkpoints) go to every member. Members are `ActorSystem`s in this process; a front
door over Ray actors overrides `member_shards` (runtime/ray_shard.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from typing import Any, TypeVar, cast

import anyio
import msgspec

from allotment.domain.catalog import Catalog
from allotment.domain.cost import PriceTable
from allotment.persistence.ports import Journal
from allotment.persistence.reports import AnalyticsReport, CheckpointReport
from allotment.persistence.store_ports import AnalyticsMerger
from allotment.runtime.catalog_versions import LocalMember, ShardMember
from allotment.runtime.clock import ClockStore
from allotment.runtime.meter_reads import CloudEventHistory
from allotment.runtime.ports import Shard
from allotment.runtime.sharded_history import ShardedHistory
from allotment.runtime.sharding import ShardRouter
from allotment.runtime.system import ActorSystem, ShardStatistics, SystemSettings

__all__ = ("ShardedSystem", "merged_statistics")


def _no_journal(environment: str) -> Journal:
    raise AssertionError("a sharded system's journals are its members'")


class ShardedSystem(ActorSystem):
    """The front door's system when `--shards N` > 1 (SCL-20)."""

    def __init__(
        self,
        members: Sequence[ActorSystem],
        catalog: Catalog,
        prices: PriceTable,
        settings: SystemSettings,
        clock_store: ClockStore | None = None,
        merged_analytics: AnalyticsMerger | None = None,
    ) -> None:
        first = members[0]
        super().__init__(
            catalog, first.clock, prices, settings,
            _no_journal,  # never called: route() is the members'
            clock_store=clock_store,
        )  # fmt: skip
        self.members = list(members)
        self._routers: dict[str, ShardRouter] = {}
        # Readiness and /metrics read the first member's disk and analytics schedule: every
        # member's data directory is on the same volume (docs/scale-out.md).
        self.storage = first.storage
        self.upkeep = first.upkeep
        self.merged_analytics = merged_analytics  # SCL-74; None in memory
        histories = [member.history for member in self.members]
        if all(history is not None for history in histories):  # SCL-60: with data directories
            self.history = ShardedHistory(cast(list[CloudEventHistory], histories))

    def member_shards(self, environment: str) -> list[ShardMember]:
        """Each shard of `environment`, as the router reaches it."""
        return [
            LocalMember(member.route(environment), partial(member.shard, environment))
            for member in self.members
        ]

    def route(self, environment: str) -> Shard:
        router = self._routers.get(environment)
        if router is None:
            router = self._routers[environment] = ShardRouter(
                environment, self.member_shards(environment), self.clock.now
            )
        return router

    def statistics(self) -> list[ShardStatistics]:
        """One row per environment, its shards' counts added up (`/metrics` labels stay one
        per environment); failed when any of its shards is, with that shard's reason."""
        return merged_statistics(row for member in self.members for row in member.statistics())

    async def run_due(self) -> int:
        return sum([await member.run_due() for member in self.members])

    async def checkpoint_all(self) -> list[CheckpointReport]:
        return [report for member in self.members for report in await member.checkpoint_all()]

    @property
    def analytics_enabled(self) -> bool:
        return self.merged_analytics is not None

    async def snapshot_analytics(self) -> AnalyticsReport:
        """Every member's own `analytics.duckdb`, then one merged database of them all
        (SCL-74, SCL-75).

        Raises:
            ShardUnavailable: a shard failed; its memory is not the journal's truth.
        """
        assert self.merged_analytics is not None
        reports = [await member.snapshot_analytics() for member in self.members]
        return await self.merged_analytics.merge(reports)

    @property
    def serving(self) -> bool:
        return all(member.serving for member in self.members)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[ActorSystem]:
        async with AsyncExitStack() as stack:
            for member in self.members:
                await stack.enter_async_context(member.running())
            if self.merged_analytics is None:
                yield self
                return
            async with anyio.create_task_group() as tg:
                tg.start_soon(self.merged_analytics.follow)
                yield self
                tg.cancel_scope.cancel()


S = TypeVar("S", bound=msgspec.Struct)


def merged_statistics(rows: Iterable[ShardStatistics]) -> list[ShardStatistics]:
    """The shards' rows added up per environment (the Ray front door's too)."""
    merged: dict[str, ShardStatistics] = {}
    for row in rows:
        seen = merged.get(row.environment)
        merged[row.environment] = row if seen is None else _added(seen, row)
    return list(merged.values())


def _added(a: S, b: S) -> S:
    """Field by field: integers added, structs merged, the first failure kept."""
    changes: dict[str, Any] = {}
    for field in a.__struct_fields__:
        x, y = getattr(a, field), getattr(b, field)
        if isinstance(x, int) and isinstance(y, int):
            changes[field] = x + y
        elif isinstance(x, msgspec.Struct) and isinstance(y, msgspec.Struct):
            changes[field] = _added(x, y)
        elif x is None or x == "ok":
            changes[field] = y  # a failure (its status and reason) shows through
    return msgspec.structs.replace(a, **changes)
