"""Helpers shared by the billing-lifecycle scenarios (tests/http/test_lifecycle*.py)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from allotment.runtime.system import ActorSystem
from tests.http.helpers import (
    C,
    Client,
    assert_invariant,
    customer_state,
    error,
    event,
    get_customer,
    invoices,
    ok,
    plan_id,
    pool,
)

SUBS = f"{C}/subscriptions"
PAST_DUE = "Subscription is past due."
AWAITING = "Subscription is awaiting payment."
NO_SUBSCRIPTION = "No active subscription."
NOT_IN_PLAN = "Feature not included in plan."
ALREADY_CANCELLED = "Subscription is already cancelled."
NOT_PAYABLE = "Invoice is not payable in its current state."


def money(value: Any) -> Decimal:
    """INV-44: amounts compare numerically."""
    return Decimal(str(value))


def meta(invoice: dict[str, Any]) -> tuple[str, str, str]:
    """(invoiceType, periodStart, periodEnd) of an invoice (INV-4)."""
    m = invoice["metadata"]
    return m["invoiceType"], m["periodStart"], m["periodEnd"]


def lines(system: ActorSystem, ref: str, invoice_id: str) -> list[tuple[str, Decimal]]:
    """The line items of an invoice as (description, chargeAmount). The Client API has no
    invoice-detail endpoint (INV-28 omits `items`), so this reads the sandbox shard's state;
    call it after an HTTP read of the customer so every due transition has been applied."""
    invoice = customer_state(system, ref).invoices[uuid.UUID(invoice_id)]
    assert invoice.amount == sum((i.charge_amount for i in invoice.items), Decimal(0))  # INV-36
    return [(item.description, item.charge_amount) for item in invoice.items]


def use(client: Client, ref: str, key: str, feature: str, units: float, **extra: Any) -> None:
    """Record `units` of `feature` for `ref` (EVT-20: featureKey attributes the event)."""
    response = event(client, ref, key, eventName=feature, featureKey=feature, usageUnits=units,
                     **extra)  # fmt: skip
    assert response.status_code == 201, response.text


def only_sub(client: Client, ref: str) -> dict[str, Any]:
    """The customer's one live subscription (getCustomer)."""
    (sub,) = get_customer(client, ref)["subscriptions"]
    assert isinstance(sub, dict)
    return sub


def allowed(client: Client, ref: str, feature: str) -> bool:
    response = client.get(f"{C}/entitlements/{ref}/{feature}")
    data = ok(response)
    assert isinstance(data["isAllowed"], bool)
    return bool(data["isAllowed"])


def denial(client: Client, ref: str, feature: str) -> str:
    data = ok(client.get(f"{C}/entitlements/{ref}/{feature}"))
    assert data["isAllowed"] is False, data
    reason: str = data["meta"]["reason"]["description"]
    return reason


def cancel(client: Client, sub_id: str, mode: str | None = None) -> Any:
    query = f"?cancelMode={mode}" if mode is not None else ""
    return client.post(f"{SUBS}/cancellation/{sub_id}{query}")


def revert(client: Client, sub_id: str) -> Any:
    return client.delete(f"{SUBS}/cancellation/{sub_id}/scheduled")


def change(client: Client, sub_id: str, plan_key: str, change_type: str) -> Any:
    body = {"changeToPlanId": plan_id(client, plan_key), "changeType": change_type}
    return client.post(f"{SUBS}/{sub_id}/plan-change", json=body)


def unschedule(client: Client, sub_id: str) -> Any:
    return client.delete(f"{SUBS}/{sub_id}/plan-change/scheduled")


def done(response: Any) -> None:
    """`200 {"success": true}` (ApiResponseVoid)."""
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True}


def refused(response: Any, status: int, message: str | None = None) -> str:
    text = error(response, status)
    if message is not None:
        assert text == message, text
    return text


def snapshot(client: Client, ref: str) -> tuple[Any, ...]:
    """Everything a refused call must leave unchanged: getCustomer, invoices, pools."""
    pools = ok(client.get(f"{C}/credits/{ref}/pools?expand=grants,transactions"))
    return get_customer(client, ref), invoices(client, ref), pools


def tokens(client: Client, ref: str, denomination: str = "TOKENS") -> dict[str, Any]:
    """The pool, after checking CRD-3 on it."""
    p = pool(client, ref, denomination)
    assert_invariant(p)
    return p


def totals(p: dict[str, Any]) -> tuple[object, ...]:
    """(balance, totalGranted, totalConsumed, totalExpired, totalReversed)."""
    names = ("balance", "totalGranted", "totalConsumed", "totalExpired", "totalReversed")
    return tuple(money(p[name]) for name in names)
