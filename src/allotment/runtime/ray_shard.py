"""Shards as Ray actors: the only module that imports `ray` (SCL-30).

The actor is a `ShardHost` (runtime/shard_host.py: a whole `ActorSystem` of its own, recovered
from its directory when the actor starts or Ray restarts it, SCL-31). `host_actors` makes one
per shard, named in the driver's namespace (`--ray-namespace`) and detached, so a front door
that starts later re-attaches to it instead of starting another (SCL-32).

`RayChannel` is the front door's way to one host, for `remote_shard.RemoteShard`: a call is
one actor call; an exception the host raised is raised again as itself; a host that died or
is being restarted answers `ShardUnavailable` (a 503 with Retry-After) until a probe sees it
ready again, so its customers wait while every other shard keeps serving (SCL-35).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, TypeVar, cast

import anyio
import msgspec
import ray
from ray import ObjectRef
from ray.actor import ActorHandle
from ray.exceptions import RayActorError, RayTaskError

from allotment.domain.catalog import Catalog
from allotment.domain.cost import PriceTable
from allotment.persistence.ports import Journal
from allotment.persistence.reports import AnalyticsReport
from allotment.persistence.store_ports import AnalyticsMerger
from allotment.runtime.clock import Clock, ClockStore
from allotment.runtime.errors import ShardUnavailable
from allotment.runtime.ports import Shard
from allotment.runtime.remote_history import RemoteHistory
from allotment.runtime.remote_shard import (
    Answer,
    EnvironmentView,
    RemoteMember,
    RemoteShard,
    Replica,
)
from allotment.runtime.shard_host import ShardHost
from allotment.runtime.sharded_history import ShardedHistory
from allotment.runtime.sharded_system import merged_statistics
from allotment.runtime.sharding import ShardRouter
from allotment.runtime.system import ActorSystem, ShardStatistics, SystemSettings

__all__ = (
    "RayChannel",
    "RayShard",
    "RaySystem",
    "actor_name",
    "attach_hosts",
    "connect",
    "host_actors",
    "ray_members",
    "wait_ready",
)

logger = logging.getLogger("allotment.ray")
NODE_RESOURCE = "allotment-shard-{k}"  # a node offering it hosts shard k (its volume, SCL-38)
RayShard = RemoteShard  # a RemoteShard over a RayChannel: what the front door routes to
Host = ActorHandle["ShardHost"]
R = TypeVar("R")
ENVIRONMENTS = ("test", "live")  # every key names one (AUTH-4); hosts serve both


def actor_name(k: int) -> str:
    return f"allotment-shard-{k}"


class RayChannel:
    """Calls into shard `index`'s host through its actor handle (see the module's doc).

    Ray holds a call to an actor it is restarting until the restart is done, so the front door
    learns of a death itself, at once: `watch()` keeps one call in flight that the host never
    answers, and that fails when the host's process dies. From then until a probe (`ready`)
    answers, that is until the host has recovered from its journal, every call is refused with
    `ShardUnavailable` without being sent (SCL-35). The watch's callback runs on Ray's thread
    and only sets a flag: Ray calls are made on the event loop, as each call looks.
    """

    def __init__(self, handle: Host, index: int) -> None:
        self.handle = handle
        self._index = index
        self._down = False  # set by the watch's callback when the process died
        self._closed = False
        self._watch: ObjectRef[None] | None = None
        self._probe: concurrent.futures.Future[Any] | None = None  # set while recovering
        self.unavailable = 0  # calls answered ShardUnavailable by this front door

    def watch(self) -> None:
        self._watch = self.handle.watch.remote()
        self._watch.future().add_done_callback(self._lost)

    def close(self) -> None:
        """Stop watching (the front door stops): the host drops the call it would never end."""
        self._closed = True
        if self._watch is not None:
            ray.cancel(self._watch)

    def _lost(self, _: concurrent.futures.Future[Any]) -> None:
        if not self._closed:
            self._down = True

    def _refuse_while_recovering(self) -> None:
        if not self._down:
            return
        probe = self._probe
        if probe is not None and probe.done():
            if probe.exception() is None:  # recovered: watch the new process
                self._probe = None
                self._down = False
                logger.warning("shard %d answers again", self._index)
                self.watch()
                return
            probe = None  # its restart failed, or it died again: Ray tries again, so do we
        if probe is None:
            logger.warning("shard %d is down; refusing its calls until it recovers", self._index)
            self._probe = self.handle.ready.remote(()).future()
        self.unavailable += 1
        raise ShardUnavailable(f"shard {self._index} is recovering from its journal")

    async def statistics(self) -> list[ShardStatistics]:
        return cast(list[ShardStatistics], await self._ask(self.handle.statistics))

    async def catch_up(self, to: datetime) -> int:
        return cast(int, await self._ask(self.handle.catch_up, to))

    async def snapshot_analytics(self) -> AnalyticsReport:
        return cast(AnalyticsReport, await self._ask(self.handle.snapshot_analytics))

    def _start_probe(self) -> None:
        self._probe = self.handle.ready.remote(()).future()

    async def call(
        self, environment: str, method: str, args: tuple[object, ...], known: str,
        stamp: int | None,
    ) -> Answer:  # fmt: skip
        return cast(
            Answer, await self._ask(self.handle.call, environment, method, args, known, stamp)
        )

    async def adopt(
        self, environment: str, version: int, change: Callable[[Shard], Awaitable[R]], known: str
    ) -> Answer:
        return cast(Answer, await self._ask(self.handle.adopt, environment, version, change, known))

    async def history(self, environment: str, method: str, args: tuple[object, ...]) -> object:
        return await self._ask(self.handle.history, environment, method, args)

    async def webhooks(self, method: str, args: tuple[object, ...]) -> object:
        return await self._ask(self.handle.webhooks, method, args)

    async def _ask(self, method: Any, *args: object) -> Any:
        self._refuse_while_recovering()
        try:
            answer = await method.remote(*args)
        except RayTaskError as error:  # the host raised: raise it here as itself
            cause = error.cause
            if isinstance(cause, Exception):
                raise cause from None
            raise
        except RayActorError as error:  # it died while the call was in flight
            logger.warning("shard %d unavailable: %s", self._index, error)
            self._down = True
            self.unavailable += 1
            raise ShardUnavailable(f"shard {self._index} is restarting") from None
        return answer


def host_actors(count: int, build_for: Callable[[int], Callable[[], ActorSystem]]) -> list[Host]:
    """Create shard hosts 0..count-1, or attach to those already running by name (SCL-32).

    Ray restarts a host whose process died without limit (SCL-31); its calls are not retried
    by Ray (a call may have changed state before the process died: the client retries it
    with its idempotency key instead). A host needs no CPU of its own to be placed, so four
    shards fit a two-core machine; a node advertising `allotment-shard-<k>` hosts shard k
    (the node with its volume, SCL-38).
    """
    resources = ray.cluster_resources()  # type: ignore[no-untyped-call]
    host_class: Any = ray.remote(ShardHost)  # Ray's stubs type neither options nor remote
    handles: list[Host] = []
    for k in range(count):
        pinned = NODE_RESOURCE.format(k=k)
        handle = host_class.options(
            name=actor_name(k), lifetime="detached", get_if_exists=True,
            max_restarts=-1, max_task_retries=0, num_cpus=0,
            resources={pinned: 0.01} if pinned in resources else None,
        ).remote(build_for(k), serving=True)  # fmt: skip
        handles.append(handle)
    return handles


def connect(address: str | None, namespace: str) -> str:
    """Join the Ray cluster at `address` ("auto": the one this machine runs), or start a local
    one for this process's lifetime (None); returns its address for other processes to join.
    """
    if address is None:
        ray.init(namespace=namespace, include_dashboard=False, log_to_driver=False)
    else:
        ray.init(address=address, namespace=namespace, log_to_driver=False)
    return str(ray.get_runtime_context().gcs_address)


def attach_hosts(count: int) -> list[Host]:
    """The running hosts 0..count-1, by name (a front door worker's: the server made them)."""
    return [ray.get_actor(actor_name(k)) for k in range(count)]


def wait_ready(handles: Sequence[Host]) -> None:
    """Block until every host has recovered and runs."""
    ray.get([handle.ready.remote(ENVIRONMENTS) for handle in handles])


async def ray_members(
    channels: Sequence[RayChannel], environments: Sequence[str]
) -> dict[str, list[RemoteMember]]:
    """Each environment's shards, one `RemoteMember` per host, each with the view its host
    recovered (this waits until every host has recovered)."""
    views: list[dict[str, EnvironmentView]] = await asyncio.gather(
        *(channel.handle.ready.remote(tuple(environments)) for channel in channels)
    )
    return {
        environment: [
            RemoteMember(Replica(channel, environment, view[environment]))
            for channel, view in zip(channels, views, strict=True)
        ]
        for environment in environments
    }


class RaySystem(ActorSystem):
    """The front door's system over shard hosts (Ray actors) (SCL-39): `route(environment)` is
    the environment's `ShardRouter` over one `RemoteMember` per host; the system-wide
    operations go to every host. It holds no customers, journal or analytics of its own.

    `statistics()` must answer without waiting (readiness and /metrics call it), so it is what
    the hosts said at most `statistics_every_s` ago; a host that cannot answer shows as failed.
    The admin API's `current_statistics()` asks every host (SCL-91).
    """

    ready_without_storage = (  # SCL-36: a failed or recovering host makes it not ready
        "every shard actor answers; each keeps its own data directory, not checked from here"
    )

    def __init__(
        self,
        handles: Sequence[Host],
        catalog: Catalog,
        prices: PriceTable,
        settings: SystemSettings,
        clock: Clock,
        clock_store: ClockStore | None = None,
        statistics_every_s: float = 1.0,
        merged_analytics: AnalyticsMerger | None = None,
    ) -> None:
        super().__init__(catalog, clock, prices, settings, _no_journal, clock_store=clock_store)
        self.merged_analytics = merged_analytics  # SCL-76: the shards' files must be visible
        self.channels = [RayChannel(handle, k) for k, handle in enumerate(handles)]
        self.history = ShardedHistory([RemoteHistory(channel) for channel in self.channels])
        self._routers: dict[str, ShardRouter] = {}
        self._host_statistics: list[list[ShardStatistics]] = [[] for _ in handles]
        self._statistics_every_s = statistics_every_s

    def route(self, environment: str) -> Shard:
        router = self._routers.get(environment)
        if router is None:
            raise RuntimeError("the Ray front door routes only while it runs")
        return router

    def statistics(self) -> list[ShardStatistics]:
        """Every host's, added up per environment as `ShardedSystem`'s are."""
        return merged_statistics(row for rows in self._host_statistics for row in rows)

    async def current_statistics(self) -> list[ShardStatistics]:
        """Every host's, asked now: the admin API reads its own writes (SCL-91)."""
        await asyncio.gather(*(self._refresh(k) for k in range(len(self.channels))))
        return self.statistics()

    async def _refresh(self, k: int) -> None:
        try:
            self._host_statistics[k] = await self.channels[k].statistics()
        except ShardUnavailable as unavailable:
            self._host_statistics[k] = [
                msgspec.structs.replace(s, status="failed", failure=unavailable.reason)
                for s in self._host_statistics[k]
            ]

    async def _refresh_statistics(self, k: int) -> None:
        while True:
            await anyio.sleep(self._statistics_every_s)
            await self._refresh(k)

    @property
    def analytics_enabled(self) -> bool:
        return self.merged_analytics is not None

    async def snapshot_analytics(self) -> AnalyticsReport:
        """Every host writes its own database, then this front door merges them (SCL-76)."""
        assert self.merged_analytics is not None
        reports = await asyncio.gather(*(c.snapshot_analytics() for c in self.channels))
        return await self.merged_analytics.merge(reports)

    async def run_due(self) -> int:
        """Every host fires what is due by this front door's clock."""
        now = self.clock.now()
        counts = await asyncio.gather(*(channel.catch_up(now) for channel in self.channels))
        return sum(counts)

    async def _catch_up_hosts(self) -> None:
        """Move every host's manual clock to this front door's. One that cannot now (it is
        overloaded, or recovering) is moved by the next advance: the front door serves."""
        now = self.clock.now()
        results = await asyncio.gather(
            *(channel.catch_up(now) for channel in self.channels), return_exceptions=True
        )
        for k, result in enumerate(results):
            if isinstance(result, Exception):
                logger.warning("shard %d's clock is not at the front door's yet: %r", k, result)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[ActorSystem]:
        """Wait for every host to have recovered, then route; statistics refresh meanwhile.
        A manual clock moves every host's to this front door's time first (SCL-92)."""
        members = await ray_members(self.channels, ENVIRONMENTS)
        if self.clock.manual:  # hosts started before this process: their clocks are behind
            await self._catch_up_hosts()
        for environment, shards in members.items():
            self._routers[environment] = ShardRouter(environment, shards, self.clock.now)
        for channel in self.channels:
            channel.watch()
        async with anyio.create_task_group() as tg:
            await self.current_statistics()
            for k in range(len(self.channels)):
                tg.start_soon(self._refresh_statistics, k)
            self._task_group = tg  # `serving` from here
            try:
                yield self
            finally:
                self._task_group = None
                for channel in self.channels:
                    channel.close()
                tg.cancel_scope.cancel()


def _no_journal(environment: str) -> Journal:
    raise AssertionError("a Ray front door's journals are its shard hosts'")
