"""Shared fixtures: an app on a manual clock, sync and async clients, and keys per scope."""

from __future__ import annotations

import gc
import itertools
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import msgspec
import pytest
from hypothesis import settings as hypothesis_settings
from litestar.testing import AsyncTestClient, TestClient

from allotment.config import Settings
from allotment.http.app import create_app
from allotment.http.fast_path import FastPath
from allotment.persistence.analytics_job import AnalyticsJob
from allotment.persistence.keys import KeyStore
from allotment.persistence.reports import ExportReport
from allotment.runtime.clock import ManualClock
from allotment.runtime.system import ActorSystem
from allotment.wiring import build_system
from tests import ray_suite

KEY = "sk_test_" + "k" * 32  # every scope
READ_ONLY_KEY = "sk_test_" + "r" * 32  # client:read only
CLIENT_KEY = "sk_test_" + "c" * 32  # client:read and client:write, no admin
LIVE_KEY = "sk_live_" + "l" * 32  # every scope, production environment
START = datetime(2025, 1, 15, 10, 30, tzinfo=UTC)
_TESTS_RUN = itertools.count(1)
_TESTS_PER_COLLECTION = 200  # each full collection walks the whole heap: not after every test

# Where the environment turns bytecode files off (PYTHONDONTWRITEBYTECODE, as the environment
# of this machine's test runs does), every process a test starts (each `allotment serve`, CLI
# run, exporter and Ray shard host) compiled allotment from source again: 0.4 s of a server's
# 1.7 s of imports, over a hundred times a run. Those processes share one bytecode cache
# instead, outside the source tree (PYTHONPYCACHEPREFIX), which the setting keeps free of
# bytecode. Its first fill compiles their standard library and dependencies too (about 15 s of
# CPU, once per machine: it outlives the run).
if os.environ.pop("PYTHONDONTWRITEBYTECODE", None) is not None:
    os.environ.setdefault(
        "PYTHONPYCACHEPREFIX",
        os.path.join(tempfile.gettempdir(), f"allotment-tests-pycache-{os.getuid()}"),
    )

# Hypothesis' default 200 ms deadline per example is a wall-time assertion: on a busy CI machine
# a correct example can take longer. Examples are bounded by their count, never by the clock.
hypothesis_settings.register_profile("allotment", deadline=None)
hypothesis_settings.load_profile("allotment")


@pytest.fixture(autouse=True)
def _collectable_between_tests() -> Iterator[None]:
    """Give the cycle collector back what this test froze. Every system a test starts
    recovers, and recovery ends by freezing everything alive without a collection
    (runtime/heap.py: right for a server, whose state is all long-lived); in one pytest process
    that froze each earlier test's garbage cycles (its apps, its systems) for good: 7 GB by the
    end of the suite, walked once more at exit. Unfrozen after each test and collected every
    few tests, the suite's memory stays flat."""
    yield
    gc.unfreeze()
    if next(_TESTS_RUN) % _TESTS_PER_COLLECTION == 0:
        gc.collect()


@pytest.fixture(autouse=True)
def _no_history_export_at_stop(request: pytest.FixtureRequest) -> Iterator[None]:
    """A system this process stops does not export its history on the way out (OPS: the
    shutdown `drain`), unless the test is marked `exports_history_at_stop`. That export runs a
    Python process that imports pyarrow, about a second each: the suite stopped some hundred
    persistent systems in-process, most of them to test something else (a recovery property
    alone started 25). A start exports what a stop did not, so nothing is lost; the export at
    stop is proved where it is the subject, by the tests marked, and by the real servers of
    tests/reliability (their own processes, never patched)."""
    if request.node.get_closest_marker("exports_history_at_stop") is not None:
        yield
        return
    with mock.patch.object(AnalyticsJob, "drain", _not_drained):
        yield


async def _not_drained(self: AnalyticsJob, durable: dict[str, int]) -> list[ExportReport]:
    return []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "exports_history_at_stop: the systems the test stops in-process export their history "
        "at stop, as a server does (tests/conftest.py, _no_history_export_at_stop)",
    )


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(clock="manual", data_dir=tmp_path)


