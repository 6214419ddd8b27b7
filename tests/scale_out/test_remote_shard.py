"""A shard reached through a channel, without Ray (docs/scale-out.md SCL-33, SCL-34): the
near end's replica of catalog and prices, the catalog stamps the far end checks, and the
micro-batching of single events. The channel here calls the far end directly, counting what
each call carries; runtime/ray_shard.py is the same channel over Ray actor calls."""

from __future__ import annotations

import pickle
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

import anyio
import pytest

from allotment.config import Settings
from allotment.domain.catalog import Catalog, Feature
from allotment.domain.catalog_facts import CatalogUpdated
from allotment.domain.catalog_rules import CatalogInvalid
from allotment.domain.commands import RecordUsage
from allotment.domain.meters import CloudEvent, Meter, MeterAggregation
from allotment.domain.replies import Rejected, RejectionKind, UsageAccepted
from allotment.domain.state import CustomerState, Profile
from allotment.runtime.catalog_versions import CatalogStale
from allotment.runtime.clock import ManualClock
from allotment.runtime.hosted_shards import HostedShards
from allotment.runtime.meter_reads import EventQuery, HistoryUnavailable, MeterQuery
from allotment.runtime.ports import CustomerLookup, Shard
from allotment.runtime.remote_history import RemoteHistory
from allotment.runtime.remote_shard import Answer, RemoteMember, Replica
from allotment.runtime.sharded_history import ShardedHistory
from allotment.wiring import build_system
from tests.conftest import START

pytestmark = pytest.mark.anyio
R = TypeVar("R")
S = TypeVar("S")


class DirectChannel:
    """The far end in this process; what crosses is pickled, as a process boundary ships it.
    `sizes` holds the events each `ingest_batch` carried, `claims` the claims of each
    `claim_keys` (SCL-85)."""

    def __init__(self, hosted: HostedShards) -> None:
        self.hosted = hosted
        self.sizes: list[int] = []
        self.claims: list[int] = []

    async def call(
        self, environment: str, method: str, args: tuple[object, ...], known: str,
        stamp: int | None,
    ) -> Answer:  # fmt: skip
        if method in ("ingest_batch", "claim_keys"):
            assert isinstance(args[0], list)
            (self.sizes if method == "ingest_batch" else self.claims).append(len(args[0]))
        try:
            answer = await self.hosted.call(environment, method, _shipped(args), known, stamp)
        except Exception as error:
            raise _shipped(error) from None
        return _shipped(answer)

    async def adopt(
        self, environment: str, version: int, change: Callable[[Shard], Awaitable[R]], known: str
    ) -> Answer:
        return await self.hosted.adopt(environment, version, change, known)

    async def history(self, environment: str, method: str, args: tuple[object, ...]) -> object:
        try:  # both ways as a process boundary ships them
            answer = await self.hosted.history(
                environment, method, pickle.loads(pickle.dumps(args))
            )
        except Exception as error:
            raise pickle.loads(pickle.dumps(error)) from None
        return pickle.loads(pickle.dumps(answer))


def _shipped(value: S) -> S:
    shipped: S = pickle.loads(pickle.dumps(value))
    return shipped


@pytest.fixture
async def hosted(tmp_path: Path) -> AsyncIterator[HostedShards]:
    system = build_system(Settings(data_dir=tmp_path), ManualClock(START), persistent=False)
    async with system.running():
        yield HostedShards(system)


def _member(channel: DirectChannel, window_s: float = 0.001, batch_max: int = 256) -> RemoteMember:
    view = channel.hosted.view("test")
    return RemoteMember(Replica(channel, "test", view, window_s, batch_max))


def _usage(key: str) -> RecordUsage:
    return RecordUsage(idempotency_key=key, event_name="api_calls", occurred_at=START)


async def test_single_events_share_calls_of_at_most_the_bound(hosted: HostedShards) -> None:
    """SCL-34: events arriving together go in one call up to `batch_max` (here 4, with a window
    too long to end any batch), each answered as its own `ingest` would be."""
    channel = DirectChannel(hosted)
    shard = _member(channel, window_s=3600, batch_max=4).shard
    await shard.create_customer("ann", Profile())
    replies: list[tuple[str, object]] = []

    async def send(key: str) -> None:
        reply = await shard.ingest(CustomerLookup(external_id="ann"), _usage(key), None)
        replies.append((key, reply))

    async with anyio.create_task_group() as tg:
        for key in ("a", "b", "c", "d", "e", "f", "g", "a"):  # "a" twice: one is a duplicate
            tg.start_soon(send, key)
    assert channel.sizes == [4, 4]
    accepted = sorted(key for key, reply in replies if isinstance(reply, UsageAccepted))
    assert accepted == ["a", "b", "c", "d", "e", "f", "g"]
    refused = [reply for key, reply in replies if key == "a" and isinstance(reply, Rejected)]
    assert len(refused) == 1 and refused[0].kind is RejectionKind.CONFLICT  # the second "a"


async def test_a_lone_event_waits_no_longer_than_the_window(hosted: HostedShards) -> None:
    """SCL-34: a batch that never fills is sent when its window ends (1 ms by default)."""
    channel = DirectChannel(hosted)
    shard = _member(channel).shard
    await shard.create_customer("bob", Profile())
    reply = await shard.ingest(CustomerLookup(external_id="bob"), _usage("only"), None)
    assert isinstance(reply, UsageAccepted)
    assert channel.sizes == [1]


