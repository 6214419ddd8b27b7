"""Every family of issue 15's events, end to end through the Tanso API and the real renderer
(docs/webhooks.md, "Event types"): the app as `serve` wires it, a receiver on 127.0.0.1 that
verifies each delivery with standardwebhooks, and the manual clock for renewals, expiries and
grace periods. What arrives is checked for its types, its payloads' key fields and, per
customer, the commit order (WHK-D22), the same as the pull feed's."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from litestar.testing import TestClient

from allotment.http.fast_path import FastPath
from tests.http.helpers import (
    A,
    C,
    advance,
    create_customer,
    event,
    grant,
    mark_paid,
    ok,
    plan_doc,
    plan_id,
    put_catalog,
    subscribe,
)
from tests.waiting import wait_until
from tests.webhooks.receiver import Delivery, Receiver

W = f"{A}/webhooks"
Summary = tuple[Any, ...]


def _credit_plan(key: str, price: int) -> dict[str, Any]:
    """Prepaid monthly; ai_chat burns the demo catalog's llm_tokens, 100 a period, so the
    default low-balance threshold is 20 (WHK-E10)."""
    chat = {"featureKey": "ai_chat", "pricingType": "usage_based", "pricePerUnit": 0,
            "creditModelKey": "llm_tokens"}  # fmt: skip
    allocation = {"creditModelKey": "llm_tokens", "creditAmount": 100}
    return plan_doc(key, priceAmount=price, billingTiming="IN_ADVANCE", features=[chat],
                    creditAllocations=[allocation])  # fmt: skip


_SUBSCRIPTION_EXTRA: dict[str, Any] = {  # what each subscription event adds to the picture
    "subscription.plan_changed": lambda data: data["fromPlanKey"],
    "subscription.renewed": lambda data: (
        data["previousPeriodStart"],
        data["subscription"]["currentPeriodStart"],
    ),
    "subscription.cancellation_scheduled": lambda data: data["subscription"]["cancelMode"],
    "subscription.ended": lambda data: data["subscription"]["endedAt"],
}


def _summary(body: dict[str, Any]) -> Summary:
    """The key fields of one delivery's payload, by family."""
    kind, data = body["type"], body["data"]
    family = kind.split(".")[0]
    if family == "invoice":
        invoice = data["invoice"]
        return (kind, invoice["metadata"]["invoiceType"], invoice["status"], invoice["amount"])
    if family == "subscription":
        sub = data["subscription"]
        extra = _SUBSCRIPTION_EXTRA.get(kind, lambda _data: None)(data)
        return (kind, sub["planKey"], sub["status"], sub["isActive"], extra)
    if kind == "credits.grant.expired":
        return (kind, data["denomination"], data["expiredAmount"], data["balance"])
    assert family == "credits", kind
    return (kind, data["denomination"], data["balance"], data["lowBalanceThreshold"],
            data.get("level"))  # fmt: skip


def _of(deliveries: Sequence[Delivery], ref: str) -> list[Delivery]:
    return [d for d in deliveries if d.body["data"].get("referenceCustomerId") == ref]


def _arrived(receiver: Receiver, last: dict[str, Summary]) -> dict[str, list[Delivery]]:
    """Each customer's deliveries, once each customer's expected last one arrived (then the
    whole list is compared, so a missing or an extra one shows in the difference)."""

    def enough() -> dict[str, list[Delivery]] | None:
        accepted = receiver.accepted()
        mine = {ref: _of(accepted, ref) for ref in last}
        done = all(last[ref] in [_summary(d.body) for d in mine[ref]] for ref in last)
        return mine if done else None

    return wait_until(enough, f"the last deliveries {last}")


ACME = [  # a prepaid subscription's life, in commit order
    ("invoice.created", "INITIAL", "DUE", "10.00"),
    ("invoice.paid", "INITIAL", "PAID", "10.00"),
    ("subscription.activated", "pro", "ACTIVE", True, None),
    ("credits.balance.low", "TOKENS", "15.0000", "20.0", None),
    ("credits.balance.depleted", "TOKENS", "0.0000", "20.0", None),
    ("credits.balance.recovered", "TOKENS", "50.0000", "20.0", "ok"),
    ("credits.grant.expired", "TOKENS", "50", "0.0000"),
    ("credits.balance.low", "TOKENS", "0.0000", "20.0", None),  # WHK-E12: ok to zero at once
    ("credits.balance.depleted", "TOKENS", "0.0000", "20.0", None),
    ("invoice.created", "ADJUSTMENT", "ADJUSTMENT_OPEN", "18.43"),
    ("subscription.plan_changed", "max", "ACTIVE", True, "pro"),
    ("invoice.paid", "ADJUSTMENT", "ADJUSTMENT_PAID", "18.43"),
]
BEE = [  # a free subscription cancelled at its period's end
    ("invoice.created", "INITIAL", "PAID", "0"),
    ("invoice.paid", "INITIAL", "PAID", "0"),
    ("subscription.activated", "free", "ACTIVE", True, None),
    ("subscription.cancellation_scheduled", "free", "ACTIVE", True, "END_OF_PERIOD"),
    ("subscription.ended", "free", "ENDED", False, "2025-02-15T00:00:00Z"),
]