# The `system` fixture's parameters. By default the sharded scenarios run over Ray ("ray3",
# what `serve --shards N` runs) and not also in process ("shards3"): both over the whole suite
# cost CI about two and a half minutes more, ray3 in shards3's place about 45 s (SCL-94).
# "queued" (a shard behind a mailbox, standing in for one in another process) is not in the
# default either since "ray3" runs the HTTP suite against shards really in other processes:
# it cost the suite about 210 s of CPU (0.5 s of app set-up for each of its 420 scenarios).
# ALLOTMENT_TEST_SYSTEMS=memory,journal,queued,shards3,ray3 runs every one.
SYSTEMS = ("memory", "journal", "queued", "shards3", "ray3")
SYSTEMS_ENV = "ALLOTMENT_TEST_SYSTEMS"
DEFAULT_SYSTEMS = "memory,journal,ray3"


def _chosen_systems() -> list[str]:
    chosen = os.environ.get(SYSTEMS_ENV, DEFAULT_SYSTEMS).split(",")
    unknown = sorted(set(chosen) - set(SYSTEMS))
    if unknown or not chosen:
        raise pytest.UsageError(f"{SYSTEMS_ENV}: {unknown} not among {', '.join(SYSTEMS)}")
    return chosen


@pytest.fixture(params=_chosen_systems())
def system(request: pytest.FixtureRequest, settings: Settings, clock: ManualClock) -> ActorSystem:
    """Every test that uses the system runs on each of these. "memory"; "journal", the durable
    path (a file journal under the test's tmp dir), where `wait_durable` really yields to the
    journal's writer task as in production (issue 10; without fsync, which changes nothing a
    test can observe and keeps the suite fast; tests/reliability fsyncs). "queued" reaches
    each shard only through the `Shard` protocol and a mailbox, standing in for a shard in
    another process (issue 11). "shards3" splits each environment over three shards behind a
    `ShardRouter` (issue 19, docs/scale-out.md SCL-22), in memory. "ray3" is the Ray front
    door (`RaySystem`) over three shard host actors in other processes (SCL-90)."""
    if request.param == "ray3":
        return ray_suite.ray_system(request.getfixturevalue("ray_hosts"), settings, clock)
    if request.param == "shards3":
        return build_system(msgspec.structs.replace(settings, shards=3), clock, persistent=False)
    if request.param != "journal":
        return build_system(settings, clock, persistent=False, queued=request.param == "queued")
    return build_system(msgspec.structs.replace(settings, durability="write"), clock)


@pytest.fixture(scope="module", params=[1, 3], ids=["one", "shards3"])
def server_shards(request: pytest.FixtureRequest) -> int:
    """The shards of a suite's real server (tests/reliability/server.py): one, and three in the
    server's process, as the `system` fixture's "shards3" (SCL-22, SCL-60..SCL-66)."""
    shards: int = request.param
    return shards


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    """One local Ray cluster for the session, started by the first test that needs it and
    shut down at the end; its address, for servers to join (tests/ray_suite.py)."""
    with ray_suite.local_cluster() as address:
        yield address


@pytest.fixture(scope="session")
def ray_hosts(ray_cluster: str) -> list[Any]:
    """Three shard host actors that every "ray3" scenario resets and reuses (SCL-90)."""
    return ray_suite.start_hosts(ray_suite.SHARDS)


@pytest.fixture
def keys() -> KeyStore:
    store = KeyStore()
    store.add(KEY)
    store.add(READ_ONLY_KEY, ("client:read",))
    store.add(CLIENT_KEY, ("client:read", "client:write"))
    store.add(LIVE_KEY)
    return store


@pytest.fixture
def app(settings: Settings, system: ActorSystem, keys: KeyStore) -> FastPath:
    return create_app(settings, system, keys)


