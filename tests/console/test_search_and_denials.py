"""The runtime reads the console adds (CON-20, CON-26), through the `Shard` protocol on every
system variant (memory, journal, queued): customer search by index and page, and the recent
check denials."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from allotment.config import Settings
from allotment.domain.catalog import Catalog
from allotment.domain.commands import RecordUsage
from allotment.domain.replies import Done, UsageAccepted
from allotment.domain.state import CustomerState, Profile
from allotment.runtime.clock import ManualClock
from allotment.runtime.meter_reads import CloudEventHistory, HistoryUnavailable
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
    """Over shards, creation order is `created_at` order (SCL-100): the customers are made a
    second apart, as a real clock would have them."""
    async with system.running():
        shard = system.route("test")
        for i in range(7):
            await system.advance_clock(START + timedelta(seconds=i + 1))
            await _customer(shard, f"c{i}", "shared@example.com" if i % 3 == 0 else f"{i}@x.io")

        everyone = await shard.find_customers(CustomerSearch(offset=2, limit=3), _reference)
        assert (everyone.total, everyone.items) == (7, ["c2", "c3", "c4"])
        last = await shard.find_customers(CustomerSearch(offset=6, limit=3), _reference)
        assert (last.items, last.next) == (["c6"], "")
        assert [ref async for ref in _every_page(shard, "", 2)] == [f"c{i}" for i in range(7)]

        by_ref = await shard.find_customers(CustomerSearch(text="c4"), _reference)
        assert (by_ref.total, by_ref.items) == (1, ["c4"])
        shared = CustomerSearch(text=" SHARED@Example.com ")
        by_email = await shard.find_customers(shared, _reference)
        assert by_email.total == 3 and sorted(by_email.items) == ["c0", "c3", "c6"]
        paged = CustomerSearch(text="shared@example.com", limit=2)
        assert len((await shard.find_customers(paged, _reference)).items) == 2
        assert sorted([r async for r in _every_page(shard, "Shared@example.com", 1)]) == [
            "c0", "c3", "c6"
        ]  # fmt: skip
        nobody = await shard.find_customers(CustomerSearch(text="c4@"), _reference)
        assert (nobody.total, nobody.items) == (0, [])


async def _every_page(shard: Shard, text: str, limit: int) -> AsyncIterator[str]:
    """Every match, page after page through each page's cursor (`next`)."""
    after = ""
    while True:
        page = await shard.find_customers(
            CustomerSearch(text=text, limit=limit, after=after), _reference
        )
        assert len(page.items) <= limit
        for item in page.items:
            yield item
        if not page.next:
            return
        after = page.next


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


def _id(state: CustomerState, _: Catalog, __: datetime) -> uuid.UUID:
    return state.id


async def test_recent_events_are_the_customers_own_newest_first(system: ActorSystem) -> None:
    """CON-80: the customer page's events, from the journal's event history (exported Parquet
    files, then the journal's tail), newest first and bounded; over shards from the customer's
    own shard (SCL-103). A system without a data directory has no history."""
    async with system.running():
        shard = system.route("test")
        history = system.history
        if history is None:  # memory, queued and shards3 run without a data directory
            return
        if not system.analytics_enabled:  # the Ray suite's hosts run without one too
            with pytest.raises(HistoryUnavailable):  # the console then says so
                await history.customer_events("test", uuid.uuid4(), 1)
            return  # a host with one: tests/scale_out/test_remote_shard.py
        await _events_newest_first(system, shard, history)


async def test_recent_events_over_three_shards_with_data_directories(tmp_path: Path) -> None:
    """SCL-103: as above, each shard's history under `shards/<k>/`, read on the customer's."""
    settings = Settings(clock="manual", data_dir=tmp_path, durability="write", shards=3)
    system = build_system(settings, ManualClock(START))
    async with system.running():
        assert system.history is not None
        await _events_newest_first(system, system.route("test"), system.history)


async def _events_newest_first(
    system: ActorSystem, shard: Shard, history: CloudEventHistory
) -> None:
    """e1's events k0, k2, k3 (k0 exported to a Parquet file, the others in the journal's
    tail) and e2's k1."""
    for ref in ("e1", "e2"):
        await _customer(shard, ref, f"{ref}@x.io")
    for n, ref in enumerate(("e1", "e2", "e1", "e1")):
        if n == 2:
            await system.snapshot_analytics()  # the first two now in a Parquet file
        event = RecordUsage(idempotency_key=f"k{n}", event_name="api_calls",
                            occurred_at=START + timedelta(minutes=n))  # fmt: skip
        assert isinstance(await shard.ingest(CustomerLookup(external_id=ref), event, None),
                          UsageAccepted)  # fmt: skip
    e1 = await shard.read(CustomerLookup(external_id="e1"), _id)
    assert e1 is not None
    events = await history.customer_events("test", e1, 20)
    assert [e.key for e in events] == ["k3", "k2", "k0"]
    assert all(e.name == "api_calls" and e.units == 1 for e in events)
    assert [e.key for e in await history.customer_events("test", e1, 2)] == ["k3", "k2"]
