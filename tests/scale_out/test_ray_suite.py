"""The suite's "ray3" hosts themselves (docs/scale-out.md SCL-90..SCL-93): reset between
scenarios in the same processes, the manual clock moved through the protocol, the admin
statistics read as of now, and the two in-process scenarios that "ray3" skips, checked here
across the process boundary instead."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import msgspec
import ray
from litestar.testing import TestClient

from allotment.config import Settings
from allotment.http.app import create_app
from allotment.http.fast_path import FastPath
from allotment.persistence.keys import KeyStore
from allotment.runtime.clock import ManualClock
from tests.conftest import KEY, START
from tests.http.helpers import A, C, advance, create_customer, error, event, get_customer, ok
from tests.http.reservation_helpers import holder, reserve
from tests.ray_suite import SHARDS, ray_system
from tests.scale_out.test_ray_shards import _refs_on_every_shard

Client = TestClient[FastPath]


@contextmanager
def _served(
    hosts: list[Any], settings: Settings, clock: ManualClock, keys: KeyStore
) -> Iterator[Client]:
    """A Ray front door over the session's hosts, reset to fresh shards at `clock`'s time."""
    system = ray_system(hosts, settings, clock)
    with TestClient(create_app(settings, system, keys), base_url="http://testserver.local") as c:
        c.headers["Authorization"] = f"Bearer {KEY}"
        yield c


def _one_per_shard(prefix: str) -> list[str]:
    """A reference id placed on each shard (SCL-2), in shard order."""
    return _refs_on_every_shard(1, prefix, SHARDS)


def _test_row(client: Client) -> dict[str, Any]:
    rows: list[dict[str, Any]] = ok(client.get(f"{A}/statistics"))["shards"]
    return next(row for row in rows if row["environment"] == "test")


def test_scl90_a_reset_host_serves_a_fresh_shard_in_the_same_process(
    ray_hosts: list[Any], settings: Settings, keys: KeyStore
) -> None:
    """SCL-90: after a reset each host is the same process serving a new shard: the first
    scenario's customers are gone and the new shard's clock starts at the new scenario's."""
    refs = _one_per_shard("reset")
    pids = ray.get([host.pid.remote() for host in ray_hosts])
    with _served(ray_hosts, settings, ManualClock(START), keys) as client:
        for ref in refs:
            create_customer(client, ref)
        assert _test_row(client)["customers"] == SHARDS
    later = START + timedelta(days=40)
    with _served(ray_hosts, settings, ManualClock(later), keys) as client:
        for ref in refs:
            error(client.get(f"{C}/customers/{ref}"), 404)
        assert _test_row(client)["customers"] == 0
        create_customer(client, refs[1])
        assert get_customer(client, refs[1])["createdAt"] == "2025-02-24T10:30:00Z"
    assert ray.get([host.pid.remote() for host in ray_hosts]) == pids


def test_scl91_the_admin_statistics_count_each_host_as_of_now(
    ray_hosts: list[Any], settings: Settings, clock: ManualClock, keys: KeyStore
) -> None:
    """SCL-91: a customer created on each shard is counted by the very next statistics read,
    with no wait for the front door's refresh (every second, for readiness and /metrics)."""
    with _served(ray_hosts, settings, clock, keys) as client:
        for count, ref in enumerate(_one_per_shard("count"), start=1):
            create_customer(client, ref)
            assert _test_row(client)["customers"] == count


def test_scl92_the_front_doors_manual_clock_moves_every_hosts(
    ray_hosts: list[Any], settings: Settings, keys: KeyStore
) -> None:
    """SCL-92: hosts whose clocks are behind the front door's when it starts (a server's
    keeper starts them first) are moved to its time before it serves; each advance moves
    them again: every shard stamps its customers with the front door's time."""
    clock = ManualClock(START)
    system = ray_system(ray_hosts, settings, clock)  # hosts at START
    clock.advance_to(START + timedelta(hours=1))  # the front door starts later
    with TestClient(create_app(settings, system, keys), base_url="http://testserver.local") as c:
        c.headers["Authorization"] = f"Bearer {KEY}"
        first, second = _one_per_shard("early"), _one_per_shard("late")
        for ref in first:
            create_customer(c, ref)
        advance(c, seconds=90)
        for ref in second:
            create_customer(c, ref)
        assert {get_customer(c, ref)["createdAt"] for ref in first} == {"2025-01-15T11:30:00Z"}
        assert {get_customer(c, ref)["createdAt"] for ref in second} == {"2025-01-15T11:31:30Z"}


def test_scl93_advancing_the_clock_runs_each_hosts_sweep_before_any_turn(
    ray_hosts: list[Any], settings: Settings, clock: ManualClock, keys: KeyStore
) -> None:
    """SCL-93, RSV-23 over Ray (the in-process scenario watches the customer's actor): moving
    the clock expires a hold on every shard at once: each host's journal grew by the advance
    alone, and reading the reservations afterwards adds nothing (no read found it held)."""
    refs = _one_per_shard("sweep")
    with _served(ray_hosts, settings, clock, keys) as client:
        for n, ref in enumerate(refs):
            holder(client, ref)
            ok(reserve(client, ref, featureKey="ai_chat", units=10, reservationId=f"sw{n}",
                       ttlSeconds=30), 201)  # fmt: skip
        before = _test_row(client)["journal"]["position"]
        advance(client, seconds=31)
        swept = _test_row(client)["journal"]["position"]
        assert swept >= before + len(refs)
        for n in range(len(refs)):
            assert ok(client.get(f"{C}/reservations/sw{n}"))["status"] == "EXPIRED"
        assert _test_row(client)["journal"]["position"] == swept


def test_scl93_an_overloaded_host_answers_503_with_retry_after(
    ray_hosts: list[Any], settings: Settings, clock: ManualClock, keys: KeyStore
) -> None:
    """SCL-93, the overload scenario over Ray (in process it lowers a member's bound in
    place): hosts whose journal backlog is over their bound refuse what would write, and the
    refusal crosses the process boundary as the same 503 with Retry-After; reads answer."""
    overloaded = msgspec.structs.replace(settings, journal_pending_bytes_max=-1)
    with _served(ray_hosts, overloaded, clock, keys) as client:
        for n, ref in enumerate(_one_per_shard("busy")):
            assert client.get(f"{C}/entitlements/{ref}/api_calls").status_code == 200
            response = event(client, ref, f"o{n}")
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"] == "1"
            assert "waiting for the disk" in response.json()["error"]["message"]
        assert _test_row(client)["customers"] == 0