def test_every_event_family_arrives_verified_in_commit_order_per_customer(
    hooked: TestClient[FastPath], receiver: Receiver
) -> None:
    """WHK-E10..WHK-E15, WHK-E20..WHK-E24, WHK-E30..WHK-E35, WHK-D10, WHK-D22: acme pays a
    prepaid plan, burns its credits to low then zero, is topped up (recovered), lets the top-up
    expire, upgrades and pays the adjustment, renews, goes past due and is cancelled at once;
    bee subscribes free and cancels at the period end. Each step's events arrive at the
    receiver, verified, with their key fields, in each customer's commit order."""
    created = ok(hooked.post(W, json={"url": receiver.url}), 201)
    receiver.secrets = [created["secret"]]
    put_catalog(hooked, _credit_plan("pro", 10), _credit_plan("max", 30))
    create_customer(hooked, "acme")
    acme = subscribe(hooked, "acme", "pro")
    sub_id = acme["subscription"]["id"]
    ok(mark_paid(hooked, acme["invoice"]["id"]))
    ok(event(hooked, "acme", "chat1", eventName="ai_chat", usageUnits=85), 201)  # 15 left
    ok(event(hooked, "acme", "chat2", eventName="ai_chat", usageUnits=15), 201)  # none
    top_up = ok(grant(hooked, "acme", 50, source="PROMOTION",
                      expiresAt="2025-01-17T10:30:00Z"), 201)  # fmt: skip
    create_customer(hooked, "bee")
    bee = subscribe(hooked, "bee", "free")["subscription"]
    ok(hooked.post(f"{C}/subscriptions/cancellation/{bee['id']}?cancelMode=END_OF_PERIOD"))
    advance(hooked, seconds=2 * 86400 + 1)  # the top-up expires
    upgrade = {"changeToPlanId": plan_id(hooked, "max"), "changeType": "UPGRADE"}
    ok(hooked.post(f"{C}/subscriptions/{sub_id}/plan-change", json=upgrade))
    arrived = _arrived(receiver, {"acme": ACME[-2], "bee": BEE[-2]})
    [adjustment] = [d for d in arrived["acme"] if d.body["type"] == "invoice.created"][1:]
    ok(mark_paid(hooked, adjustment.body["data"]["invoice"]["id"]))
    advance(hooked, to="2025-02-15T00:00:00Z")  # acme renews; bee's subscription ends
    advance(hooked, seconds=4 * 86400)  # the renewal's invoice goes past due
    ok(hooked.post(f"{C}/subscriptions/cancellation/{sub_id}?cancelMode=IMMEDIATE"))
    acme_rest = [  # a prepaid renewal's credits wait for its payment: no `recovered` here
        ("invoice.created", "RENEWAL", "DUE", "30.00"),
        ("subscription.renewed", "max", "ACTIVE", True,
         ("2025-01-15T00:00:00Z", "2025-02-15T00:00:00Z")),
        ("invoice.past_due", "RENEWAL", "PAST_DUE", "30.00"),
        ("subscription.suspended", "max", "SUSPENDED", False, None),
        ("invoice.voided", "RENEWAL", "VOID", "30.00"),
        ("subscription.ended", "max", "ENDED", False, "2025-02-19T00:00:00Z"),
    ]  # fmt: skip
    arrived = _arrived(receiver, {"acme": acme_rest[-1], "bee": BEE[-1]})
    assert [_summary(d.body) for d in arrived["acme"]] == ACME + acme_rest
    assert [_summary(d.body) for d in arrived["bee"]] == BEE
    deliveries = arrived["acme"] + arrived["bee"]
    assert all(d.verified_by == (created["secret"],) for d in deliveries)
    assert len({d.id for d in deliveries}) == len(deliveries)  # each once
    expired = next(d for d in arrived["acme"] if d.body["type"] == "credits.grant.expired")
    [promotion] = [g["id"] for g in top_up["grants"] if g["source"] == "PROMOTION"]
    assert (expired.body["data"]["grantId"], expired.body["data"]["poolId"]) == (
        promotion, top_up["id"],
    )  # fmt: skip
    assert expired.body["timestamp"] == "2025-01-17T10:30:00Z"  # when due, not when swept
    invoice_ids = [d.body["data"]["invoice"]["id"] for d in arrived["acme"][:2]]
    assert invoice_ids == [acme["invoice"]["id"]] * 2
    subs = {d.body["data"]["subscription"]["id"] for d in arrived["acme"]
            if d.body["type"].startswith("subscription.")}  # fmt: skip
    assert subs == {sub_id}
    _the_feed_has_the_same_order(hooked, deliveries)


def _the_feed_has_the_same_order(
    client: TestClient[FastPath], deliveries: Sequence[Delivery]
) -> None:
    """WHK-D40: the pull feed is the commit order; each customer's deliveries follow it."""
    feed = ok(client.get(f"{A}/events", params={"limit": 1000}))["events"]
    for ref in ("acme", "bee"):
        fed = [e["id"] for e in feed if e["data"].get("referenceCustomerId") == ref]
        assert fed == [d.id for d in _of(deliveries, ref)], ref
