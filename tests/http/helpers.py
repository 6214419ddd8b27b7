"""Small helpers for HTTP tests: plan ids by key, customers, subscriptions."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from litestar.testing import TestClient

from allotment.domain.state import CustomerState
from allotment.runtime.local_shard import LocalShard
from allotment.runtime.placement import placement_tag, shard_of
from allotment.runtime.ports import CustomerLookup
from allotment.runtime.sharded_system import ShardedSystem
from allotment.runtime.system import ActorSystem
from tests import ray_suite

C = "/api/v1/client"
A = "/api/v1/admin"

Client = TestClient[Any]  # the app, or (in fast-path tests) its Litestar app alone


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


# -- additions for the contract suite -------------------------------------------------------


def ok(response: Any, status: int = 200) -> Any:
    """The `data` of a successful response with `status` (None when there is none)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is True, body
    return body.get("data")


def error(response: Any, status: int) -> str:
    """The error message of a failed response with `status`."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False, body
    message: str = body["error"]["message"]
    return message


def plan_doc(key: str, **fields: Any) -> dict[str, Any]:
    """A catalog plan document; free, monthly and in arrears unless overridden."""
    return {
        "key": key, "name": key.replace("_", " ").title(), "priceAmount": 0, "currency": "USD",
        "intervalMonths": 1, "billingTiming": "IN_ARREARS", **fields,
    }  # fmt: skip


def put_catalog(client: Client, *plans: dict[str, Any], **sections: Any) -> Any:
    """Upsert plans (and optionally features/creditModels) through the admin catalog API."""
    response = client.put(f"{A}/catalog", json={"plans": list(plans), **sections})
    return ok(response)


def advance(client: Client, **body: Any) -> Any:
    return ok(client.post(f"{A}/clock/advance", json=body))


def evaluate(client: Client, ref: str, feature: str, **body: Any) -> dict[str, Any]:
    response = client.post(
        f"{C}/entitlements", json={"customerReferenceId": ref, "featureKey": feature, **body}
    )
    data: dict[str, Any] = ok(response)
    return data


def get_customer(client: Client, ref: str) -> dict[str, Any]:
    data: dict[str, Any] = ok(client.get(f"{C}/customers/{ref}"))
    return data


def invoices(client: Client, ref: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = ok(client.get(f"{C}/billing/invoices/{ref}"))
    return data


def pools(client: Client, ref: str, expand: str | None = None) -> list[dict[str, Any]]:
    query = f"?expand={expand}" if expand else ""
    data: list[dict[str, Any]] = ok(client.get(f"{C}/credits/{ref}/pools{query}"))
    return data


def pool(client: Client, ref: str, denomination: str = "TOKENS", expand: str | None = None
         ) -> dict[str, Any]:  # fmt: skip
    return next(p for p in pools(client, ref, expand) if p["denomination"] == denomination)


def grant(client: Client, ref: str, amount: float, **extra: Any) -> Any:
    body = {"customerReferenceId": ref, "denomination": "TOKENS", "amount": amount,
            "source": "PURCHASE", **extra}  # fmt: skip
    return client.post(f"{A}/credits/grants", json=body)


def mark_paid(client: Client, invoice_id: str) -> Any:
    return client.post(f"{C}/billing/invoices/{invoice_id}/mark-paid")


def assert_invariant(p: dict[str, Any]) -> None:
    """CRD-3: balance = granted - consumed - expired - reversed, compared numerically."""

    def d(name: str) -> Decimal:
        return Decimal(str(p[name]))

    assert d("balance") == d("totalGranted") - d("totalConsumed") - d("totalExpired") - d(
        "totalReversed"
    ), p
    assert d("balance") >= 0, p


def shard_holding(system: ActorSystem, ref: str, environment: str = "test") -> LocalShard:
    """The in-process shard holding customer `ref`: the system's own, or with several shards
    the member its reference id places it on (docs/scale-out.md SCL-2). A Ray front door
    holds none: its scenarios read through `customer_state`, or are listed in RAY_GAPS."""
    if isinstance(system, ShardedSystem):
        tag = placement_tag(environment, ref)
        return system.members[shard_of(tag, len(system.members))].shard(environment)
    return system.shard(environment)


def customer_state(system: ActorSystem, ref: str, environment: str = "test") -> CustomerState:
    """Customer `ref`'s whole state: read in place from the shard holding it, or over Ray as
    the `Shard` protocol's `read` on its host (SCL-92)."""
    if ray_suite.on_ray(system):
        state = ray_suite.customer_state(system, CustomerLookup(external_id=ref), environment)
    else:
        actor = shard_holding(system, ref, environment).find(CustomerLookup(external_id=ref))
        state = None if actor is None else actor.state
    assert state is not None, ref
    return state
