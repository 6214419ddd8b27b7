"""The actor system: one shard per environment in this process, the clock, and the sweep that
fires due transitions (SCH-1) even for customers nobody is calling."""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

import anyio
import msgspec

from allotment.domain.catalog import Catalog
from allotment.domain.cost import PriceTable
from allotment.persistence.ports import Journal
from allotment.runtime.buffers import BufferStatistics
from allotment.runtime.clock import Clock, ManualClock
from allotment.runtime.shard import LocalShard, ShardSettings

__all__ = ("ActorSystem", "ClockNotManual", "ShardStatistics")


class ClockNotManual(RuntimeError):
    """The clock can only be moved when the server runs with `--clock manual`."""


class ShardStatistics(msgspec.Struct, frozen=True, kw_only=True):
    environment: str
    customers: int
    event_keys: int
    timers: int
    events: BufferStatistics
    audits: BufferStatistics


class ActorSystem:
    """Owns the shards. `running()` opens the task group that runs the sweep."""

    def __init__(
        self,
        catalog: Catalog,
        clock: Clock,
        prices: PriceTable,
        settings: ShardSettings,
        journal_factory: Callable[[str], Journal],
        timer_interval_s: float = 1.0,
        new_id: Callable[[], uuid.UUID] = uuid.uuid4,
    ) -> None:
        self.clock = clock
        self._catalog = catalog
        self._prices = prices
        self._settings = settings
        self._journal_factory = journal_factory
        self._timer_interval_s = timer_interval_s
        self._new_id = new_id
        self._shards: dict[str, LocalShard] = {}

    def shard(self, environment: str) -> LocalShard:
        """The shard of an environment ("test" or "live"); environments share no data (AUTH-4)."""
        shard = self._shards.get(environment)
        if shard is None:
            shard = LocalShard(
                self._catalog,
                self.clock,
                self._journal_factory(environment),
                self._prices,
                self._settings,
                self._new_id,
            )
            self._shards[environment] = shard
        return shard

    async def run_due(self) -> int:
        """Fire every transition due by now in every shard."""
        return sum([await shard.run_due() for shard in self._shards.values()])

    async def advance_clock(self, to: datetime) -> int:
        """Move the manual clock to `to` and apply everything due by then, before returning.

        Raises:
            ClockNotManual: the server runs on the system clock.
            ValueError: `to` is in the past.
        """
        if not isinstance(self.clock, ManualClock):
            raise ClockNotManual(
                "The clock can only be moved when the server runs with --clock manual."
            )
        self.clock.advance_to(to)
        return await self.run_due()

    def statistics(self) -> list[ShardStatistics]:
        return [
            ShardStatistics(
                environment=env,
                customers=shard.customer_count(),
                event_keys=len(shard.event_keys),
                timers=len(shard._timers),
                events=shard.events.statistics(),
                audits=shard.audits.statistics(),
            )
            for env, shard in self._shards.items()
        ]

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
            await self.run_due()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[ActorSystem]:
        """Run the sweep for as long as the context is open (a manual clock needs none)."""
        async with anyio.create_task_group() as tg:
            if not self.clock.manual:
                tg.start_soon(self._sweep)
            try:
                yield self
            finally:
                tg.cancel_scope.cancel()
