"""A shard's catalog version survives its restart (docs/scale-out.md SCL-77): it is journalled
with each broadcast change and kept in snapshots, so a shard restarted alone (in process, or
a remote host as a Ray actor is) refuses calls stamped older than its catalog."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TypeVar

import pytest

from allotment.config import Settings
from allotment.domain.catalog import Feature
from allotment.domain.catalog_facts import CatalogUpdated
from allotment.domain.state import Profile
from allotment.runtime.catalog_versions import CatalogStale
from allotment.runtime.clock import ManualClock
from allotment.runtime.hosted_shards import HostedShards
from allotment.runtime.remote_shard import RemoteMember, Replica
from allotment.runtime.sharded_system import ShardedSystem
from allotment.runtime.sharding import ShardRouter
from allotment.wiring import build_system
from tests.conftest import START
from tests.scale_out.test_remote_shard import DirectChannel

pytestmark = pytest.mark.anyio
R = TypeVar("R")


def _update(key: str) -> CatalogUpdated:
    feature = Feature(id=uuid.uuid5(uuid.NAMESPACE_URL, key), key=key, name=key)
    return CatalogUpdated(at=START, features=(feature,))


@pytest.mark.parametrize("checkpoint", [False, True], ids=["journal", "snapshot"])
async def test_scl77_an_in_process_shard_recovers_its_catalog_version(
    tmp_path: Path, checkpoint: bool
) -> None:
    """Two broadcast changes (version 2) on three shards; after a restart from the journal
    (or from a snapshot written after the changes), every shard holds version 2 and refuses a
    call stamped 1, having done nothing; a router that knew nothing retries and runs it."""
    settings = Settings(clock="manual", data_dir=tmp_path, shards=3)
    system = build_system(settings, ManualClock(START))
    async with system.running():
        router = system.route("test")
        assert isinstance(router, ShardRouter)
        await router.upsert_catalog(_update("one"))
        await router.upsert_catalog(_update("two"))
        if checkpoint:
            await system.checkpoint_all()
    restarted = build_system(settings, ManualClock(START))
    assert isinstance(restarted, ShardedSystem)
    async with restarted.running():
        router = restarted.route("test")
        assert isinstance(router, ShardRouter)
        assert [member.held().catalog_version for member in router.members] == [2, 2, 2]  # type: ignore[attr-defined]
        for member in router.members:
            with pytest.raises(CatalogStale) as stale:
                member.stamped(1)
            assert stale.value.version == 2
        assert await router.create_customer("after", Profile()) is not None
        assert router.versions.version == 2 and router.versions.retries == 1


def _member(hosted: HostedShards) -> RemoteMember:
    return RemoteMember(Replica(DirectChannel(hosted), "test", hosted.view("test"), 0.001, 256))


async def test_scl77_a_restarted_remote_host_refuses_an_older_stamp(tmp_path: Path) -> None:
    """The far end of a shard in another process (as `ShardHost` hosts it): after adopting
    version 3 and a restart of its process (a new system over the same directory), a call
    stamped 2 is refused with version 3 and runs nothing; one stamped 3 runs."""
    settings = Settings(clock="manual", data_dir=tmp_path)
    system = build_system(settings, ManualClock(START))
    async with system.running():
        await _member(HostedShards(system)).adopt(3, lambda s: s.upsert_catalog(_update("x")))
    restarted = build_system(settings, ManualClock(START))
    async with restarted.running():
        hosted = HostedShards(restarted)
        member = _member(hosted)
        with pytest.raises(CatalogStale) as stale:
            await member.stamped(2).create_customer("cat", Profile())
        assert stale.value.version == 3
        assert restarted.shard("test").customer_count() == 0
        await member.stamped(3).create_customer("cat", Profile())
        assert member.customer_count() == 1
