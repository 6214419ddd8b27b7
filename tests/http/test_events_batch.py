"""POST /api/v1/client/events/batch (extension): per-event results in the single-event
shapes, one group commit for the whole batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar.testing import TestClient

from allotment.config import Settings
from allotment.http.app import create_app
from allotment.persistence.keys import KeyStore
from allotment.runtime.clock import ManualClock
from allotment.wiring import build_system
from tests.conftest import KEY
from tests.http.helpers import C, Client, check, paid_subscriber


def _event(key: str, units: Any = 1, ref: str = "b1", **extra: Any) -> dict[str, Any]:
    return {
        "eventName": "api_calls",
        "customerReferenceId": ref,
        "eventIdempotencyKey": key,
        "usageUnits": units,
        **extra,
    }


def test_each_event_gets_its_own_result_in_order(client: Client) -> None:
    paid_subscriber(client, "b1")
    client.post(f"{C}/events", json=_event("seen", 1))
    events = [
        _event("a", 2),
        _event("a", 3),
        _event("bad", -1),
        _event("seen", 5),
        _event("c", 4),
        {"eventName": 7},
    ]
    response = client.post(f"{C}/events/batch", json={"events": events})
    assert response.status_code == 200
    results = response.json()["data"]["results"]
    assert [r["status"] for r in results] == [201, 409, 400, 409, 201, 400]
    assert results[1]["error"]["message"].startswith("Duplicate event.")
    assert "usageUnits" in results[2]["error"]["message"]
    assert "eventName" in results[5]["error"]["message"]
    assert all(r["success"] is (r["status"] < 400) for r in results)
    assert check(client, "b1", "api_calls")["usage"]["used"] == 1 + 2 + 4


def test_over_limit_items_report_usage_limit_exceeded(client: Client) -> None:
    paid_subscriber(client, "b2", "free")  # api_calls limit 1,000
    events = [_event("x1", 600, "b2"), _event("x2", 400, "b2"), _event("x3", 1, "b2")]
    results = client.post(f"{C}/events/batch", json={"events": events}).json()["data"]["results"]
    assert [r["status"] for r in results] == [201, 200, 200]
    assert results[1]["data"] == {
        "usageLimitExceeded": True,
        "message": "Usage limit exceeded for feature 'api_calls'.",
    }


def test_batch_size_is_bounded(client: Client) -> None:
    assert client.post(f"{C}/events/batch", json={"events": []}).status_code == 400
    too_many = [_event(f"k{i}") for i in range(1001)]
    response = client.post(f"{C}/events/batch", json={"events": too_many})
    assert response.status_code == 400 and "events" in response.json()["error"]["message"]
    assert client.post(f"{C}/events/batch", json={"event": []}).status_code == 400


def test_a_batch_shares_one_group_commit(tmp_path: Path, keys: KeyStore) -> None:
    settings = Settings(clock="manual", data_dir=tmp_path)
    system = build_system(settings, ManualClock(), persistent=True)
    with TestClient(create_app(settings, system, keys)) as client:
        client.headers["Authorization"] = f"Bearer {KEY}"
        assert client.get(f"{C}/plans").status_code == 200  # opens the sandbox shard on the loop
        assert system.storage is not None
        journal = system.storage.journal("test")
        # What opening the environment journalled (the catalog seed, MNY-C5) is committed
        # before counting: only the batch's commits are counted.
        client.blocking_portal.call(journal.flush)
        before, first = journal.commits, journal.position
        events = [_event(f"g{i}", 1, f"cust{i % 7}") for i in range(300)]
        results = client.post(f"{C}/events/batch", json={"events": events}).json()["data"][
            "results"
        ]
        assert [r["status"] for r in results] == [201] * 300
        # Shared commits, not one per event: the batch yields between its 3 stretches of 100,
        # and the pipelined writer takes whatever is pending each time (at most one write per
        # stretch), plus one a concurrent tick may add.
        assert journal.commits - before <= 3 + 1
        # One record per customer per stretch of 100 events (issue 21): 7 customers auto-created
        # in the first, 3 stretches, the same facts as 300 records of one event each.
        assert journal.durable_position == journal.position == first + 7 * 3
