"""Integers beyond 64 bits are refused at the edge (API-10): everything accepted is journalled
as msgpack, whose integers have 64 bits, so such a value inside `meta` used to
be accepted and then fail to be recorded (a 500 after the turn had run, and an analytics
snapshot that failed on it for good)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from allotment.config import Settings
from allotment.http.app import create_app
from allotment.http.openmeter.events import parse_events
from allotment.http.openmeter.problems import Problem
from allotment.persistence.keys import KeyStore
from allotment.runtime.clock import ManualClock
from allotment.wiring import build_system
from tests.conftest import KEY
from tests.http.helpers import C, Client, error, paid_subscriber

HUGE = 10**30


def test_a_huge_integer_in_event_meta_is_a_400_naming_it(client: Client) -> None:
    body = {"eventName": "api_calls", "customerReferenceId": "acme",
            "eventIdempotencyKey": "e1", "meta": {"nested": [1, {"n": HUGE}]}}  # fmt: skip
    assert error(client.post(f"{C}/events", json=body), 400) == (
        "Invalid field 'meta.nested[1].n': integers must fit in 64 bits."
    )
    body["meta"] = {"n": 2**64 - 1, "m": -(2**63)}  # the edges still fit
    assert client.post(f"{C}/events", json=body).status_code == 201


def test_a_huge_integer_in_track_meta_is_a_400(client: Client) -> None:
    paid_subscriber(client, "acme")
    body = {"customerReferenceId": "acme", "featureKey": "api_calls",
            "track": {"usageUnits": 1, "meta": {"n": HUGE}}}  # fmt: skip
    assert "track.meta.n" in error(client.post(f"{C}/entitlements", json=body), 400)


def test_huge_usage_units_keep_their_own_message_evt_5(client: Client) -> None:
    body = {"eventName": "api_calls", "customerReferenceId": "acme",
            "eventIdempotencyKey": "u", "usageUnits": HUGE}  # fmt: skip
    assert "usageUnits" in error(client.post(f"{C}/events", json=body), 400)


def test_a_huge_integer_fails_only_its_own_batch_item(client: Client) -> None:
    events = [
        {"eventName": "api_calls", "customerReferenceId": "acme", "eventIdempotencyKey": "b1"},
        {"eventName": "api_calls", "customerReferenceId": "acme", "eventIdempotencyKey": "b2",
         "meta": {"n": HUGE}},
    ]  # fmt: skip
    response = client.post(f"{C}/events/batch", json={"events": events})
    assert response.status_code == 200
    assert [r["status"] for r in response.json()["data"]["results"]] == [201, 400]


def test_analytics_still_runs_after_a_refused_huge_integer(tmp_path: Path, keys: KeyStore) -> None:
    settings = Settings(clock="manual", data_dir=tmp_path)
    system = build_system(settings, ManualClock(), persistent=True)
    with TestClient(create_app(settings, system, keys)) as client:
        client.headers["Authorization"] = f"Bearer {KEY}"
        paid_subscriber(client, "acme")
        track = {"customerReferenceId": "acme", "featureKey": "api_calls",
                 "track": {"meta": {"n": HUGE}}}  # fmt: skip
        assert client.post(f"{C}/entitlements", json=track).status_code == 400
        assert client.post("/api/v1/admin/snapshots").status_code == 201


def test_free_form_fields_nested_too_deeply_are_refused_naming_the_field(client: Client) -> None:
    """API-10: `meta` nested 200 levels deep was accepted, journalled, and then failed to
    decode in the analytics worker (found by the fuzz pass on the durable path). It is a 400
    naming the field, and nothing is recorded."""
    deep: Any = 1
    for _ in range(200):
        deep = {"a": deep}
    response = client.post(
        f"{C}/events",
        json={"eventName": "api_calls", "customerReferenceId": "deep",
              "eventIdempotencyKey": "deep-1", "meta": {"x": deep}},
    )  # fmt: skip
    assert response.status_code == 400
    assert "Invalid field 'meta.x.a.a" in response.json()["error"]["message"]
    assert client.get(f"{C}/customers/deep").status_code == 404
    shallow: Any = 1
    for _ in range(30):
        shallow = {"a": shallow}
    body = {"eventName": "api_calls", "customerReferenceId": "deep",
            "eventIdempotencyKey": "deep-2", "meta": {"x": shallow}}  # fmt: skip
    assert client.post(f"{C}/events", json=body).status_code == 201


def test_cloudevents_data_beyond_64_bits_is_refused_naming_the_event() -> None:
    """OM-2, API-10: a CloudEvent's `data` with an integer msgpack cannot hold refuses the
    batch, naming the event; 19 digits or more that fit, or that are text, are accepted (the
    body's digit runs only tell when the data must be checked)."""

    def event(i: int, data: str) -> str:
        return (f'{{"specversion":"1.0","source":"s","type":"t","id":"{i}",'
                f'"subject":"x","data":{data}}}')  # fmt: skip

    batch = "application/cloudevents-batch+json"
    fits = f'{{"n":{2**64 - 1},"m":{-(2**63)},"s":"{"7" * 40}"}}'
    events = parse_events(f"[{event(0, fits)},{event(1, fits)}]".encode(), batch)
    assert [e.data for e in events] == [{"n": 2**64 - 1, "m": -(2**63), "s": "7" * 40}] * 2
    for huge in (2**64, 10**30, -(2**63) - 1):
        wide = '{"n":%d}' % huge  # noqa: UP031 (braces of JSON: clearer than doubled)
        body = f"[{event(0, fits)},{event(1, wide)}]"
        with pytest.raises(Problem) as refused:
            parse_events(body.encode(), batch)
        assert refused.value.detail == "[1].data: holds an integer beyond 64 bits"
