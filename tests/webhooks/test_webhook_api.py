"""The webhook admin API through the app (WHK-D1..WHK-D9, WHK-D30..WHK-D41): endpoints per
environment, secrets shown only at creation and rotation, 4xx naming the field, and real
threshold notifications delivered end to end to a receiver verifying with standardwebhooks,
then listed, resent and read from the pull feed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from allotment.http.fast_path import FastPath
from allotment.persistence.keys import KeyStore
from allotment.runtime.clock import ManualClock
from tests.conftest import KEY, LIVE_KEY
from tests.http.helpers import A, advance, create_customer, error, event, ok, subscribe
from tests.http.reservation_helpers import holder, reserve
from tests.waiting import wait_until
from tests.webhooks.conftest import webhook_app
from tests.webhooks.receiver import Receiver

W = f"{A}/webhooks"
THRESHOLD = "entitlement.usage.threshold"


def _create(client: TestClient[FastPath], url: str, **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = ok(client.post(W, json={"url": url, **fields}), 201)
    return data


def test_endpoints_are_managed_per_environment_and_secrets_shown_twice_only(
    hooked: TestClient[FastPath], receiver: Receiver
) -> None:
    """WHK-D1, WHK-D2, WHK-D4, WHK-D5, WHK-D6: create shows the secret; list and get do not;
    PATCH changes what it names; rotate shows a new secret and when the old one stops; a
    live key does not see a sandbox endpoint; DELETE removes it."""
    created = _create(hooked, receiver.url, eventTypes=[THRESHOLD], description="ops")
    assert created["secret"].startswith("whsec_") and created["eventTypes"] == [THRESHOLD]
    endpoint = f"{W}/{created['id']}"
    assert "secret" not in ok(hooked.get(endpoint))
    assert [e["id"] for e in ok(hooked.get(W))] == [created["id"]]
    assert "secret" not in ok(hooked.get(W))[0]
    changed = ok(hooked.patch(endpoint, json={"enabled": False, "eventTypes": []}))
    assert (changed["enabled"], changed["eventTypes"], changed["url"]) == (False, [], receiver.url)
    rotated = ok(hooked.post(f"{endpoint}/rotate-secret"))
    assert rotated["secret"] != created["secret"] and "previousSecretExpiresAt" in rotated
    live = {"Authorization": f"Bearer {LIVE_KEY}"}
    assert ok(hooked.get(W, headers=live)) == []
    error(hooked.get(endpoint, headers=live), 404)
    ok(hooked.delete(endpoint))
    error(hooked.get(endpoint), 404)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.com/hook"}, "url"),
        ({"url": "https://"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "https://example.com/h", "eventTypes": ["invoice.exploded"]}, "eventTypes"),
        ({"url": "https://example.com/h", "colour": "blue"}, "colour"),
        ({"eventTypes": []}, "url"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(
    hooked: TestClient[FastPath], body: dict[str, Any], field: str
) -> None:
    """WHK-D3, WHK-D30: a bad URL, an unknown event type or an unknown field is a 400 whose
    message names it; nothing is created."""
    assert field in error(hooked.post(W, json=body), 400)
    assert ok(hooked.get(W)) == []


def test_an_unknown_endpoint_is_a_404_everywhere(hooked: TestClient[FastPath]) -> None:
    """WHK-D4: every route naming an endpoint answers 404 for an unknown id."""
    missing = f"{W}/ep_000000000000000000000000"
    error(hooked.get(missing), 404)
    error(hooked.patch(missing, json={"enabled": True}), 404)
    error(hooked.delete(missing), 404)
    error(hooked.post(f"{missing}/rotate-secret"), 404)
    error(hooked.post(f"{missing}/test"), 404)
    error(hooked.get(f"{missing}/messages"), 404)
    error(hooked.post(f"{missing}/messages/msg_1/resend"), 404)


def test_private_addresses_are_refused_without_the_flag(
    tmp_path: Path, clock: ManualClock, keys: KeyStore, receiver: Receiver
) -> None:
    """WHK-D31: loopback and private addresses are refused by default, the message naming
    the flag that allows them."""
    app = webhook_app(tmp_path, clock, keys, private=False)
    with TestClient(app, base_url="http://testserver.local") as client:
        client.headers["Authorization"] = f"Bearer {KEY}"
        for url in (receiver.url, "http://localhost:9/x", "http://10.1.2.3/x", "http://[::1]/x"):
            message = error(client.post(W, json={"url": url}), 400)
            assert "'url'" in message and "--allow-private-webhooks" in message, url


def test_thresholds_are_delivered_listed_resent_and_fed(
    hooked: TestClient[FastPath], receiver: Receiver
) -> None:
    """WHK-D10..WHK-D14, WHK-D33, WHK-D34, WHK-D40: crossing 80% then 100% of the free plan's
    1000 calls delivers two threshold events, in order, verified by standardwebhooks; the
    messages API shows each delivered with its attempt; a resend sends the same webhook-id
    again; the feed returns the same events with a cursor to continue from."""
    created = _create(hooked, receiver.url, eventTypes=[THRESHOLD])
    receiver.secrets = [created["secret"]]
    create_customer(hooked, "acme")
    subscribe(hooked, "acme", "free")
    ok(event(hooked, "acme", "e1", usageUnits=850), 201)
    event(hooked, "acme", "e2", usageUnits=150)  # reaches 1000: the limit (answered 200)
    wait_until(lambda: len(receiver.accepted()) >= 2, "two threshold deliveries")
    first, second = receiver.accepted()
    assert receiver.unverified == []
    assert [d.body["type"] for d in (first, second)] == [THRESHOLD, THRESHOLD]
    assert [d.body["data"]["threshold"]["percent"] for d in (first, second)] == [80, 100]
    assert first.body["data"]["referenceCustomerId"] == "acme"
    messages = f"{W}/{created['id']}/messages"

    def both_delivered() -> list[dict[str, Any]] | None:
        listed: list[dict[str, Any]] = ok(hooked.get(messages, params={"status": "delivered"}))
        return listed if len(listed) == 2 else None

    # The receiver records a request before it answers, and the server logs the outcome only
    # once it has read the answer: the listing may lag the receiver.
    listed = wait_until(both_delivered, "both messages logged as delivered")
    assert [m["id"] for m in listed] == [second.id, first.id]  # newest first
    assert listed[0]["attempts"][0]["statusCode"] == 200
    assert ok(hooked.post(f"{messages}/{first.id}/resend"), 202)["id"] == first.id
    wait_until(lambda: len(receiver.accepted()) >= 3, "the resend")
    assert receiver.accepted()[2].id == first.id
    page = ok(hooked.get(f"{A}/events", params={"types": THRESHOLD, "limit": 1}))
    assert [e["id"] for e in page["events"]] == [first.id]
    rest = ok(hooked.get(f"{A}/events", params={"types": THRESHOLD, "after": page["nextCursor"]}))
    assert [e["id"] for e in rest["events"]] == [second.id]
    assert "invoice.exploded" in error(hooked.get(f"{A}/events?types=invoice.exploded"), 400)
    assert "'after'" in error(hooked.get(f"{A}/events?after=xyz"), 400)
    statistics = ok(hooked.get(f"{A}/statistics"))["webhooks"]
    assert statistics[0]["delivered"] >= 2 and statistics[0]["backlog"] == 0
    hooked.event_hooks["response"].clear()  # /metrics is text, not the JSON envelope
    metrics = hooked.get("/metrics").text
    assert (
        f'allotment_webhook_backlog_max{{endpoint="{created["id"]}",environment="test"}} 10000.0'
        in metrics
    )


def test_an_expired_hold_is_delivered_as_reservation_expired(
    hooked: TestClient[FastPath], receiver: Receiver
) -> None:
    """WHK-E40, RSV-23, WHK-D10: a hold that lapses while the clock moves is delivered to an
    endpoint subscribed to reservation.expired, verified by standardwebhooks."""
    created = _create(hooked, receiver.url, eventTypes=["reservation.expired"])
    receiver.secrets = [created["secret"]]
    holder(hooked, "acme")
    ok(reserve(hooked, "acme", featureKey="ai_chat", units=75, reservationId="r1",
               ttlSeconds=60, eventName="llm_call"), 201)  # fmt: skip
    advance(hooked, seconds=61)
    wait_until(lambda: len(receiver.accepted()) >= 1, "the expiry's delivery")
    [delivery] = receiver.accepted()
    assert receiver.unverified == []
    assert delivery.body["type"] == "reservation.expired"
    data = delivery.body["data"]
    assert (data["referenceCustomerId"], data["reservationId"], data["eventName"]) == (
        "acme", "r1", "llm_call",
    )  # fmt: skip
    assert data["items"] == [
        {
            "featureKey": "ai_chat",
            "units": "75.000000",
            "credits": "75.0000",
            "denomination": "TOKENS",
        }
    ]
