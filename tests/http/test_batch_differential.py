"""Batch equals one by one over HTTP (issue 21, item 4): the Tanso batch endpoint answers each
event as `POST /events` answers it alone, and a CloudEvents batch counts as its events sent one
at a time; both leave the same checks, in one shard and over three.

Hypothesis draws the events, bodies the batch's one typed decode cannot take (quoted, negative
and exponent units, unknown fields, a missing key, wrong types) mixed with plain ones, so each
batch goes the one-decode way or the per-event way, and both must agree with `POST /events`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from allotment.config import Settings
from allotment.http.app import create_app
from allotment.persistence.keys import KeyStore
from allotment.runtime.clock import ManualClock
from allotment.wiring import build_system
from tests.conftest import KEY, START
from tests.http.helpers import C, Client, create_customer, subscribe

REFS = ("b0", "b1", "fresh", "bad ref")
PLAIN_UNITS: tuple[Any, ...] = (1, 2.5, 400, 999, 3000)
ODD_UNITS: tuple[Any, ...] = ("5", -1, "1e2", 1e2, None, 10**20)
OM = "/api/v1"
# Each example starts two servers (about 4 s on a slow CI machine): five examples a run, new
# ones each run; shrinking a failure would take many minutes of them.
TWO_SERVERS = settings(max_examples=5, deadline=None, phases=(Phase.explicit, Phase.reuse, Phase.generate),
                       suppress_health_check=[HealthCheck.too_slow])  # fmt: skip


@st.composite
def tanso_events(draw: st.DrawFn) -> dict[str, Any]:
    event: dict[str, Any] = {
        "eventName": "api_calls",
        "customerReferenceId": draw(st.sampled_from(REFS)),
        "eventIdempotencyKey": f"k{draw(st.integers(0, 9))}",
        "featureKey": draw(st.sampled_from(("api_calls", "projects", "new_feature"))),
        "usageUnits": draw(st.sampled_from(PLAIN_UNITS + ODD_UNITS * draw(st.booleans()))),
    }
    odd = draw(st.sampled_from((None, None, None, "unknown", "no key", "meta", "bad type")))
    if odd == "unknown":
        event["surprise"] = 1
    elif odd == "no key":
        del event["eventIdempotencyKey"]
    elif odd == "meta":
        event["meta"] = {"a": {"b": [1, 2]}}
    elif odd == "bad type":
        event["eventName"] = 7
    if event["usageUnits"] is None:
        del event["usageUnits"]
    return event


@contextmanager
def _twin(shards: int) -> Iterator[Client]:
    """A server with a data directory (OpenMeter's event listing and meter queries read it),
    customers b0 and b1 on the free plan with subjects s0 and s1, and a COUNT meter."""
    with tempfile.TemporaryDirectory() as directory, _served(Path(directory), shards) as client:
        yield client


@contextmanager
def _served(directory: Path, shards: int) -> Iterator[Client]:
    # "write": an answered event is in the file the listing and meter query read (with "none"
    # the writer thread may not have written it yet when the next request reads).
    settings = Settings(clock="manual", shards=shards, data_dir=directory, durability="write")
    system = build_system(settings, ManualClock(START))
    keys = KeyStore()
    keys.add(KEY)
    with TestClient(create_app(settings, system, keys)) as client:
        client.headers["Authorization"] = f"Bearer {KEY}"
        for index, ref in enumerate(("b0", "b1")):
            create_customer(client, ref)
            subscribe(client, ref, "free")
            body = {
                "name": ref,
                "key": f"om-{ref}",
                "usageAttribution": {"subjectKeys": [f"s{index}"]},
            }
            assert client.post(f"{OM}/customers", json=body).status_code == 201
        meter = {"slug": "calls", "aggregation": "COUNT", "eventType": "call"}
        assert client.post(f"{OM}/meters", json=meter).status_code == 201
        yield client


def _checks(client: Client) -> list[Any]:
    return [
        client.get(f"{C}/entitlements/{ref}/{feature}").json()
        for ref in REFS
        for feature in ("api_calls", "projects", "new_feature")
    ]


def _single(client: Client, event: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"{C}/events", json=event)
    body = response.json()
    if body.get("success"):
        return {"status": response.status_code, "success": True, "data": body.get("data")}
    return {"status": response.status_code, "success": False, "error": body["error"]}


def _result(item: dict[str, Any]) -> dict[str, Any]:
    return {key: item.get(key) for key in ("status", "success", "data", "error") if key in item}


@TWO_SERVERS
@given(
    history=st.lists(tanso_events(), max_size=4),
    batch=st.lists(tanso_events(), min_size=1, max_size=25),
    shards=st.sampled_from((1, 3)),
)
@example(  # SCL-85a: one key from a new customer (shard 0 until created) and from b1's shard
    history=[],
    batch=[
        {"eventName": "api_calls", "customerReferenceId": ref, "eventIdempotencyKey": "k2",
         "featureKey": "projects", "usageUnits": 1}
        for ref in ("fresh", "b1")
    ],
    shards=3,
)  # fmt: skip
def test_the_tanso_batch_answers_as_posting_each_event(
    history: list[dict[str, Any]], batch: list[dict[str, Any]], shards: int
) -> None:
    if shards > 1:  # see test_over_shards_a_feature_two_shards_auto_create_differs
        history, batch = _known_features(history), _known_features(batch)
    with _twin(shards) as one, _twin(shards) as many:
        for event in history:
            assert _single(one, event) == _single(many, event)
        singles = [_single(one, event) for event in batch]
        response = many.post(f"{C}/events/batch", json={"events": batch})
        assert response.status_code == 200, response.text
        results = [_result(item) for item in response.json()["data"]["results"]]
        expected = [{k: v for k, v in s.items() if v is not None} for s in singles]
        assert [{k: v for k, v in r.items() if v is not None} for r in results] == expected
        assert _checks(many) == _checks(one)


def _known_features(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**e, "featureKey": "projects"} if e["featureKey"] == "new_feature" else e
            for e in events]  # fmt: skip


@pytest.mark.xfail(strict=True, reason="known, older than issue 21: over shards a feature one "
                   "shard auto-created is shared after the batch (SCL-87), so another shard's "
                   "event in the same batch auto-creates it too and says so")  # fmt: skip
def test_over_shards_a_feature_two_shards_auto_create_differs() -> None:
    events = [_event(ref, f"x{ref}") for ref in ("fresh", "b0", "b1", "new2", "new3", "new4")]
    with _twin(3) as one, _twin(3) as many:
        singles = [_single(one, event) for event in events]
        response = many.post(f"{C}/events/batch", json={"events": events})
        results = [_result(item) for item in response.json()["data"]["results"]]
        assert results == singles


def _event(ref: str, key: str) -> dict[str, Any]:
    return {"eventName": "e", "customerReferenceId": ref, "eventIdempotencyKey": key,
            "featureKey": "new_feature"}  # fmt: skip


@st.composite
def cloud_events(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"e{draw(st.integers(0, 8))}",
        "source": draw(st.sampled_from(("app", "other"))),
        "type": draw(st.sampled_from(("call", "unmetered"))),
        "subject": draw(st.sampled_from(("s0", "s1", "nobody"))),
        "time": "2025-01-15T10:00:00Z",
    }


def _cloud_checks(client: Client) -> list[Any]:
    listing = client.get(f"{OM}/events", params={"limit": 100}).json()
    events = sorted(
        (e["event"]["source"], e["event"]["id"], e["event"]["subject"]) for e in listing
    )
    query = client.get(f"{OM}/meters/calls/query", params={"groupBy": "subject"}).json()
    return [events, query["data"]]


@TWO_SERVERS
@given(
    history=st.lists(cloud_events(), max_size=4),
    batch=st.lists(cloud_events(), min_size=1, max_size=30),
    shards=st.sampled_from((1, 3)),
)
def test_a_cloudevents_batch_counts_as_its_events_one_by_one(
    history: list[dict[str, Any]], batch: list[dict[str, Any]], shards: int
) -> None:
    single = {"Content-Type": "application/cloudevents+json"}
    with _twin(shards) as one, _twin(shards) as many:
        for event in history:
            for client in (one, many):
                assert client.post(f"{OM}/events", content=msgspec.json.encode(event),
                                   headers=single).status_code == 204  # fmt: skip
        for event in batch:
            answer = one.post(f"{OM}/events", content=msgspec.json.encode(event), headers=single)
            assert answer.status_code == 204
        answer = many.post(f"{OM}/events", content=msgspec.json.encode(batch),
                           headers={"Content-Type": "application/cloudevents-batch+json"})  # fmt: skip
        assert answer.status_code == 204
        assert _cloud_checks(many) == _cloud_checks(one)
