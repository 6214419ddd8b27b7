"""Keys and features the environment holds once, kept across shards in other processes
(docs/scale-out.md SCL-85, SCL-87), without Ray: a router over `RemoteMember`s whose channel
pickles every call's arguments and answer, as a process boundary does (DirectChannel)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TypeVar

import anyio
import pytest

from allotment.config import Settings
from allotment.domain.commands import RecordUsage
from allotment.domain.replies import Rejected, Reply
from allotment.runtime.clock import ManualClock
from allotment.runtime.environment_wide import DUPLICATE
from allotment.runtime.hosted_shards import HostedShards
from allotment.runtime.ports import CustomerLookup
from allotment.runtime.remote_shard import RemoteMember, Replica
from allotment.runtime.sharded_system import ShardedSystem
from allotment.runtime.sharding import ShardRouter
from allotment.wiring import build_system
from tests.conftest import START
from tests.scale_out.test_remote_shard import DirectChannel

pytestmark = pytest.mark.anyio
R = TypeVar("R")


@pytest.fixture
async def remote(tmp_path: Path) -> AsyncIterator[tuple[ShardRouter, list[DirectChannel]]]:
    """A front door's router over three hosted shards (the members of a sharded system)."""
    settings = Settings(clock="manual", data_dir=tmp_path, shards=3)
    system = build_system(settings, ManualClock(START), persistent=False)
    assert isinstance(system, ShardedSystem)
    async with system.running():
        channels = [DirectChannel(HostedShards(member)) for member in system.members]
        members = [
            RemoteMember(Replica(channel, "test", channel.hosted.view("test"), window_s=0.05))
            for channel in channels
        ]
        yield ShardRouter("test", members), channels


def _references(router: ShardRouter, shard: int, count: int) -> list[str]:
    placed = (f"r{n}" for n in itertools.count() if router.routes.of_reference(f"r{n}") == shard)
    return list(itertools.islice(placed, count))


def _usage(key: str, feature_key: str | None = None) -> RecordUsage:
    return RecordUsage(
        idempotency_key=key, event_name="api_calls", occurred_at=START, feature_key=feature_key
    )


async def test_one_key_from_every_shard_at_once_one_wins_and_claims_share_calls(
    remote: tuple[ShardRouter, list[DirectChannel]],
) -> None:
    """SCL-81, SCL-85: 24 single events with one key from customers of all three shards: one
    is accepted; the claims of the two shards that are not the key's home reached it batched
    (16 claims, fewer calls), as single events are (SCL-34)."""
    router, channels = remote
    key = next(f"k{n}" for n in itertools.count() if router.routes.home_of(f"k{n}") == 0)
    customers = [r for shard in range(3) for r in _references(router, shard, 4)]
    replies: list[Reply] = []

    async def send(reference: str) -> None:
        lookup = CustomerLookup(external_id=reference)
        replies.append(await router.ingest(lookup, _usage(key), None))

    async with anyio.create_task_group() as tg:
        for reference in customers * 2:
            tg.start_soon(send, reference)
    assert sum(not isinstance(reply, Rejected) for reply in replies) == 1
    assert [reply for reply in replies if isinstance(reply, Rejected)] == [DUPLICATE] * 23
    assert sum(channels[0].claims) == 16 and len(channels[0].claims) < 16
    assert channels[1].claims == channels[2].claims == []  # a home is asked, nobody else


async def test_an_auto_created_feature_reaches_every_remote_shard(
    remote: tuple[ShardRouter, list[DirectChannel]],
) -> None:
    """SCL-87 across processes: the broadcast runs on every host, and each replica holds the
    feature when the event is answered."""
    router, channels = remote
    (reference,) = _references(router, 2, 1)
    lookup = CustomerLookup(external_id=reference)
    reply = await router.ingest(lookup, _usage("f-1", "made_by_event"), None)
    assert not isinstance(reply, Rejected)
    assert all("made_by_event" in member.catalog.features for member in router.members)
    for channel in channels:
        assert "made_by_event" in channel.hosted.system.shard("test").catalog.features
