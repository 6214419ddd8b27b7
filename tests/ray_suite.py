"""The test suite's Ray cluster and shard hosts (docs/scale-out.md SCL-90..SCL-93).

One local cluster per test session, started by the first test that needs it, and three
`ShardHost` actors that every "ray3" scenario of the `system` fixture reuses: each scenario
resets them to fresh shards (`ShardHost.reset`) on a manual clock at the scenario's start,
instead of waiting for three new processes. Ray is imported only when a test asks for it,
so a session that runs no Ray test never loads it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from typing import Any, cast

import msgspec

from allotment.config import Settings
from allotment.domain.catalog import Catalog
from allotment.domain.state import CustomerState
from allotment.loading import load_catalog, load_price_table
from allotment.runtime.clock import ManualClock
from allotment.runtime.placement import placement_tag, shard_of
from allotment.runtime.ports import CustomerLookup
from allotment.runtime.system import ActorSystem
from allotment.wiring import shard_host_system

__all__ = ("SHARDS", "customer_state", "local_cluster", "on_ray", "ray_system", "start_hosts")

SHARDS = 3
AUTH_MODE = "RAY_AUTH_MODE"  # ray.init sets it for the cluster it starts; we put it back


@contextmanager
def local_cluster() -> Iterator[str]:
    """A local Ray cluster (2 CPUs, no dashboard) while the context is open; its address.
    Its own: "local" starts one even where RAY_ADDRESS or a `ray start` on this machine names
    another (an address of None would join that one), so each pytest-xdist worker, and each
    test run on a shared machine, has a cluster of its own, with its own ports and session."""
    import ray  # noqa: PLC0415  only sessions that run a Ray test load it

    saved = os.environ.get(AUTH_MODE)
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             namespace="tests")  # fmt: skip
    try:
        yield str(ray.get_runtime_context().gcs_address)
    finally:
        ray.shutdown()
        if saved is None:
            os.environ.pop(AUTH_MODE, None)
        else:
            os.environ[AUTH_MODE] = saved


def start_hosts(count: int) -> list[Any]:
    """`count` shard hosts owned by this session: anonymous (the actors other tests name
    `allotment-shard-<k>` are theirs), no CPU of their own, not restarted (a host that dies
    fails the scenario that killed it, as it should)."""
    import ray  # noqa: PLC0415

    from allotment.runtime.ray_shard import wait_ready  # noqa: PLC0415
    from allotment.runtime.shard_host import ShardHost  # noqa: PLC0415

    host: Any = ray.remote(ShardHost)  # Ray's stubs type neither options nor remote
    sharded = Settings(clock="manual", shards=count)
    handles = [
        host.options(num_cpus=0, max_restarts=0).remote(_build(sharded, k, ManualClock()))
        for k in range(count)
    ]
    wait_ready(handles)
    return handles


def ray_system(hosts: list[Any], settings: Settings, clock: ManualClock) -> ActorSystem:
    """The Ray front door over `hosts`, each reset to a fresh shard in memory whose manual
    clock starts where `clock` is: afterwards every move of the front door's clock moves
    theirs (`advance_clock` runs `ShardHost.catch_up` on each, SCL-39)."""
    import ray  # noqa: PLC0415

    from allotment.runtime.ray_shard import RaySystem  # noqa: PLC0415

    sharded = msgspec.structs.replace(settings, shards=len(hosts))
    start = clock.now()
    ray.get([h.reset.remote(_build(sharded, k, ManualClock(start))) for k, h in enumerate(hosts)])
    catalog = load_catalog(sharded.catalog_path, start)
    return RaySystem(hosts, catalog, load_price_table(sharded.model_prices_path), sharded, clock)


def _build(settings: Settings, index: int, clock: ManualClock) -> partial[ActorSystem]:
    return partial(shard_host_system, settings, index, clock=clock)


def on_ray(system: ActorSystem) -> bool:
    """Whether `system` is a Ray front door (without importing Ray to find out)."""
    module = sys.modules.get("allotment.runtime.ray_shard")
    return module is not None and isinstance(system, module.RaySystem)


def customer_state(
    system: ActorSystem, lookup: CustomerLookup, environment: str
) -> CustomerState | None:
    """The customer's state as its host's shard reads it: the `Shard` protocol's `read`, sent
    to the host its reference id places it on (SCL-2), from this thread (not the app's loop)."""
    import ray  # noqa: PLC0415

    assert lookup.external_id is not None
    channels = getattr(system, "channels")  # noqa: B009  a RaySystem (on_ray)
    k = shard_of(placement_tag(environment, lookup.external_id), len(channels))
    answer = ray.get(
        channels[k].handle.call.remote(environment, "read", (lookup, _whole_state), "", None)
    )
    return cast(CustomerState | None, answer.result)


def _whole_state(state: CustomerState, catalog: Catalog, now: datetime) -> CustomerState:
    return state
