"""Placement and id routing over N in-process shards (docs/scale-out.md SCL-1..SCL-9)."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from allotment.config import Settings
from allotment.domain.catalog import Catalog
from allotment.domain.meters import ulid
from allotment.domain.replies import Reply
from allotment.domain.state import CustomerState, Profile
from allotment.runtime.catalog_versions import LocalMember, ShardMember
from allotment.runtime.placement import IdMint, placement_tag, shard_of, tag_of_id, tag_of_ulid
from allotment.runtime.ports import CustomerLookup, OmTarget, Shard
from allotment.runtime.records import EvaluationContext
from allotment.runtime.sharded_system import ShardedSystem
from allotment.runtime.sharding import ShardRouter
from allotment.wiring import build_system
from tests.conftest import START

pytestmark = pytest.mark.anyio


def test_placement_tag_is_a_named_stable_hash() -> None:
    """SCL-1: the same on every process and machine (a salted `hash()` would not be)."""
    assert placement_tag("test", "customer-1") == 0xA51A1C03  # BLAKE2b-32, forever
    assert placement_tag("test", "a") != placement_tag("live", "a")  # environments differ


def test_ten_thousand_customers_spread_within_ten_percent() -> None:
    """SCL-2: 10k reference ids over 3, 4 and 7 shards, each shard within ±10% of its share."""
    for shards in (3, 4, 7):
        counts = Counter(
            shard_of(placement_tag("test", f"cust-{i}"), shards) for i in range(10_000)
        )
        share = 10_000 / shards
        assert set(counts) == set(range(shards))
        assert all(abs(n - share) <= share * 0.10 for n in counts.values()), (shards, counts)


def test_minted_ids_carry_the_customer_tag_through_uuid_and_ulid() -> None:
    """SCL-3, SCL-5: ids a shard mints name the customer's shard, for any N."""
    mint = IdMint("test", 1, 3)
    customer = mint.customer_id("acme")
    minted = mint.new_id()
    assert tag_of_id(customer) == tag_of_id(minted) == placement_tag("test", "acme")
    assert minted.version == 4
    assert tag_of_ulid(ulid(START, minted)) == tag_of_id(minted)
    keyless = mint.customer_id(None)
    assert shard_of(tag_of_id(keyless), 3) == 1  # placed on the shard that minted it
    assert tag_of_ulid("not-a-ulid") is None


@pytest.fixture
def sharded(tmp_path: Path) -> ShardedSystem:
    system = build_system(Settings(clock="manual", data_dir=tmp_path, shards=3), persistent=False)
    assert isinstance(system, ShardedSystem)
    return system


async def test_every_id_routes_to_one_shard_without_broadcast(sharded: ShardedSystem) -> None:
    """SCL-3, SCL-7, SCL-8: after setting up customers, each call reaches exactly one member
    shard: counted by wrapping each member shard's methods."""
    router = sharded.route("test")
    assert isinstance(router, ShardRouter)
    calls: Counter[int] = Counter()
    for index, member in enumerate(router.members):
        _count_calls(member, index, calls)
    for i in range(30):
        await router.create_customer(f"c{i}", Profile(email="a@b.c"))
    placed = Counter(router.routes.of_reference(f"c{i}") for i in range(30))
    assert calls == placed  # creation went to the placed shard only
    ids = {f"c{i}": await router.read(CustomerLookup(external_id=f"c{i}"), _id) for i in range(30)}
    calls.clear()
    for ref, customer_id in ids.items():
        assert customer_id is not None
        expected = router.routes.of_reference(ref)
        assert router.routes.of_id(customer_id) == expected
        assert await router.read(CustomerLookup(customer_id=customer_id), _id) == customer_id
        view = await router.openmeter_turn(OmTarget(customer=str(customer_id)), None, _om_id)
        assert view == customer_id
        decision = await router.evaluate(ref, "api_calls", Decimal(1), _audit())
        assert decision is not None
    assert sum(calls.values()) == 3 * 30
    assert router.routes.searches == 0


def _id(state: CustomerState, catalog: Catalog, now: datetime) -> uuid.UUID:
    return state.id


def _om_id(state: CustomerState, reply: Reply | None, now: datetime) -> uuid.UUID:
    return state.id


def _audit() -> EvaluationContext:
    return EvaluationContext(method="GET")


def _count_calls(member: ShardMember, index: int, calls: Counter[int]) -> None:
    """Count every call the router makes on `member` (each goes through `stamped`)."""
    assert isinstance(member, LocalMember)
    original = member.stamped

    def stamped(version: int) -> Shard:
        calls[index] += 1
        return original(version)

    member.stamped = stamped  # type: ignore[method-assign]
