"""`ShardHost`: one shard as a Ray actor hosts it, without importing `ray` itself.

The actor is a whole `ActorSystem` of its own, persistent under `<data-dir>/shards/<k>/`
(journal, snapshots, timer sweep, history exporter), recovered from that directory when the
actor starts, and again when Ray restarts it after its process died (`max_restarts`, SCL-31).
It answers the front door's calls through `hosted_shards.HostedShards`. runtime/ray_shard.py
makes it an actor (`host_actors`, named and detached, SCL-32) and holds the front door's side.
"""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from datetime import datetime
from typing import TypeVar

import anyio

from allotment.persistence.reports import AnalyticsReport
from allotment.runtime import heap
from allotment.runtime.errors import ShardUnavailable
from allotment.runtime.hosted_shards import HostedShards
from allotment.runtime.ports import Shard
from allotment.runtime.remote_shard import Answer, EnvironmentView
from allotment.runtime.system import ActorSystem, ShardStatistics

__all__ = ("ShardHost",)

R = TypeVar("R")


class ShardHost:
    """The actor hosting one shard: `build()` recovers its system from its own directory.

    Construction is recovery: Ray does not deliver a call to an actor before its constructor
    returned, so no call ever sees a half-recovered shard. The system's tasks (journal
    writers, checkpoints, sweep, analytics) run on the actor's event loop from the first call.
    """

    def __init__(self, build: Callable[[], ActorSystem], *, serving: bool = False) -> None:
        if serving:  # the Ray worker process this host lives in serves for its life
            heap.serving()
        self._hosted = HostedShards(build())
        self._started: anyio.Event | None = None
        self._failure: BaseException | None = None
        self._task: asyncio.Task[None] | None = None

    async def _serve(self, started: anyio.Event) -> None:
        system = self._hosted.system
        try:  # its webhook service first: recovery's re-feed of the journal goes to it (SCL-67)
            async with AsyncExitStack() as stack:
                if system.webhooks is not None:
                    await stack.enter_async_context(system.webhooks.running())
                await stack.enter_async_context(system.running())
                started.set()
                await anyio.sleep_forever()
        except BaseException as error:  # the next call says why, instead of waiting for ever
            self._failure = error
            started.set()
            raise

    async def _running(self) -> None:
        if self._started is None:
            self._started = anyio.Event()
            self._task = asyncio.get_running_loop().create_task(self._serve(self._started))
        await self._started.wait()
        if self._failure is not None:
            raise ShardUnavailable(f"the shard's system stopped: {self._failure!r}")

    async def ready(self, environments: Sequence[str]) -> dict[str, EnvironmentView]:
        """The environments' views, once the system runs (the front door's probe)."""
        await self._running()
        return {environment: self._hosted.view(environment) for environment in environments}

    async def call(
        self, environment: str, method: str, args: tuple[object, ...], known: str,
        stamp: int | None,
    ) -> Answer:  # fmt: skip
        await self._running()
        return await self._hosted.call(environment, method, args, known, stamp)

    async def adopt(
        self, environment: str, version: int, change: Callable[[Shard], Awaitable[R]], known: str
    ) -> Answer:
        await self._running()
        return await self._hosted.adopt(environment, version, change, known)

    async def history(self, environment: str, method: str, args: tuple[object, ...]) -> object:
        await self._running()
        return await self._hosted.history(environment, method, args)

    async def webhooks(self, method: str, args: tuple[object, ...]) -> object:
        await self._running()
        return await self._hosted.webhooks(method, args)

    async def statistics(self) -> list[ShardStatistics]:
        await self._running()
        return self._hosted.system.statistics()

    async def snapshot_analytics(self) -> AnalyticsReport:
        """This shard's own `analytics.duckdb`, for the front door to merge (SCL-76)."""
        await self._running()
        return await self._hosted.system.snapshot_analytics()

    async def catch_up(self, to: datetime) -> int:
        """Fire what is due by `to`: a manual clock is moved there first (each host keeps its
        own, saved in its directory, and the front door's moves them all); a system clock is
        already there."""
        await self._running()
        system = self._hosted.system
        if system.clock.manual and to > system.clock.now():
            fired = await system.advance_clock(to)
        else:
            fired = await system.run_due()
        if system.webhooks is not None:
            system.webhooks.wake()  # retries due by the new time go now
        return fired

    async def reset(self, build: Callable[[], ActorSystem]) -> None:
        """Stop this host's system and host `build()`'s instead, in the same process: a new
        shard (its data directory, catalog and clock are `build`'s) without Ray starting a
        new actor. The test suite's three hosts serve one scenario after another this way
        (SCL-90); a server never calls it."""
        task = self._task
        if task is not None:
            task.cancel()  # its system's `running()` ends as at any stop (journals flushed)
            await asyncio.wait([task])
        self._started = self._failure = self._task = None
        self._hosted = HostedShards(build())
        gc.unfreeze()  # recovery froze what was alive, the old system's garbage too (heap.py)

    async def watch(self) -> None:
        """Never answers: the front door's way to learn that this process died (RayChannel)."""
        await anyio.sleep_forever()

    def pid(self) -> int:
        """The actor's process id (the tests kill it)."""
        return os.getpid()