@pytest.fixture
def client(app: FastPath) -> Iterator[TestClient[FastPath]]:
    """A client that sends the all-scopes sandbox key unless a test overrides the header."""
    with TestClient(app, base_url="http://testserver.local") as test_client:
        test_client.headers["Authorization"] = f"Bearer {KEY}"
        yield test_client


@pytest.fixture
async def async_client(app: FastPath) -> AsyncIterator[AsyncTestClient[FastPath]]:
    async with AsyncTestClient(app, base_url="http://testserver.local") as test_client:
        test_client.headers["Authorization"] = f"Bearer {KEY}"
        yield test_client


# Scenarios whose promise a ShardRouter does not keep yet (docs/scale-out.md, "Not done yet"),
# in process ("shards3") and over Ray ("ray3") alike: strict, so each one fails the suite the
# day it starts passing and must leave this list.
SHARDED_GAPS = {
    # OM-21: a subject key is the environment's; a shard checks only its own customers' keys,
    # so a customer on another shard may claim one already taken (event keys, EVT-35, are
    # claimed on a home shard, SCL-80; subject keys are not yet).
    "test_customers_through_both_apis",
}
# Scenarios that reach into a shard's objects in this process, which a Ray host's are not
# (SCL-93). Each says where its promise is checked across the process boundary instead.
RAY_GAPS = {
    "test_rsv_23_the_sweep_expires_holds_without_a_request": "it watches the in-process "
    "customer actor change before any turn runs; every read of a Ray host is a turn. The "
    "sweep over Ray: test_rsv_23_expiry_by_the_clock_and_rsv_16_late_commit[ray3]",
    "test_scenario5_the_overload_is_a_503_with_retry_after": "it lowers a member shard's "
    "backlog bound in place; over Ray: tests/scale_out/test_ray_suite.py overloaded host",
}


# Input-validation batteries: one scenario per bad field, route or body, each refused at the
# front door or by a pure check before any state changes. Their ray3 runs (98 scenarios, about
# 5% of the suite's time) prove nothing that the memory and journal runs do not, while a
# refusal crossing the Ray boundary is proved by the ray3 runs of every other scenario that
# expects one (SCL-94). They run under ray3 when ALLOTMENT_TEST_SYSTEMS names the systems.
VALIDATION_BATTERIES = frozenset({
    "test_evt1_to_evt7_invalid_event_is_400_and_changes_nothing",
    "test_evt2_no_key_is_400",
    "test_pln10_invalid_plan_is_400_naming_field_and_key",
    "test_deep_nesting_in_every_open_field",
    "test_a_reference_id_outside_the_character_set_is_refused_at_creation",
    "test_crd10_invalid_admin_grants",
    "test_sub10_invalid_request_is_400_naming_the_field",
    "test_a_decimal_out_of_range_is_400_naming_the_field",
    "test_sch4_invalid_advances_are_400_and_do_not_move",
    "test_a_body_that_is_not_json_is_415_on_every_json_route",
    "test_api10_quoted_number_in_an_event_is_rejected_and_changes_nothing",
    "test_cus1_email_must_be_valid",
    "test_auth1_auth5_missing_key_is_401_on_every_route",
    "test_admin_routes_refuse_keys_without_admin_scope",
    "test_api11_unknown_route_is_404_in_the_envelope",
    "test_api11_wrong_method_is_405_in_the_envelope",
})  # fmt: skip


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    every_system = SYSTEMS_ENV in os.environ
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        name, _, params = item.name.partition("[")
        ray = "ray3" in params
        if ray and name in VALIDATION_BATTERIES and not every_system:
            dropped.append(item)
            continue
        kept.append(item)
        if name in SHARDED_GAPS and ("shards3" in params or ray):
            item.add_marker(pytest.mark.xfail(strict=True, reason="docs/scale-out.md gap"))
        if name in RAY_GAPS and ray:
            item.add_marker(pytest.mark.skip(reason=f"SCL-93: {RAY_GAPS[name]}"))
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
