"""`ShardedSystem`: an environment's customers over N member systems, one per shard, each with
its own journal, snapshots, timer sweep and analytics under `<data-dir>/shards/<k>/` (SCL-20).

It is an `ActorSystem` to the front door: `route(environment)` gives the environment's
`ShardRouter` over every member's shard, and the system-wide operations (statistics, the
clock, checkpoints) go to every member. Members are `ActorSystem`s in this process; a front
door over Ray actors overrides `member_shards` (runtime/ray_shard.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

import msgspec

from allotment.domain.catalog import Catalog
from allotment.domain.cost import PriceTable
from allotment.persistence.ports import Journal
from allotment.persistence.reports import AnalyticsReport, CheckpointReport
from allotment.runtime.catalog_versions import LocalMember, ShardMember
from allotment.runtime.clock import ClockStore
from allotment.runtime.ports import Shard
from allotment.runtime.sharding import ShardRouter
from allotment.runtime.system import ActorSystem, ShardStatistics, SystemSettings

__all__ = ("ShardedSystem",)


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

    def member_shards(self, environment: str) -> list[ShardMember]:
        """Each shard of `environment`, as the router reaches it."""
        return [LocalMember(member.route(environment)) for member in self.members]

    def route(self, environment: str) -> Shard:
        router = self._routers.get(environment)
        if router is None:
            router = self._routers[environment] = ShardRouter(
                environment, self.member_shards(environment)
            )
        return router

    def statistics(self) -> list[ShardStatistics]:
        """Every member's, each environment named with its shard (`test/2`)."""
        return [
            msgspec.structs.replace(s, environment=f"{s.environment}/{k}")
            for k, member in enumerate(self.members)
            for s in member.statistics()
        ]

    async def run_due(self) -> int:
        return sum([await member.run_due() for member in self.members])

    async def checkpoint_all(self) -> list[CheckpointReport]:
        return [report for member in self.members for report in await member.checkpoint_all()]

    async def snapshot_analytics(self) -> AnalyticsReport:
        """Every member's own `analytics.duckdb`; the report is the first member's (merging
        them into one database is issue 19's item 5, not done here)."""
        reports = [await member.snapshot_analytics() for member in self.members]
        return reports[0]

    @property
    def serving(self) -> bool:
        return all(member.serving for member in self.members)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[ActorSystem]:
        async with AsyncExitStack() as stack:
            for member in self.members:
                await stack.enter_async_context(member.running())
            yield self
