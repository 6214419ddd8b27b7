"""Shards as Ray actors: the only module (with the CLI) that imports `ray` (SCL-30).

`ShardHost` is the actor: a whole `ActorSystem` of its own, persistent under
`<data-dir>/shards/<k>/` (journal, snapshots, timer sweep, history exporter), recovered from
that directory when the actor starts, and again when Ray restarts it after its process died
(`max_restarts`, SCL-31). It is named, in a namespace, and detached, so a front door that
starts later re-attaches to it instead of starting another (SCL-32).

`RayChannel` is the front door's way to one host, for `remote_shard.RemoteShard`: a call is
one actor call; an exception the host raised is raised again as itself; a host that died or
is being restarted answers `ShardUnavailable` (a 503 with Retry-After) until a probe sees it
ready again, so its customers wait while every other shard keeps serving (SCL-35).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import anyio
import ray
from ray.actor import ActorHandle
from ray.exceptions import RayActorError, RayTaskError

from allotment.runtime.errors import ShardUnavailable
from allotment.runtime.ports import Shard
from allotment.runtime.remote_shard import (
    Answer,
    EnvironmentView,
    HostedShards,
    RemoteMember,
    RemoteShard,
    Replica,
)
from allotment.runtime.system import ActorSystem, ShardStatistics

__all__ = (
    "NAMESPACE",
    "RayChannel",
    "RayShard",
    "ShardHost",
    "actor_name",
    "host_actors",
    "ray_members",
)

logger = logging.getLogger("allotment.ray")
NAMESPACE = "allotment"
NODE_RESOURCE = "allotment-shard-{k}"  # a node offering it hosts shard k (its volume, SCL-38)
RayShard = RemoteShard  # a RemoteShard over a RayChannel: what the front door routes to
Host = ActorHandle["ShardHost"]
R = TypeVar("R")


def actor_name(k: int) -> str:
    return f"allotment-shard-{k}"


class ShardHost:
    """The actor hosting one shard: `build()` recovers its system from its own directory.

    Construction is recovery: Ray does not deliver a call to an actor before its constructor
    returned, so no call ever sees a half-recovered shard. The system's tasks (journal
    writers, checkpoints, sweep, analytics) run on the actor's event loop from the first call.
    """

    def __init__(self, build: Callable[[], ActorSystem]) -> None:
        self._hosted = HostedShards(build())
        self._started: anyio.Event | None = None
        self._failure: BaseException | None = None
        self._task: asyncio.Task[None] | None = None

    async def _serve(self, started: anyio.Event) -> None:
        try:
            async with self._hosted.system.running():
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

    async def statistics(self) -> list[ShardStatistics]:
        await self._running()
        return self._hosted.system.statistics()

    async def advance_clock(self, to: datetime) -> int:
        """Move this shard's manual clock (each host keeps its own, saved in its directory)."""
        await self._running()
        return await self._hosted.system.advance_clock(to)

    def pid(self) -> int:
        """The actor's process id (the tests kill it)."""
        return os.getpid()


class RayChannel:
    """Calls into shard `index`'s host through its actor handle (see the module's doc)."""

    def __init__(self, handle: Host, index: int) -> None:
        self.handle = handle
        self._index = index
        self._probe: concurrent.futures.Future[Any] | None = None
        self.unavailable = 0  # calls answered ShardUnavailable by this front door

    def _refuse_while_recovering(self) -> None:
        probe = self._probe
        if probe is None:
            return
        if probe.done() and probe.exception() is None:
            self._probe = None
            logger.warning("shard %d answers again", self._index)
            return
        if probe.done():  # it died again, or its restart failed: ask again
            self._start_probe()
        self.unavailable += 1
        raise ShardUnavailable(f"shard {self._index} is recovering from its journal")

    def _start_probe(self) -> None:
        self._probe = self.handle.ready.remote(()).future()

    async def call(
        self, environment: str, method: str, args: tuple[object, ...], known: str,
        stamp: int | None,
    ) -> Answer:  # fmt: skip
        return await self._ask(self.handle.call, environment, method, args, known, stamp)

    async def adopt(
        self, environment: str, version: int, change: Callable[[Shard], Awaitable[R]], known: str
    ) -> Answer:
        return await self._ask(self.handle.adopt, environment, version, change, known)

    async def _ask(self, method: Any, *args: object) -> Answer:
        self._refuse_while_recovering()
        try:
            answer: Answer = await method.remote(*args)
        except RayTaskError as error:  # the host raised: raise it here as itself
            cause = error.cause
            if isinstance(cause, Exception):
                raise cause from None
            raise
        except RayActorError as error:  # died, restarting, or unreachable for now
            logger.warning("shard %d unavailable: %s", self._index, error)
            if self._probe is None:
                self._start_probe()
            self.unavailable += 1
            raise ShardUnavailable(f"shard {self._index} is restarting") from None
        return answer


def host_actors(
    count: int, build_for: Callable[[int], Callable[[], ActorSystem]]
) -> list[Host]:
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
            name=actor_name(k), namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
            max_restarts=-1, max_task_retries=0, num_cpus=0,
            resources={pinned: 0.01} if pinned in resources else None,
        ).remote(build_for(k))  # fmt: skip
        handles.append(handle)
    return handles


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
