"""How a `ShardRouter` (runtime/sharding.py) reaches its shards: one shard, stamped with the
catalog version (SCL-14); every shard at once, results in shard order (SCL-10); or the shard
a lookup names, found in O(1) from the call's arguments (runtime/keyed_routes.py, SCL-5) or, for
a key chosen outside allotment, asked of every shard once and then kept (SCL-8).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TypeVar

import anyio

from allotment.domain.catalog import Catalog
from allotment.domain.state import CustomerState
from allotment.runtime.catalog_versions import CatalogVersions, ShardMember
from allotment.runtime.environment_wide import EnvironmentWide
from allotment.runtime.keyed_routes import KeyedRoutes
from allotment.runtime.ports import CustomerLookup, Shard

__all__ = ("RouterReach", "exists")

R = TypeVar("R")


class RouterReach:
    """A router's shards, `members`, and the ways a call reaches them (see the module's doc)."""

    def __init__(
        self,
        environment: str,
        members: Sequence[ShardMember],
        now: Callable[[], datetime] | None = None,
    ) -> None:
        assert members, "a router needs at least one shard"
        self.environment = environment
        self._now = now  # the time a broadcast catalog change is decided at, on every shard
        self.members = list(members)
        self.versions = CatalogVersions(self.members)
        self.routes = KeyedRoutes(environment, len(self.members))
        self.shared = EnvironmentWide(self.routes, self.versions, self.members)  # SCL-80

    # -- reaching one shard --------------------------------------------------------------------

    async def _on(self, index: int, call: Callable[[Shard], Awaitable[R]]) -> R:
        """`call` on shard `index`, stamped with the catalog version (SCL-14)."""
        return await self.versions.call(index, call)

    async def _gather(self, call: Callable[[Shard], Awaitable[R]]) -> list[R]:
        """`call` on every shard at once, results in shard order (SCL-10)."""
        return await self._gather_each(lambda _, shard: call(shard))

    async def _gather_each(self, call: Callable[[int, Shard], Awaitable[R]]) -> list[R]:
        """As `_gather`, `call` told which shard it runs on."""
        results: list[R | None] = [None] * len(self.members)

        async def one(index: int) -> None:
            results[index] = await self._on(index, lambda shard: call(index, shard))

        async with anyio.create_task_group() as tg:
            for index in range(len(self.members)):
                tg.start_soon(one, index)
        return results  # type: ignore[return-value]  # every slot filled by its task

    async def _find(self, lookup: CustomerLookup) -> int | None:
        """The shard of a customer named by id, reference or Stripe id (SCL-5, SCL-7)."""
        index = self.routes.of_lookup(lookup)
        if index is not None or lookup.stripe_customer_id is None:
            return index
        return await self._search(lambda shard: shard.read(lookup, exists), self.routes.stripe,
                                  lookup.stripe_customer_id)  # fmt: skip

    async def _search(
        self,
        probe: Callable[[Shard], Awaitable[object]],
        learned: dict[str, int],
        key: str,
    ) -> int | None:
        """SCL-8: a key chosen outside allotment that this router never saw placed (a Stripe
        id, a reservation id of another front door): asked of every shard once, then kept."""
        found = [i for i, hit in enumerate(await self._gather(probe)) if hit not in (None, False)]
        self.routes.searches += 1
        if found:
            learned[key] = found[0]
            return found[0]
        return None


def exists(state: CustomerState, catalog: Catalog, now: datetime) -> bool:
    return True
