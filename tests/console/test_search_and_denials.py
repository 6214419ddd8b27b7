"""The runtime reads the console adds (CON-20, CON-26), through the `Shard` protocol on every
system variant (memory, journal, queued): customer search by index and page, and the recent
check denials."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from allotment.config import Settings
from allotment.domain.catalog import Catalog
from allotment.domain.commands import RecordUsage
from allotment.domain.replies import Done
from allotment.domain.state import CustomerState, Profile
from allotment.runtime.clock import ManualClock
from allotment.runtime.ports import CustomerLookup, CustomerSearch, Shard
from allotment.runtime.records import EvaluationContext
from allotment.runtime.system import ActorSystem
from allotment.wiring import build_system
from tests.conftest import START

pytestmark = pytest.mark.anyio


def _reference(state: CustomerState, _: Catalog, __: datetime) -> str:
    return state.external_id or ""


async def _customer(shard: Shard, ref: str, email: str) -> None:
    assert isinstance(await shard.create_customer(ref, Profile(email=email)), Done)


async def test_search_by_reference_or_email_and_pages_in_creation_order(
    system: ActorSystem,
) -> None:
    async with system.running():
        shard = system.route("test")
        for i in range(7):
            await _customer(shard, f"c{i}", "shared@example.com" if i % 3 == 0 else f"{i}@x.io")

        everyone = await shard.find_customers(CustomerSearch(offset=2, limit=3), _reference)
        assert (everyone.total, everyone.items) == (7, ["c2", "c3", "c4"])
        last = await shard.find_customers(CustomerSearch(offset=6, limit=3), _reference)
        assert last.items == ["c6"]

        by_ref = await shard.find_customers(CustomerSearch(text="c4"), _reference)
        assert (by_ref.total, by_ref.items) == (1, ["c4"])
        shared = CustomerSearch(text=" SHARED@Example.com ")
        by_email = await shard.find_customers(shared, _reference)
        assert by_email.total == 3 and sorted(by_email.items) == ["c0", "c3", "c6"]
        paged = CustomerSearch(text="shared@example.com", limit=2)
        assert len((await shard.find_customers(paged, _reference)).items) == 2
        nobody = await shard.find_customers(CustomerSearch(text="c4@"), _reference)
        assert (nobody.total, nobody.items) == (0, [])


async def test_an_auto_created_customer_is_found_by_the_email_it_registers_later(
    system: ActorSystem,
) -> None:
    """CUS-6: an event creates "u1" with no profile; registering it sets its email, and the
    index follows (a CustomerProfileSet fact)."""
    async with system.running():
        shard = system.route("test")
        event = RecordUsage(idempotency_key="e1", event_name="api_calls", occurred_at=START)
        await shard.ingest(CustomerLookup(external_id="u1"), event, None)
        late = CustomerSearch(text="late@x.io")
        assert (await shard.find_customers(late, _reference)).total == 0
        await _customer(shard, "u1", "Late@x.io")
        assert (await shard.find_customers(late, _reference)).items == ["u1"]


async def test_recent_denials_are_the_customers_own_newest_first(system: ActorSystem) -> None:
    async with system.running():
        shard = system.route("test")
        for ref in ("d1", "d2"):
            await _customer(shard, ref, f"{ref}@x.io")
        for ref, feature in (("d1", "api_calls"), ("d2", "api_calls"), ("d1", "sso")):
            decision = await shard.evaluate(ref, feature, None, EvaluationContext(method="GET"))
            assert not decision.allowed  # no subscription: denied
        denials = await shard.recent_denials(CustomerLookup(external_id="d1"), 10)
        assert [d.feature_key for d in denials] == ["sso", "api_calls"]
        assert all(d.external_id == "d1" and not d.allowed and d.reason for d in denials)
        assert len(await shard.recent_denials(CustomerLookup(external_id="d1"), 1)) == 1
        assert await shard.recent_denials(CustomerLookup(external_id="nobody"), 10) == []


async def test_the_email_index_is_rebuilt_by_recovery(tmp_path: Path) -> None:
    """Recovery replays facts without indexing them, then reindexes every customer."""
    settings = Settings(clock="manual", data_dir=tmp_path, durability="write")
    first = build_system(settings, ManualClock(START))
    async with first.running():
        await _customer(first.route("test"), "kept", "Kept@x.io")
    again = build_system(settings, ManualClock(START))
    async with again.running():
        found = await again.route("test").find_customers(
            CustomerSearch(text="kept@x.io"), _reference
        )
        assert found.items == ["kept"]
