"""Reservations on a real `allotment serve` (issue 14): Stigg's guarantee over HTTP with real
concurrency (RSV-4), settlements racing new reserves (RSV-7, RSV-10, RSV-24), and idempotent
replies and expiry across a kill -9 (RSV-25, RSV-26). One server for the module, restarted in
place by the last test."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.http.reservation_helpers import RSV_PLAN
from tests.reliability.server import KEY, Server
from tests.waiting import wait_until

C = "/api/v1/client"
A = "/api/v1/admin"
HEADERS = {"Authorization": f"Bearer {KEY}"}


class Live:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.server = Server(data_dir)

    def restart_after_kill(self) -> None:
        self.server.kill()
        self.server = Server(self.data_dir)

    def restart_clean(self) -> None:
        self.server.stop()
        self.server = Server(self.data_dir)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.server.url, headers=HEADERS, timeout=60)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    running = Live(tmp_path_factory.mktemp("reservations"))
    with running.client() as client:
        response = client.put(f"{A}/catalog", json={"plans": [RSV_PLAN]})
        assert response.status_code == 200, response.text
    yield running
    running.server.stop()


def _holder(live: Live, ref: str, tokens: int = 500) -> None:
    with live.client() as client:
        created = client.post(f"{C}/customers", json={"externalClientCustomerId": ref,
                              "firstName": "A", "lastName": "B", "email": "a@b.co"})  # fmt: skip
        assert created.status_code == 201, created.text
        plans = client.get(f"{C}/plans").json()["data"]
        plan = next(p["plan"]["id"] for p in plans if p["plan"]["key"] == "rsv_plan")
        subscribed = client.post(f"{C}/subscriptions",
                                 json={"customerReferenceId": ref, "planId": plan})  # fmt: skip
        assert subscribed.status_code == 201, subscribed.text
        granted = client.post(f"{A}/credits/grants", json={"customerReferenceId": ref,
                              "denomination": "TOKENS", "amount": tokens, "source": "PURCHASE"})  # fmt: skip
        assert granted.status_code == 201, granted.text


def _pool(live: Live, ref: str) -> dict[str, Any]:
    with live.client() as client:
        pools: list[dict[str, Any]] = client.get(f"{C}/credits/{ref}/pools").json()["data"]
    return next(p for p in pools if p["denomination"] == "TOKENS")


async def _all(live: Live, requests: list[tuple[str, dict[str, Any]]]) -> list[httpx.Response]:
    """Every request at once, each on its own connection."""
    results: list[httpx.Response | None] = [None] * len(requests)
    async with httpx.AsyncClient(base_url=live.server.url, headers=HEADERS, timeout=60,
                                 limits=httpx.Limits(max_connections=64)) as client:  # fmt: skip

        async def send(index: int, path: str, body: dict[str, Any]) -> None:
            results[index] = await client.post(path, json=body)

        async with anyio.create_task_group() as tg:
            for index, (path, body) in enumerate(requests):
                tg.start_soon(send, index, path, body)
    return [r for r in results if r is not None]


def _reserve(ref: str, reservation_id: str, units: int = 75) -> tuple[str, dict[str, Any]]:
    return f"{C}/reservations", {"customerReferenceId": ref, "featureKey": "ai_chat",
                                 "units": units, "reservationId": reservation_id}  # fmt: skip


def test_rsv_4_twenty_concurrent_reserves_of_75_against_500_grant_exactly_6(live: Live) -> None:
    """Stigg's published guarantee, over HTTP, 20 requests in flight at once."""
    _holder(live, "stigg")
    responses = anyio.run(_all, live, [_reserve("stigg", f"s{i}") for i in range(20)])
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 14 + [201] * 6
    denied = [r.json()["data"] for r in responses if r.status_code == 200]
    assert all(d["isAllowed"] is False for d in denied)
    pool = _pool(live, "stigg")
    assert (pool["balance"], pool["reserved"], pool["available"]) == (500, 450, 50)


