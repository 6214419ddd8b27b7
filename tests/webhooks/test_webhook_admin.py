"""The webhook admin API over HTTP, beyond create and list (WHK-D1..WHK-D9, WHK-D31, WHK-D32):
changing an endpoint's URL (and refusing a private one there too), a test event sent to an
existing endpoint and arriving verified, the admin scope on every route, environments that
never see each other's events, and secrets that never reach a log record."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from allotment.http.fast_path import FastPath
from allotment.persistence.keys import KeyStore
from allotment.runtime.clock import ManualClock
from tests.conftest import CLIENT_KEY, KEY, LIVE_KEY, READ_ONLY_KEY
from tests.http.helpers import A, advance, create_customer, error, ok, subscribe
from tests.waiting import wait_until
from tests.webhooks.conftest import verified_receiver, webhook_app
from tests.webhooks.receiver import Delivery, Receiver

W = f"{A}/webhooks"
PUBLIC_URL = "https://203.0.114.1/hooks"  # a global address; nothing is ever sent to it here


def _create(client: TestClient[FastPath], url: str, **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = ok(client.post(W, json={"url": url, **fields}), 201)
    return data


def _arrived(receiver: Receiver, count: int) -> list[Delivery]:
    def enough() -> list[Delivery] | None:
        accepted = receiver.accepted()
        return accepted if len(accepted) >= count else None

    return wait_until(enough, f"{count} deliveries at {receiver.url}")


@contextmanager
def _as(client: TestClient[FastPath], key: str) -> Iterator[None]:
    """The client's requests in between carry `key`."""
    before = client.headers["Authorization"]
    client.headers["Authorization"] = f"Bearer {key}"
    try:
        yield
    finally:
        client.headers["Authorization"] = before


@pytest.mark.parametrize("shards", [1], ids=["one"])
def test_a_test_event_reaches_an_existing_endpoint_and_follows_a_patched_url(
    hooked: TestClient[FastPath], receiver: Receiver
) -> None:
    """WHK-D2, WHK-D7, WHK-D10, WHK-D40: `POST /{id}/test` answers 202 with the message id and
    type; the `webhook.test` event arrives with that webhook-id, verified, naming the endpoint;
    it is listed as delivered and is not in the pull feed. After a PATCH of `url` the next
    test event goes to the new URL only."""
    created = _create(hooked, receiver.url)
    receiver.secrets = [created["secret"]]
    endpoint = f"{W}/{created['id']}"
    reply = ok(hooked.post(f"{endpoint}/test"), 202)
    assert reply["type"] == "webhook.test" and reply["messageId"].startswith("msg_")
    [delivery] = _arrived(receiver, 1)
    assert delivery.id == reply["messageId"] and delivery.verified_by == (created["secret"],)
    assert delivery.body["type"] == "webhook.test"
    assert delivery.body["data"]["endpointId"] == created["id"]
    [listed] = wait_until(  # the receiver answered; the outcome is logged just after
        lambda: ok(hooked.get(f"{endpoint}/messages", params={"status": "delivered"})),
        "the test message listed as delivered",
    )
    assert (listed["id"], listed["type"]) == (reply["messageId"], "webhook.test")
    assert ok(hooked.get(f"{A}/events"))["events"] == []
    with verified_receiver() as moved:
        moved.secrets = [created["secret"]]
        changed = ok(hooked.patch(endpoint, json={"url": moved.url}))
        assert changed["url"] == moved.url and ok(hooked.get(endpoint))["url"] == moved.url
        again = ok(hooked.post(f"{endpoint}/test"), 202)
        [arrived] = _arrived(moved, 1)
    assert arrived.id == again["messageId"] and arrived.verified_by == (created["secret"],)
    assert [d.id for d in receiver.deliveries] == [reply["messageId"]]  # nothing more there


def test_patching_url_to_a_private_address_is_refused_without_the_flag(
    tmp_path: Path, clock: ManualClock, keys: KeyStore, receiver: Receiver
) -> None:
    """WHK-D31: the check made at creation is made at PATCH too: a loopback or private URL is
    a 400 naming `url` and the flag, and the endpoint keeps its URL."""
    app = webhook_app(tmp_path, clock, keys, private=False)
    with TestClient(app, base_url="http://testserver.local") as client:
        client.headers["Authorization"] = f"Bearer {KEY}"
        endpoint = f"{W}/{_create(client, PUBLIC_URL)['id']}"
        for url in (receiver.url, "http://localhost:9/x", "http://10.1.2.3/x", "http://[::1]/x"):
            message = error(client.patch(endpoint, json={"url": url}), 400)
            assert "'url'" in message and "--allow-private-webhooks" in message, url
        assert ok(client.get(endpoint))["url"] == PUBLIC_URL
        moved = ok(client.patch(endpoint, json={"url": "https://203.0.114.2/other"}))
        assert moved["url"] == "https://203.0.114.2/other"  # a public one is accepted
        assert ok(client.get(f"{endpoint}/messages")) == []  # nothing was ever sent


