"""What an environment holds once, kept across its shards (docs/scale-out.md SCL-80..SCL-87):
event keys claimed on their home shard, leases given back by refused turns, a claim that
outlives a crash before its event, CloudEvent keys, and auto-created features broadcast."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from allotment.config import Settings
from allotment.domain.cloud_usage import dedup_key
from allotment.domain.commands import RecordUsage
from allotment.domain.meters import CloudEvent
from allotment.domain.replies import Rejected, RejectionKind, Reply
from allotment.runtime.clock import ManualClock
from allotment.runtime.environment_wide import DUPLICATE
from allotment.runtime.ports import CustomerLookup
from allotment.runtime.sharded_system import ShardedSystem
from allotment.runtime.sharding import ShardRouter
from allotment.wiring import build_system
from tests.conftest import START

pytestmark = pytest.mark.anyio
SHARDS = 3


def _settings(data_dir: Path) -> Settings:
    return Settings(clock="manual", data_dir=data_dir, shards=SHARDS, durability="write")


def _router(system: ShardedSystem) -> ShardRouter:
    router = system.route("test")
    assert isinstance(router, ShardRouter)
    return router


@pytest.fixture
async def router(tmp_path: Path) -> AsyncIterator[ShardRouter]:
    """Three shards in memory, each reached through its mailbox (a `QueuedShard`, as a shard
    in another process is): concurrent requests interleave at every call to a shard."""
    settings = Settings(clock="manual", data_dir=tmp_path, shards=SHARDS)
    system = build_system(settings, ManualClock(START), persistent=False, queued=True)
    assert isinstance(system, ShardedSystem)
    async with system.running():
        yield _router(system)


def references(router: ShardRouter, shard: int, count: int, prefix: str = "c") -> list[str]:
    """`count` reference ids that place their customers on `shard`."""
    candidates = (f"{prefix}{n}" for n in itertools.count())
    return list(
        itertools.islice((r for r in candidates if router.routes.of_reference(r) == shard), count)
    )


def key_homed(router: ShardRouter, home: int, prefix: str = "k") -> str:
    return next(
        f"{prefix}{n}" for n in itertools.count() if router.routes.home_of(f"{prefix}{n}") == home
    )


def usage(key: str, feature_key: str | None = None) -> RecordUsage:
    return RecordUsage(
        idempotency_key=key, event_name="api_calls", occurred_at=START, feature_key=feature_key
    )


async def ingest(router: ShardRouter, reference: str, key: str) -> Reply:
    return await router.ingest(CustomerLookup(external_id=reference), usage(key), None)


def accepted(reply: Reply) -> bool:
    return not isinstance(reply, Rejected)


async def test_of_concurrent_requests_with_one_key_across_shards_exactly_one_wins(
    router: ShardRouter,
) -> None:
    """SCL-81, EVT-37: for a key homed on each shard in turn, 24 requests with it, from four
    customers on each shard (the home's among them), each customer twice, all at once: one
    is accepted, 23 are duplicates, and every retry after them is a duplicate too."""
    for home in range(SHARDS):
        key = key_homed(router, home)
        customers = [r for shard in range(SHARDS) for r in references(router, shard, 4, key)]
        replies = await _at_once(router, key, customers * 2)
        assert sum(map(accepted, replies)) == 1, home
        assert [r for r in replies if not accepted(r)] == [DUPLICATE] * 23
        for reference in customers:
            assert await ingest(router, reference, key) == DUPLICATE
    assert router.shared.claims > 0  # the customers of the other shards asked the home


async def _at_once(router: ShardRouter, key: str, customers: list[str]) -> list[Reply]:
    """One event with `key` from each of `customers`, all started together."""
    replies: list[Reply] = []

    async def send(reference: str) -> None:
        replies.append(await ingest(router, reference, key))

    async with anyio.create_task_group() as tg:
        for reference in customers:
            tg.start_soon(send, reference)
    return replies


async def test_a_refused_turn_gives_its_lease_back(router: ShardRouter) -> None:
    """SCL-82: a claim is held while any request that leased it may still use it. Two
    requests of one shard lease the key; the first giving back leaves it that shard's, the
    second frees it; an event that the turn rejects gives its lease back itself."""
    key = key_homed(router, 0)
    (a,), (b,) = references(router, 1, 1), references(router, 2, 1)
    assert await router.shared.lease(1, key) is True
    assert await router.shared.lease(1, key) is True
    assert await router.shared.lease(2, key) is False
    await router.shared.give_back(1, key)
    assert await ingest(router, b, key) == DUPLICATE  # still shard 1's: a lease is left
    await router.shared.give_back(1, key)
    unknown = CustomerLookup(customer_id=_uuid_on(router, 1))  # EVT-11: a 404, nothing kept
    refused = await router.ingest(unknown, usage(key), None)
    assert isinstance(refused, Rejected) and refused.kind is RejectionKind.NOT_FOUND
    assert accepted(await ingest(router, b, key))  # free again, as in one process
    assert await ingest(router, a, key) == DUPLICATE


def _uuid_on(router: ShardRouter, shard: int) -> uuid.UUID:
    """A customer id nobody holds, placed on `shard`."""
    return next(u for u in iter(uuid.uuid4, None) if router.routes.of_id(u) == shard)


async def test_a_claim_outlives_a_crash_before_its_event(tmp_path: Path) -> None:
    """SCL-83: the claim is durable before the customer's turn runs. The process ends
    between the two (the event never landed); after the restart, customers of the two other
    shards still get 409, and the claiming customer's retry is accepted, once."""
    system = build_system(_settings(tmp_path), ManualClock(START))
    assert isinstance(system, ShardedSystem)
    async with system.running():
        router = _router(system)
        key = key_homed(router, 0)
        (a,), (a2,) = references(router, 1, 1), references(router, 1, 1, "d")
        (b,), (h,) = references(router, 2, 1), references(router, 0, 1)
        assert await router.shared.lease(1, key) is True  # and then nothing: a crash
    del system, router

    system = build_system(_settings(tmp_path), ManualClock(START))
    assert isinstance(system, ShardedSystem)
    async with system.running():
        router = _router(system)
        assert await ingest(router, b, key) == DUPLICATE
        assert await ingest(router, h, key) == DUPLICATE  # the home's own customer too
        assert accepted(await ingest(router, a, key))
        assert await ingest(router, a, key) == DUPLICATE
        assert await ingest(router, a2, key) == DUPLICATE


async def test_a_cloud_event_counts_once_whichever_subjects_name_it(router: ShardRouter) -> None:
    """SCL-86, OM-6: one (source, id) sent for subjects of every shard counts once."""
    subjects = [references(router, shard, 1, "s")[0] for shard in range(SHARDS)]
    events = [
        CloudEvent(source="src", event_id="one", event_type="api_calls", subject=s)
        for s in subjects
    ]
    assert await router.ingest_cloud_events(events) == 1
    for event in events:
        assert await router.ingest_cloud_events([event]) == 0


async def test_the_first_of_a_batch_s_events_with_one_key_is_the_one_kept(
    tmp_path: Path,
) -> None:
    """OM-7 over shards: of one batch's events with one (source, id), the first counts, also
    when the key's home is the first event's shard and a later event's subject is another's
    (the home would have granted the later one's claim before the first reached its index)."""
    settings = Settings(clock="manual", data_dir=tmp_path, shards=SHARDS)
    system = build_system(settings, ManualClock(START), persistent=False)
    assert isinstance(system, ShardedSystem)
    async with system.running():
        router = _router(system)
        for first in range(SHARDS):
            later = (first + 1) % SHARDS
            event_id = next(f"id{n}" for n in itertools.count()
                            if router.routes.home_of(dedup_key("src", f"id{n}")) == first)  # fmt: skip
            subjects = [references(router, shard, 1, f"s{first}-")[0] for shard in (first, later)]
            events = [CloudEvent(source="src", event_id=event_id, event_type="api_calls",
                                 subject=subject) for subject in subjects]  # fmt: skip
            assert await router.ingest_cloud_events(events) == 1
            key = dedup_key("src", event_id)
            assert key in system.members[first].shard("test").event_keys  # journalled there
            assert key not in system.members[later].shard("test").event_keys  # never claimed


async def test_an_auto_created_feature_reaches_every_shard_and_stays(tmp_path: Path) -> None:
    """SCL-87, EVT-21: the feature an event's turn created on its customer's shard is on
    every shard's catalog when the event is answered, under one new catalog version, and
    still there after a restart; a second event naming it changes no catalog."""
    system = build_system(_settings(tmp_path), ManualClock(START))
    assert isinstance(system, ShardedSystem)
    async with system.running():
        router = _router(system)
        (a,), (b,) = references(router, 2, 1), references(router, 1, 1)
        before = router.versions.version
        reply = await router.ingest(CustomerLookup(external_id=a), usage("f-1", "new_one"), None)
        assert accepted(reply)
        assert all("new_one" in member.catalog.features for member in router.members)
        assert router.versions.version == before + 1
        again = await router.ingest(CustomerLookup(external_id=b), usage("f-2", "new_one"), None)
        assert accepted(again) and router.versions.version == before + 1
    del system, router

    system = build_system(_settings(tmp_path), ManualClock(START))
    assert isinstance(system, ShardedSystem)
    for member in system.members:
        assert member.shard("test").catalog.features["new_one"].auto_created
