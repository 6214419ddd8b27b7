"""The catalog across shards (SCL-13..SCL-16): every change is broadcast under the next
version, each shard keeps the version of the catalog it holds, and refuses a call stamped
with an older one (`CatalogStale`): the router waits for the change to reach every shard,
then retries the call stamped anew. So once a change's 200 is sent, no call runs on a shard
against the catalog before it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

import anyio

from allotment.domain.catalog import Catalog
from allotment.domain.cost import PriceTable
from allotment.runtime.ports import Shard

__all__ = ("CatalogStale", "CatalogVersions", "HeldVersion", "LocalMember", "ShardMember")

R = TypeVar("R")


class CatalogStale(RuntimeError):
    """The shard holds a newer catalog (`version`) than the call was stamped with; nothing
    ran. The router retries the call (SCL-14)."""

    def __init__(self, version: int) -> None:
        super().__init__(f"the shard's catalog is at version {version}")
        self.version = version


class ShardMember(Protocol):
    """One shard as its router reaches it (in this process, or a Ray actor's proxy)."""

    @property
    def catalog(self) -> Catalog: ...

    @property
    def price_table(self) -> PriceTable: ...

    def customer_count(self) -> int: ...

    def stamped(self, version: int) -> Shard:
        """The shard for one call decided on catalog `version`: its coroutines raise
        `CatalogStale`, having done nothing, when the shard's catalog is newer (SCL-14)."""
        ...

    async def adopt(self, version: int, change: Callable[[Shard], Awaitable[R]]) -> R:
        """Run a catalog or price change, then hold `version` (SCL-13)."""
        ...


class HeldVersion(Protocol):
    """Where a shard keeps the catalog version it holds: journalled, so a restarted shard
    still knows it (SCL-77; `LocalShard`)."""

    catalog_version: int

    async def hold_catalog_version(self, version: int) -> None: ...


class LocalMember:
    """A shard in this process: the stamp is checked as the call starts, which is when it
    runs (one event loop, one turn at a time)."""

    def __init__(self, shard: Shard, held: Callable[[], HeldVersion]) -> None:
        self.shard = shard
        self.held = held  # asked each time: a rebuilt shard is another object

    @property
    def version(self) -> int:
        return self.held().catalog_version

    @property
    def catalog(self) -> Catalog:
        return self.shard.catalog

    @property
    def price_table(self) -> PriceTable:
        return self.shard.price_table

    def customer_count(self) -> int:
        return self.shard.customer_count()

    def stamped(self, version: int) -> Shard:
        if version < self.version:
            raise CatalogStale(self.version)
        return self.shard

    async def adopt(self, version: int, change: Callable[[Shard], Awaitable[R]]) -> R:
        result = await change(self.shard)
        await self.held().hold_catalog_version(version)
        return result


class CatalogVersions:
    """The router's side: the version it stamps calls with, and the broadcasts."""

    def __init__(self, members: Sequence[ShardMember]) -> None:
        self.members = members
        self.version = 0
        self.retries = 0  # calls refused as stale and run again (the tests read it)
        self._lock = anyio.Lock()  # one change at a time, in version order
        self._done = anyio.Event()  # set when the running change reached every shard
        self._done.set()

    @property
    def catalog(self) -> Catalog:
        return self.members[0].catalog

    async def call(self, index: int, call: Callable[[Shard], Awaitable[R]]) -> R:
        """SCL-14: `call` on shard `index`, retried while the shard's catalog is newer."""
        while True:
            version = self.version
            try:
                return await call(self.members[index].stamped(version))
            except CatalogStale as stale:
                self.retries += 1
                await self._done.wait()  # a change of ours still on its way: let it finish
                self.version = max(self.version, stale.version)  # or another front door's

    async def broadcast(self, change: Callable[[Shard], Awaitable[Catalog]]) -> Catalog:
        return (await self.broadcast_all(change))[0]

    async def broadcast_all(self, change: Callable[[Shard], Awaitable[R]]) -> list[R]:
        """SCL-13: `change` on shard 0 first (whatever it refuses, nothing changed anywhere),
        then on the others; the new version is stamped once every shard holds it. A shard
        failing midway fails the request: the shards that took it hold the newer version and
        catalog, the others the older, until the client's retry re-sends it (SCL-16)."""
        async with self._lock:
            self._done = anyio.Event()
            try:
                version = self.version + 1
                results = [await self.members[0].adopt(version, change)]
                for member in self.members[1:]:
                    results.append(await member.adopt(version, change))
                self.version = version
                return results
            finally:
                self._done.set()
