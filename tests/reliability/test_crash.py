"""Crash tests with a real server: concurrent ingestion and checks, `kill -9`, restart on the
same data dir. Every acknowledged event is counted exactly once, every retried key gets 409,
and pool conservation holds. Kill points are conditions, never wall time (issue 10): under
constant load (group commits), after a checkpoint has been written (checkpoints run every
0.2 s, so more are in flight), and after an analytics snapshot exists (every 0.3 s)."""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.reliability.server import KEY, Server
from tests.waiting import Acked, wait_until_async

pytestmark = pytest.mark.anyio
C = "/api/v1/client"
HEADERS = {"Authorization": f"Bearer {KEY}"}


async def _prepare(client: httpx.AsyncClient) -> None:
    body = {"customerReferenceId": "hot", "firstName": "A", "lastName": "B", "email": "a@b.co"}
    assert (await client.post(f"{C}/customers", json=body)).status_code == 201
    plans = (await client.get(f"{C}/plans")).json()["data"]
    pro = next(p["plan"]["id"] for p in plans if p["plan"]["key"] == "pro_monthly")
    sub = (
        await client.post(f"{C}/subscriptions", json={"customerReferenceId": "hot", "planId": pro})
    ).json()
    assert (
        await client.post(f"{C}/billing/invoices/{sub['data']['invoice']['id']}/mark-paid")
    ).status_code == 200


def _event(key: str, units: int) -> dict[str, Any]:
    feature = "ai_chat" if units % 2 else "api_calls"  # half of them debit the TOKENS pool
    return {"eventName": feature, "featureKey": feature, "customerReferenceId": "hot",
            "eventIdempotencyKey": key, "usageUnits": units}  # fmt: skip


KILL_POINTS = {
    "under load": lambda _: True,
    "after a checkpoint": lambda d: any((d / "snapshots" / "test").glob("snapshot-*.snap")),
    "after analytics": lambda d: (d / "analytics.duckdb").exists(),
}
WAIT_S = 300  # a generous bound on reaching a kill point, never an expectation of speed


async def _kill_when(server: Server, reached: Any, acked: Acked) -> None:
    """Kill once `reached(data_dir)` holds and 50 more events were acknowledged after it."""
    with anyio.fail_after(WAIT_S):
        await wait_until_async(lambda: reached(server.data_dir), "the kill point")
        await acked.reach(20)
        await acked.reach(len(acked.keys) + 50)
    server.kill()


async def _load_until_killed(
    server: Server, sent: dict[str, int], acked: Acked, reached: Any
) -> None:
    async with httpx.AsyncClient(base_url=server.url, headers=HEADERS, timeout=5) as client:

        async def ingest(worker: int) -> None:
            for i in range(100_000):
                key = f"w{worker}-{i}"
                units = random.randint(1, 9)
                sent[key] = units
                try:
                    response = await client.post(f"{C}/events", json=_event(key, units))
                except httpx.HTTPError:
                    return  # the server died under us
                if response.status_code in (200, 201):
                    acked.add(key)

        async def check() -> None:
            while True:
                try:
                    await client.get(f"{C}/entitlements/hot/api_calls")
                except httpx.HTTPError:
                    return

        async with anyio.create_task_group() as tg:
            for worker in range(8):
                tg.start_soon(ingest, worker)
            tg.start_soon(check)
            await _kill_when(server, reached, acked)


async def _verify(server: Server, sent: dict[str, int], acked: set[str]) -> None:
    async with httpx.AsyncClient(base_url=server.url, headers=HEADERS, timeout=10) as client:
        for key in sorted(acked):  # acknowledged means durable: a retry is a duplicate
            response = await client.post(f"{C}/events", json=_event(key, sent[key]))
            assert response.status_code == 409, (key, response.text)
        for key in sorted(set(sent) - acked):  # in flight at the kill: either outcome, once
            response = await client.post(f"{C}/events", json=_event(key, sent[key]))
            assert response.status_code in (200, 201, 409), (key, response.text)
        expected = {"api_calls": Decimal(0), "ai_chat": Decimal(0)}
        for units in sent.values():
            expected["ai_chat" if units % 2 else "api_calls"] += units
        usage = (await client.get(f"{C}/entitlements/hot/api_calls")).json()["data"]["usage"]
        assert Decimal(str(usage["used"])) == expected["api_calls"]
        pool = (await client.get(f"{C}/credits/hot/pools")).json()["data"][0]
        assert Decimal(str(pool["totalConsumed"])) == expected["ai_chat"]
        balance = Decimal(str(pool["balance"]))
        totals = [
            Decimal(str(pool[k]))
            for k in ("totalGranted", "totalConsumed", "totalExpired", "totalReversed")
        ]
        assert balance == totals[0] - totals[1] - totals[2] - totals[3]


@pytest.mark.parametrize("kill_point", list(KILL_POINTS))
async def test_acknowledged_events_survive_kill_9(tmp_path: Path, kill_point: str) -> None:
    extra = ("--checkpoint-every", "0.2", "--analytics-every", "0.3")
    server = Server(tmp_path, *extra)
    try:
        async with httpx.AsyncClient(base_url=server.url, headers=HEADERS, timeout=5) as client:
            await _prepare(client)
        sent: dict[str, int] = {}
        acked = Acked()
        await _load_until_killed(server, sent, acked, KILL_POINTS[kill_point])
    finally:
        server.stop()
    restarted = Server(tmp_path, *extra)
    try:
        await _verify(restarted, sent, acked.keys)
    finally:
        restarted.stop()