def test_rsv_24_settlements_racing_new_reserves_never_overspend(live: Live) -> None:
    """Releases and commits race 20 new reserves: whatever the order, the pool's available
    balance is never negative and granted = consumed + held + available."""
    _holder(live, "race")
    first = anyio.run(_all, live, [_reserve("race", f"a{i}") for i in range(6)])
    assert [r.status_code for r in first] == [201] * 6
    racing = [
        *(( f"{C}/reservations/a{i}/release", {}) for i in range(2)),
        *((f"{C}/reservations/a{i}/commit", {"usageUnits": 75}) for i in range(2, 4)),
        *(_reserve("race", f"b{i}") for i in range(20)),
    ]  # fmt: skip
    responses = anyio.run(_all, live, racing)
    assert all(r.status_code in (200, 201) for r in responses), [r.text for r in responses]
    granted = sum(r.status_code == 201 for r in responses[4:])
    assert granted <= 2  # only the two releases free anything (a commit of 75 frees nothing)
    pool = _pool(live, "race")
    reserved = Decimal(str(pool.get("reserved", 0)))
    available = Decimal(str(pool.get("available", pool["balance"])))
    assert available >= 0
    assert Decimal(str(pool["totalGranted"])) == (
        Decimal(str(pool["totalConsumed"])) + reserved + available
    )
    assert Decimal(str(pool["totalConsumed"])) == 150
    assert reserved == 75 * (2 + granted)
    with live.client() as client:
        held = client.get(f"{C}/customers/race/reservations?status=HELD").json()["data"]
    assert len(held) == 2 + granted


def test_rsv_25_rsv_26_replies_and_expiry_survive_kill_9(live: Live) -> None:
    """Reserve, commit and release answer the same after a kill -9 and restart, and after a
    clean restart; a hold whose expiry passed while the server was down expires after the
    restart."""
    _holder(live, "crash")
    calls = [
        (f"{C}/reservations", {"customerReferenceId": "crash", "featureKey": "ai_chat",
                               "units": 100, "reservationId": "k1", "ttlSeconds": 600}),
        (f"{C}/reservations", {"customerReferenceId": "crash", "featureKey": "ai_chat",
                               "units": 50, "reservationId": "k2"}),
        (f"{C}/reservations/k1/commit", {"usageUnits": 90, "eventIdempotencyKey": "ev-k1"}),
        (f"{C}/reservations/k2/release", {}),
    ]  # fmt: skip
    with live.client() as client:
        before = [(r.status_code, r.json()) for r in (client.post(p, json=b) for p, b in calls)]
        short = client.post(f"{C}/reservations", json={"customerReferenceId": "crash",
                            "featureKey": "ai_chat", "units": 10, "reservationId": "k3",
                            "ttlSeconds": 1})  # fmt: skip
        assert short.status_code == 201, short.text
    assert [s for s, _ in before] == [201, 201, 200, 200]
    live.restart_after_kill()
    with live.client() as client:
        after = [(r.status_code, r.json()) for r in (client.post(p, json=b) for p, b in calls)]
        assert after[0] == (200, before[0][1])  # RSV-1: the original answer, as a repeat
        assert after[1][1] == before[1][1]
        assert after[2:] == before[2:]  # RSV-15, RSV-19: as they were

        def expired() -> bool:
            shown = client.get(f"{C}/reservations/k3").json()["data"]
            return bool(shown["status"] == "EXPIRED")

        wait_until(expired, "the short hold expires after the restart")
    pool = _pool(live, "crash")
    assert pool["balance"] == 410 and "reserved" not in pool  # 90 committed, once
    live.restart_clean()  # and after a clean stop
    with live.client() as client:
        again = [(r.status_code, r.json()) for r in (client.post(p, json=b) for p, b in calls)]
    assert again == after
    assert _pool(live, "crash") == pool
