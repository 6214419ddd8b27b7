"""Per-customer linearisability under concurrent requests (API-14, EVT-37, CRD-22)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from litestar.testing import AsyncTestClient

from allotment.http.fast_path import FastPath

C = "/api/v1/client"
pytestmark = pytest.mark.anyio


async def _paid_pro_customer(client: AsyncTestClient[FastPath], ref: str) -> None:
    body = {"externalClientCustomerId": ref, "firstName": "A", "lastName": "B", "email": "a@b.co"}
    assert (await client.post(f"{C}/customers", json=body)).status_code == 201
    plans = (await client.get(f"{C}/plans")).json()["data"]
    pro = next(p["plan"]["id"] for p in plans if p["plan"]["key"] == "pro_monthly")
    sub = await client.post(f"{C}/subscriptions", json={"customerReferenceId": ref, "planId": pro})
    invoice = sub.json()["data"]["invoice"]["id"]
    assert (await client.post(f"{C}/billing/invoices/{invoice}/mark-paid")).status_code == 200


async def _gather(client: AsyncTestClient[FastPath], bodies: list[dict[str, Any]]) -> list[int]:
    statuses: list[int] = []

    async def send(body: dict[str, Any]) -> None:
        statuses.append((await client.post(f"{C}/events", json=body)).status_code)

    async with anyio.create_task_group() as tg:
        for body in bodies:
            tg.start_soon(send, body)
    return statuses


async def test_api14_200_concurrent_events_for_one_customer_are_all_counted_once(
    async_client: AsyncTestClient[FastPath],
) -> None:
    await _paid_pro_customer(async_client, "hot")
    bodies = [
        {
            "eventName": "api_calls",
            "customerReferenceId": "hot",
            "eventIdempotencyKey": f"k{i}",
            "usageUnits": i % 7 + 1,
        }
        for i in range(200)
    ]
    statuses = await _gather(async_client, bodies)
    assert statuses.count(201) == 200
    check = (await async_client.get(f"{C}/entitlements/hot/api_calls")).json()["data"]
    assert check["usage"]["used"] == sum(i % 7 + 1 for i in range(200))


async def test_evt37_concurrent_requests_with_one_key_accept_exactly_one(
    async_client: AsyncTestClient[FastPath],
) -> None:
    await _paid_pro_customer(async_client, "dup")
    bodies = [
        {
            "eventName": "api_calls",
            "customerReferenceId": "dup",
            "eventIdempotencyKey": "same",
            "usageUnits": 3,
        }
    ] * 50
    statuses = await _gather(async_client, bodies)
    assert sorted(statuses) == [201] + [409] * 49
    check = (await async_client.get(f"{C}/entitlements/dup/api_calls")).json()["data"]
    assert check["usage"]["used"] == 3


async def test_evt12_concurrent_first_events_auto_create_exactly_one_customer(
    async_client: AsyncTestClient[FastPath],
) -> None:
    bodies = [
        {"eventName": "ping", "customerReferenceId": "newcomer", "eventIdempotencyKey": f"n{i}"}
        for i in range(40)
    ]
    statuses = await _gather(async_client, bodies)
    assert statuses.count(201) == 40
    statistics = (await async_client.get("/api/v1/admin/statistics")).json()["data"]
    assert statistics["shards"][0]["customers"] == 1


async def test_crd22_concurrent_debits_never_overdraw_or_double_debit(
    async_client: AsyncTestClient[FastPath],
) -> None:
    await _paid_pro_customer(async_client, "llm")
    bodies = [
        {
            "eventName": "chat",
            "featureKey": "ai_chat",
            "customerReferenceId": "llm",
            "eventIdempotencyKey": f"c{i}",
            "usageUnits": 12_500,
        }
        for i in range(100)
    ]
    statuses = await _gather(async_client, bodies)
    assert statuses.count(201) == 80 and statuses.count(200) == 20  # 1,000,000 / 12,500 = 80
    pools = (await async_client.get(f"{C}/credits/llm/pools")).json()["data"]
    assert pools[0]["balance"] == 0 and pools[0]["totalConsumed"] == 1_000_000
