"""The catalog across shards: broadcast under versions, stale calls refused and retried
(docs/scale-out.md SCL-13..SCL-16)."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path

import anyio
import pytest

from allotment.config import Settings
from allotment.domain.catalog import Catalog, Feature
from allotment.domain.catalog_facts import CatalogUpdated
from allotment.domain.context import TurnContext
from allotment.domain.meters import Meter, MeterAggregation, MeterDefined, ulid
from allotment.domain.state import CustomerState, Profile
from allotment.runtime.catalog_versions import CatalogStale, LocalMember
from allotment.runtime.clock import ManualClock
from allotment.runtime.ports import CustomerLookup
from allotment.runtime.sharded_system import ShardedSystem
from allotment.runtime.sharding import ShardRouter
from allotment.wiring import build_system
from tests.conftest import START

pytestmark = pytest.mark.anyio


@pytest.fixture
def router(tmp_path: Path) -> ShardRouter:
    settings = Settings(clock="manual", data_dir=tmp_path, shards=3)
    system = build_system(settings, ManualClock(START), persistent=False)
    assert isinstance(system, ShardedSystem)
    router = system.route("test")
    assert isinstance(router, ShardRouter)
    return router


def _feature(key: str) -> Feature:
    return Feature(id=uuid.uuid5(uuid.NAMESPACE_URL, key), key=key, name=key)


async def test_a_member_refuses_an_older_stamp_and_the_router_retries(router: ShardRouter) -> None:
    """SCL-14: a shard already at version 1 (another front door's change) refuses a call
    stamped 0; the router takes version 1 and runs the call once, stamped anew."""
    member = router.members[1]
    assert isinstance(member, LocalMember)
    member.held().catalog_version = 1
    with pytest.raises(CatalogStale):
        member.stamped(0)
    reference = next(f"r{i}" for i in range(100) if router.routes.of_reference(f"r{i}") == 1)
    assert await router.create_customer(reference, Profile(email="a@b.c")) is not None
    assert router.versions.retries == 1
    assert router.versions.version == 1


async def test_no_call_runs_on_an_old_catalog_after_the_upsert_returns(
    router: ShardRouter,
) -> None:
    """SCL-13, SCL-15: reads on every shard run while a feature is added; every read that
    starts after `upsert_catalog` returned sees the feature, on every shard."""
    references = [f"c{i}" for i in range(30)]
    for reference in references:
        await router.create_customer(reference, Profile(email="a@b.c"))
    returned = False
    stale_after: list[str] = []
    seen_new = 0

    def sees(state: CustomerState, catalog: Catalog, now: datetime) -> bool:
        return "fresh" in catalog.features

    async def load(reference: str) -> None:
        nonlocal seen_new
        for _ in range(40):
            started_after = returned
            has = await router.read(CustomerLookup(external_id=reference), sees)
            if started_after and not has:
                stale_after.append(reference)
            seen_new += bool(has)
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:
        for reference in references:
            tg.start_soon(load, reference)
        await anyio.lowlevel.checkpoint()
        await router.upsert_catalog(CatalogUpdated(at=START, features=(_feature("fresh"),)))
        returned = True
    assert stale_after == []
    assert seen_new > 0
    assert all("fresh" in member.catalog.features for member in router.members)
    assert router.versions.version == 1


async def test_a_broadcast_change_that_mints_an_id_mints_the_same_one_on_every_shard(
    router: ShardRouter,
) -> None:
    """SCL-13 (SCL-60): a meter created through the router (its id minted in the change, as
    OpenMeter's meters, features and notification rules are) has one id and one creation time
    on every shard, so a read by id and every shard's history agree."""

    def create(catalog: Catalog, ctx: TurnContext) -> MeterDefined:
        meter = Meter(id=ulid(ctx.now, ctx.new_id()), slug="calls", name="calls",
                      aggregation=MeterAggregation.COUNT, event_type="call",
                      created_at=ctx.now, updated_at=ctx.now)  # fmt: skip
        return MeterDefined(at=ctx.now, meter=meter)

    await router.change_catalog(create)
    meters = [member.catalog.meters for member in router.members]
    assert len(meters[0]) == 1 and meters[1] == meters[0] == meters[2]
