"""A journal that fails (issue 10, scenario 2; ARCHITECTURE principle 10): after a write or
fsync failure no state from the failed write is published. Writes answer 503 with
Retry-After, /health answers 503 with the reason, checkpoints and analytics refuse, and once
the disk takes writes again the shard rebuilds itself from disk, without the refused events.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from litestar.testing import TestClient

from allotment.http.fast_path import FastPath
from allotment.persistence.faults import FaultyIO
from allotment.runtime.clock import ManualClock
from allotment.runtime.errors import ShardUnavailable
from tests.conftest import START
from tests.http.helpers import C, event, paid_subscriber
from tests.reliability.durable import durable, picture

WAIT_S = 120  # a generous bound on a condition; never an expectation of speed


def used(client: TestClient[FastPath], ref: str) -> Any:
    return client.get(f"{C}/entitlements/{ref}/api_calls").json()["data"]["usage"]["used"]


def wait_healthy(client: TestClient[FastPath]) -> None:
    """Poll /health until the supervisor has rebuilt the shard (it tries every 0.05 s)."""
    with anyio.from_thread.start_blocking_portal() as portal:
        deadline = portal.call(anyio.current_time) + WAIT_S
        while client.get("/health").status_code != 200:
            assert portal.call(anyio.current_time) < deadline, client.get("/health").text
            portal.call(anyio.sleep, 0.02)


def refused(response: Any) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "5"


@pytest.mark.parametrize("fault", ["full disk", "fsync error"])
def test_scenario2_refused_writes_are_never_published(tmp_path: Path, fault: str) -> None:
    disk = FaultyIO()
    clock = ManualClock(START)
    with durable(tmp_path, clock, journal_io=disk, rebuild_every_s=0.05) as (client, system):
        paid_subscriber(client, "c")
        assert event(client, "c", "ok-1", eventName="api_calls", usageUnits=3).status_code == 201
        if fault == "full disk":
            disk.fill_disk()
        else:
            disk.fail_fsyncs(1)
        refused(event(client, "c", "lost-1", eventName="api_calls", usageUnits=5))
        if fault == "full disk":  # (a failed fsync is one fault: the rebuild may come first)
            refused(event(client, "c", "lost-2", eventName="api_calls", usageUnits=7))
            health = client.get("/health")
            assert health.status_code == 503 and "journal write failed" in health.text
            with pytest.raises(ShardUnavailable):
                client.blocking_portal.call(system.checkpoint_all)
            with pytest.raises(ShardUnavailable):
                client.blocking_portal.call(system.snapshot_analytics)
            disk.free_disk()
        wait_healthy(client)
        assert used(client, "c") == 3  # neither refused event is counted
        for key, units in (("lost-1", 5), ("lost-2", 7)):  # their retries are new, not 409
            assert (
                event(client, "c", key, eventName="api_calls", usageUnits=units).status_code == 201
            )
        assert used(client, "c") == 15
        client.blocking_portal.call(system.checkpoint_all)
        live = picture(system)
    with durable(tmp_path, clock) as (client, restarted):
        assert used(client, "c") == 15
        assert picture(restarted) == live
        assert event(client, "c", "lost-1", eventName="api_calls").status_code == 409


def test_scenario2_a_torn_write_is_cut_back_before_the_rebuild(tmp_path: Path) -> None:
    """Half a batch reached the file before the disk filled: the rebuild keeps only the
    acknowledged records, so the half record is neither replayed nor mistaken for damage."""
    disk = FaultyIO()
    clock = ManualClock(START)
    with durable(tmp_path, clock, journal_io=disk, rebuild_every_s=0.05) as (client, _):
        paid_subscriber(client, "t")
        assert event(client, "t", "a", eventName="api_calls", usageUnits=2).status_code == 201
        disk.tear_next_write(keep_bytes=20)
        refused(event(client, "t", "b", eventName="api_calls", usageUnits=4))
        wait_healthy(client)
        assert used(client, "t") == 2
    with durable(tmp_path, clock) as (client, _):
        assert used(client, "t") == 2
