"""Kill -9 after commit and before delivery (issue 15, WHK-D15, WHK-D16, WHK-D12): a
threshold notification whose event got its 201 is delivered after the restart, with the same
webhook-id, to a real receiver verifying it with standardwebhooks. The receiver holds the
first request, so the kill lands while the delivery is in flight."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.reliability.server import KEY, Server
from tests.waiting import wait_until
from tests.webhooks.receiver import Receiver

C, A = "/api/v1/client", "/api/v1/admin"
HEADERS = {"Authorization": f"Bearer {KEY}"}
THRESHOLD = "entitlement.usage.threshold"


def _post(server: Server, path: str, body: dict[str, object]) -> dict[str, object]:
    response = httpx.post(f"{server.url}{path}", json=body, headers=HEADERS, timeout=60)
    assert response.status_code in (200, 201), response.text
    data: dict[str, object] = response.json().get("data") or {}
    return data


def _free_plan(server: Server) -> str:
    plans = httpx.get(f"{server.url}{C}/plans", headers=HEADERS, timeout=60).json()["data"]
    return str(next(p["plan"]["id"] for p in plans if p["plan"]["key"] == "free"))


def test_a_committed_notification_is_delivered_after_kill_9_with_the_same_id(
    tmp_path: Path,
) -> None:
    receiver = Receiver()
    server = Server(tmp_path, "--allow-private-webhooks")
    try:
        endpoint = _post(server, f"{A}/webhooks", {"url": receiver.url, "eventTypes": [THRESHOLD]})
        receiver.secrets = [str(endpoint["secret"])]
        _post(
            server,
            f"{C}/customers",
            {
                "externalClientCustomerId": "acme",
                "firstName": "Jane",
                "lastName": "Smith",
                "email": "jane@example.com",
            },
        )
        _post(
            server,
            f"{C}/subscriptions",
            {"customerReferenceId": "acme", "planId": _free_plan(server)},
        )
        receiver.gate.clear()  # hold the delivery: the kill lands before it is answered
        _post(server, f"{C}/events", {"eventName": "api_calls", "customerReferenceId": "acme",
                                       "eventIdempotencyKey": "e1", "usageUnits": 850})  # fmt: skip
        wait_until(lambda: receiver.held >= 1, "the threshold's delivery in flight")
    finally:
        server.kill()
    receiver.gate.set()  # the held request ends; its answer reaches nobody
    wait_until(lambda: len(receiver.deliveries) >= 1, "the held request to finish")
    first = receiver.deliveries[0]
    assert first.body["type"] == THRESHOLD
    restarted = Server(tmp_path, "--allow-private-webhooks")
    try:
        wait_until(lambda: len(receiver.deliveries) >= 2, "the delivery after the restart")
        again = receiver.deliveries[1]
        assert again.id == first.id  # the same webhook-id: receivers deduplicate on it
        assert again.body == first.body
        assert receiver.unverified == []

        def statuses() -> list[tuple[str, str]]:
            messages = httpx.get(
                f"{restarted.url}{A}/webhooks/{endpoint['id']}/messages",
                headers=HEADERS, timeout=60,
            ).json()["data"]  # fmt: skip
            return [(m["id"], m["status"]) for m in messages]

        # The receiver records the request before its 2xx reaches the server, which marks the
        # message delivered after: wait for that, then see the one message and its status.
        wait_until(lambda: statuses() != [(first.id, "pending")], "the 2xx to be recorded")
        assert statuses() == [(first.id, "delivered")]
    finally:
        restarted.stop()
        receiver.close()