async def test_the_far_end_refuses_an_older_stamp_and_runs_nothing(hosted: HostedShards) -> None:
    """SCL-33 (SCL-14 across processes): after adopting catalog version 2, a call stamped 1
    is refused with the host's version, before it runs; one stamped 2 runs."""
    member = _member(DirectChannel(hosted))
    feature = Feature(id=uuid.uuid4(), key="fresh", name="Fresh")
    update = CatalogUpdated(at=START, features=(feature,))
    await member.adopt(2, lambda shard: shard.upsert_catalog(update))
    with pytest.raises(CatalogStale) as stale:
        await member.stamped(1).create_customer("cat", Profile())
    assert stale.value.version == 2
    assert hosted.system.shard("test").customer_count() == 0
    await member.stamped(2).create_customer("cat", Profile())
    assert member.customer_count() == 1


async def test_the_replica_follows_a_change_made_through_another_front_door(
    hosted: HostedShards,
) -> None:
    """SCL-33: the catalog a front door reads without a call is its replica's, brought up to
    date by its next answer from the shard; an unchanged one is not sent again."""
    ours, theirs = _member(DirectChannel(hosted)), _member(DirectChannel(hosted))
    feature = Feature(id=uuid.uuid4(), key="fresh", name="Fresh")
    update = CatalogUpdated(at=START, features=(feature,))
    changed = await theirs.adopt(1, lambda shard: shard.upsert_catalog(update))
    assert "fresh" in changed.features and "fresh" in theirs.catalog.features
    assert "fresh" not in ours.catalog.features
    await ours.shard.create_customer("dee", Profile())
    assert "fresh" in ours.catalog.features
    known = ours.replica.view.version
    same = await hosted.call("test", "all_customers", (lambda s, c, n: s.external_id,), known)
    assert same.view is None and same.result == ["dee"]


async def test_the_far_end_answers_only_the_shard_protocol(hosted: HostedShards) -> None:
    """A remote caller names a method; only the `Shard` protocol's coroutines are callable."""
    with pytest.raises(ValueError, match="not a shard call"):
        await hosted.call("test", "fail", ("anything",), "")


async def test_what_the_shard_raises_reaches_the_caller_as_itself(hosted: HostedShards) -> None:
    """SCL-33: an exception crosses the process boundary with its type and attributes, even
    one whose constructor is not called with its message (`CatalogInvalid(problems)`), so the
    front door maps it to the same HTTP answer as in one process."""
    shard = _member(DirectChannel(hosted)).shard
    negative = Feature(id=uuid.uuid4(), key="neg", name="Neg", cost_per_unit=Decimal(-1))
    with pytest.raises(CatalogInvalid) as invalid:
        await shard.upsert_catalog(CatalogUpdated(at=START, features=(negative,)))
    assert invalid.value.problems and str(invalid.value)


async def test_scl63_meter_reads_cross_to_every_host_and_merge(tmp_path: Path) -> None:
    """SCL-63: OpenMeter's reads of two hosts' histories through their channels (as the Ray
    front door's `RaySystem.history`): a UNIQUE_COUNT whose value both hosts saw counts it
    once, the listing pages through both hosts' events, a host without a data directory
    answers HistoryUnavailable as itself."""
    systems = [
        build_system(Settings(data_dir=tmp_path / str(k), durability="write"), ManualClock(START))
        for k in range(2)
    ]
    async with systems[0].running(), systems[1].running():
        hosts = [HostedShards(system) for system in systems]
        for k, host in enumerate(hosts):
            events = [CloudEvent(source="s", event_id=f"{k}-{n}", event_type="call",
                                 subject=f"sub{k}", time=START, data={"v": value})
                      for n, value in enumerate(["shared", f"own{k}"])]  # fmt: skip
            await host.call("test", "ingest_cloud_events", (events,), "")
        history = ShardedHistory([RemoteHistory(DirectChannel(host)) for host in hosts])
        unique = Meter(id="01J0000000000000000000000M", slug="m", name="m", created_at=START,
                       updated_at=START, aggregation=MeterAggregation.UNIQUE_COUNT,
                       event_type="call", value_property="$.v")  # fmt: skip
        [row] = await history.query_meter("test", unique, MeterQuery(now=START))
        assert row.value == 3.0  # shared, own0, own1
        first = await history.list_events("test", EventQuery(limit=3))
        last = first[-1]
        after = (last.time, last.journal_position, last.fact_index)
        rest = await history.list_events("test", EventQuery(limit=3, after=after))
        assert sorted(e.id for e in first + rest) == ["0-0", "0-1", "1-0", "1-1"]
        subjects = await history.distinct_values("test", unique, "subject", None, None)
        assert subjects == ["sub0", "sub1"]
    memory = HostedShards(build_system(Settings(data_dir=tmp_path), ManualClock(START),
                                       persistent=False))  # fmt: skip
    with pytest.raises(HistoryUnavailable):
        await RemoteHistory(DirectChannel(memory)).list_events("test", EventQuery())


def _customer_id(state: CustomerState, catalog: Catalog, now: datetime) -> uuid.UUID:
    """A projector that pickles (by name), as the channel ships its arguments."""
    return state.id


async def test_scl103_a_customers_events_cross_from_its_host(tmp_path: Path) -> None:
    """SCL-103: the console's recent events of a customer, read on its host through the
    channel (pickled both ways), newest first and bounded."""
    system = build_system(Settings(data_dir=tmp_path, durability="write"), ManualClock(START))
    async with system.running():
        host = HostedShards(system)
        shard = _member(DirectChannel(host)).shard
        await shard.create_customer("eve", Profile())
        for key in ("a", "b", "c"):
            await shard.ingest(CustomerLookup(external_id="eve"), _usage(key), None)
        eve = await shard.read(CustomerLookup(external_id="eve"), _customer_id)
        assert eve is not None
        events = await RemoteHistory(DirectChannel(host)).customer_events("test", eve, 2)
        assert [event.key for event in events] == ["c", "b"]