@pytest.mark.parametrize("shards", [1], ids=["one"])
@pytest.mark.parametrize("key", [CLIENT_KEY, READ_ONLY_KEY], ids=["client", "read_only"])
def test_every_webhook_route_refuses_a_key_without_the_admin_scope(
    hooked: TestClient[FastPath], receiver: Receiver, key: str
) -> None:
    """AUTH-6, WHK-D1: each webhook admin route, and the pull feed, is a 403 for a client key
    and a read-only one; nothing changes and nothing is sent."""
    created = _create(hooked, receiver.url)
    receiver.secrets = [created["secret"]]
    endpoint = f"{W}/{created['id']}"
    with _as(hooked, key):
        cases = [
            hooked.get(W),
            hooked.post(W, json={"url": receiver.url}),
            hooked.get(endpoint),
            hooked.patch(endpoint, json={"url": receiver.url + "/x", "enabled": False}),
            hooked.delete(endpoint),
            hooked.post(f"{endpoint}/rotate-secret"),
            hooked.post(f"{endpoint}/test"),
            hooked.get(f"{endpoint}/messages"),
            hooked.post(f"{endpoint}/messages/msg_0/resend"),
            hooked.get(f"{A}/events"),
        ]
    for response in cases:
        assert error(response, 403) == "Access denied.", response.request.url
    [kept] = ok(hooked.get(W))
    assert (kept["id"], kept["url"], kept["enabled"]) == (created["id"], receiver.url, True)
    assert ok(hooked.get(f"{endpoint}/messages")) == []
    ok(hooked.post(f"{endpoint}/test"), 202)  # the secret was not rotated: still verifies
    assert _arrived(receiver, 1)[0].verified_by == (created["secret"],)


def _subscription_of(delivery: Delivery) -> str:
    data = delivery.body["data"]
    return str(
        data["invoice"]["subscriptionId"] if "invoice" in data else data["subscription"]["id"]
    )


def test_sandbox_and_live_endpoints_receive_only_their_environments_events(
    hooked: TestClient[FastPath], receiver: Receiver
) -> None:
    """WHK-D1: an sk_test_ endpoint never receives sk_live_ events, and the reverse; each
    environment's feed and messages hold its own customer's events only."""
    sandbox = _create(hooked, receiver.url)
    receiver.secrets = [sandbox["secret"]]
    with verified_receiver() as live_receiver, _as(hooked, LIVE_KEY):
        live = _create(hooked, live_receiver.url)
        live_receiver.secrets = [live["secret"]]
        create_customer(hooked, "acme")  # the same reference id, another customer
        live_sub = subscribe(hooked, "acme", "free")["subscription"]["id"]
        with _as(hooked, KEY):
            create_customer(hooked, "acme")
            sandbox_sub = subscribe(hooked, "acme", "free")["subscription"]["id"]
        live_got = _arrived(live_receiver, 3)
        live_fed = ok(hooked.get(f"{A}/events"))["events"]
        live_listed = ok(hooked.get(f"{W}/{live['id']}/messages"))
    sandbox_got = _arrived(receiver, 3)
    sandbox_fed = ok(hooked.get(f"{A}/events"))["events"]
    sandbox_listed = ok(hooked.get(f"{W}/{sandbox['id']}/messages"))
    kinds = ["invoice.created", "invoice.paid", "subscription.activated"]
    for got, sub, secret in ((sandbox_got, sandbox_sub, sandbox["secret"]),
                             (live_got, live_sub, live["secret"])):  # fmt: skip
        assert [d.body["type"] for d in got] == kinds
        assert {_subscription_of(d) for d in got} == {sub}
        assert {d.verified_by for d in got} == {(secret,)}
    customers = [{d.body["data"]["customerId"] for d in got} for got in (sandbox_got, live_got)]
    assert len(customers[0]) == len(customers[1]) == 1 and customers[0] != customers[1]
    assert [e["id"] for e in live_fed] == [d.id for d in live_got]
    assert [e["id"] for e in sandbox_fed] == [d.id for d in sandbox_got]
    assert sorted(m["id"] for m in live_listed) == sorted(d.id for d in live_got)
    assert sorted(m["id"] for m in sandbox_listed) == sorted(d.id for d in sandbox_got)


def test_no_secret_reaches_a_log_record(
    tmp_path: Path,
    clock: ManualClock,
    keys: KeyStore,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """WHK-D32: every record logged at any level, by any logger, over a create, a failed and
    a retried delivery, a rotation, deliveries signed with both secrets, and a PATCH (with the
    access log on, so each request writes a line) holds neither secret, whole or without its
    `whsec_` prefix."""
    caplog.set_level(logging.DEBUG)
    app = webhook_app(tmp_path, clock, keys, private=True, access_log=True)
    with TestClient(app, base_url="http://testserver.local") as client:
        client.headers["Authorization"] = f"Bearer {KEY}"
        created = _create(client, receiver.url)
        receiver.secrets = [created["secret"]]
        receiver.statuses.append(500)
        endpoint = f"{W}/{created['id']}"
        ok(client.post(f"{endpoint}/test"), 202)
        wait_until(lambda: len(receiver.deliveries) >= 1, "the failed attempt")
        advance(client, seconds=5)  # the retry is due
        _arrived(receiver, 1)
        rotated = ok(client.post(f"{endpoint}/rotate-secret"))
        receiver.secrets = [created["secret"], rotated["secret"]]
        create_customer(client, "acme")
        subscribe(client, "acme", "free")
        ok(client.patch(endpoint, json={"description": "ops", "enabled": True}))
        _arrived(receiver, 4)
    assert {len(d.verified_by) for d in receiver.accepted()[1:]} == {2}  # both signed
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    logged = "\n".join(formatter.format(r) + repr(vars(r)) for r in caplog.records)
    assert f"{W}/{created['id']}/rotate-secret" in logged  # the capture saw the requests
    for secret in (created["secret"], rotated["secret"]):
        assert secret not in logged and secret.removeprefix("whsec_") not in logged
