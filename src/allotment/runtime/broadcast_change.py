"""A catalog change decided alike on every shard (docs/scale-out.md SCL-13, SCL-60).

An OpenMeter meter, feature or notification rule is created by a `CatalogChange` that mints
its id in the turn (`ulid(ctx.now, ctx.new_id())`). Broadcast as it is, each shard would mint
its own, and the environment would hold one rule under three ids. `Alike` gives every shard
the same time and the same fresh ids (UUIDv5 of one seed and a counter), so the fact each
shard decides is the same. It is a plain object, so it crosses to a Ray host as it is.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime

import msgspec

from allotment.domain.catalog import Catalog
from allotment.domain.catalog_facts import CatalogFact
from allotment.domain.context import TurnContext
from allotment.runtime.ports import CatalogChange

__all__ = ("Alike",)


class Alike:
    """`change`, decided at `now` (None: each shard's own time) with ids from `seed`."""

    def __init__(self, change: CatalogChange, now: datetime | None) -> None:
        self.change = change
        self.now = now
        self.seed = uuid.uuid4()

    def __call__(self, catalog: Catalog, ctx: TurnContext) -> CatalogFact:
        ids: Iterator[uuid.UUID] = (uuid.uuid5(self.seed, str(n)) for n in itertools.count())
        new_id: Callable[[], uuid.UUID] = ids.__next__
        alike = msgspec.structs.replace(ctx, now=self.now or ctx.now, new_id=new_id)
        return self.change(catalog, alike)
