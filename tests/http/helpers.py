"""Small helpers for HTTP tests: plan ids by key, customers, subscriptions."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import TestClient

C = "/api/v1/client"
A = "/api/v1/admin"

Client = TestClient[Litestar]


def plan_id(client: Client, key: str) -> str:
    plans = client.get(f"{C}/plans").json()["data"]
    return str(next(p["plan"]["id"] for p in plans if p["plan"]["key"] == key))


def create_customer(client: Client, ref: str) -> None:
    response = client.post(
        f"{C}/customers",
        json={
            "externalClientCustomerId": ref,
            "firstName": "Jane",
            "lastName": "Smith",
            "email": "jane@example.com",
        },
    )
    assert response.status_code == 201, response.text


def subscribe(client: Client, ref: str, plan_key: str, **extra: Any) -> dict[str, Any]:
    response = client.post(
        f"{C}/subscriptions",
        json={"customerReferenceId": ref, "planId": plan_id(client, plan_key), **extra},
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def paid_subscriber(client: Client, ref: str, plan_key: str = "pro_monthly") -> dict[str, Any]:
    """A customer with a paid, ACTIVE subscription to `plan_key`."""
    create_customer(client, ref)
    data = subscribe(client, ref, plan_key)
    if data["invoice"]["status"] == "DUE":
        paid = client.post(f"{C}/billing/invoices/{data['invoice']['id']}/mark-paid")
        assert paid.status_code == 200, paid.text
    return data


def event(client: Client, ref: str, key: str, **fields: Any) -> Any:
    body = {"eventName": fields.pop("eventName", "api_calls"), "customerReferenceId": ref,
            "eventIdempotencyKey": key, **fields}  # fmt: skip
    return client.post(f"{C}/events", json=body)


def check(client: Client, ref: str, feature: str) -> dict[str, Any]:
    response = client.get(f"{C}/entitlements/{ref}/{feature}")
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data
