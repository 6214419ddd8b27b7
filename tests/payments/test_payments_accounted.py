"""Every Stripe payment accounted for (issue 12 item 6): delayed payment methods, payments that
name no invoice of the environment, and payments for an invoice that can no longer take them.
Driven through the real `stripe` SDK (checkout, signature verification) against the double.
MNY-C2..MNY-C4 in docs/billing-rules.md; STR-6, INV-20, INV-21."""

from __future__ import annotations

import uuid
from typing import Any

from litestar.testing import TestClient

from allotment.http.fast_path import FastPath
from tests.conftest import CLIENT_KEY, LIVE_KEY
from tests.http.helpers import A, C, check, create_customer, subscribe
from tests.stripe_double import StripeDouble

Client = TestClient[FastPath]


def _checkout_session(client: Client, ref: str) -> tuple[dict[str, Any], str]:
    create_customer(client, ref)
    invoice: dict[str, Any] = subscribe(client, ref, "pro_monthly")["invoice"]
    url = client.post(f"{C}/billing/invoices/{invoice['id']}/stripe/checkout").json()["data"]
    return invoice, url["url"].rsplit("/", 1)[-1]


def _status(client: Client, ref: str) -> str:
    status: str = client.get(f"{C}/billing/invoices/{ref}").json()["data"][0]["status"]
    return status


def _granted(client: Client, ref: str) -> Any:
    pools = client.get(f"{C}/credits/{ref}/pools").json()["data"]
    return pools[0]["totalGranted"] if pools else 0


def _unapplied(client: Client, key: str | None = None) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {key}"} if key else None
    response = client.get(f"{A}/unapplied-payments", headers=headers)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def _last_outcome(client: Client, double: StripeDouble) -> str:
    """Delivers the last event again and returns the outcome the webhook answered."""
    payload = double.events[double.last_event_id]
    from tests.stripe_double import sign  # noqa: PLC0415 (test helper, one use)

    response = client.post(
        "/api/v1/webhooks/stripe", content=payload,
        headers={"Stripe-Signature": sign(payload, double.webhook_secret)},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    outcome: str = response.json()["data"]["outcome"]
    return outcome


def test_mny_c2_delayed_payment_applies_when_it_succeeds(
    stripe_client: Client, stripe_double: StripeDouble
) -> None:
    """MNY-C2, STR-6: `completed` with payment_status unpaid changes nothing; the later
    `async_payment_succeeded` pays the invoice exactly once (INV-20, INV-21)."""
    _, session = _checkout_session(stripe_client, "sepa")
    assert stripe_double.complete(session, payment_status="unpaid") == 200
    assert _status(stripe_client, "sepa") == "DUE"
    assert check(stripe_client, "sepa", "api_calls")["isAllowed"] is False
    assert stripe_double.settle(session, succeeded=True) == 200
    assert _status(stripe_client, "sepa") == "PAID"
    assert check(stripe_client, "sepa", "api_calls")["isAllowed"] is True
    assert _last_outcome(stripe_client, stripe_double) == "already recorded: APPLIED"
    assert _granted(stripe_client, "sepa") == 1_000_000  # granted once
    assert _unapplied(stripe_client) == []


def test_mny_c4_failed_delayed_payment_leaves_the_invoice_unpaid_and_checkout_reopens(
    stripe_client: Client, stripe_double: StripeDouble
) -> None:
    """MNY-C4: `async_payment_failed` is recorded; the invoice stays DUE, the subscription
    stays PENDING_PAYMENT (SUB-3), and the next checkout opens a fresh session, which pays."""
    invoice, session = _checkout_session(stripe_client, "bounce")
    stripe_double.complete(session, payment_status="unpaid")
    assert stripe_double.settle(session, succeeded=False) == 200
    assert _last_outcome(stripe_client, stripe_double) == "already recorded: FAILED"
    assert _status(stripe_client, "bounce") == "DUE"
    decision = check(stripe_client, "bounce", "api_calls")
    assert decision["isAllowed"] is False
    assert decision["meta"]["reason"]["description"] == "Subscription is awaiting payment."
    url = stripe_client.post(f"{C}/billing/invoices/{invoice['id']}/stripe/checkout")
    second = url.json()["data"]["url"].rsplit("/", 1)[-1]
    assert second != session  # the failed session is complete: a new one, new idempotency key
    assert stripe_double.complete(second) == 200
    assert _status(stripe_client, "bounce") == "PAID"
    assert _unapplied(stripe_client) == []  # a failure took no money


def test_mny_c3_payment_for_a_voided_invoice_is_kept_unapplied_with_its_amount(
    stripe_client: Client, stripe_double: StripeDouble
) -> None:
    """MNY-C3 (issue 12 item 6): the customer pays after an immediate cancellation voided the
    invoice. 200 (Stripe stops retrying), invoice stays VOID, the payment is listed with its
    amount and currency; a repeated delivery lists it once."""
    invoice, session = _checkout_session(stripe_client, "late")
    sub_id = stripe_client.get(f"{C}/billing/invoices/late").json()["data"][0]["subscription"]["id"]
    cancelled = stripe_client.post(
        f"{C}/subscriptions/cancellation/{sub_id}", json={"cancelMode": "IMMEDIATE"}
    )
    assert cancelled.status_code == 200, cancelled.text
    assert _status(stripe_client, "late") == "VOID"
    assert stripe_double.complete(session) == 200
    assert _last_outcome(stripe_client, stripe_double) == "already recorded: UNAPPLIED"
    assert _status(stripe_client, "late") == "VOID"
    (kept,) = _unapplied(stripe_client)
    assert kept["sessionId"] == session and kept["invoiceId"] == invoice["id"]
    assert (kept["amountMinor"], kept["amount"], kept["currency"]) == (4900, 49.0, "USD")
    assert kept["reason"] == f"Invoice {invoice['id']} is VOID; nothing is due on it."
    assert kept["customerId"] and kept["eventType"] == "checkout.session.completed"


def test_mny_c3_payment_for_an_invoice_already_marked_paid_is_unapplied(
    stripe_client: Client, stripe_double: StripeDouble
) -> None:
    """MNY-C3: paid twice (mark-paid, then the open Stripe session): the second payment is
    kept, not silently absorbed; the credits are granted once."""
    invoice, session = _checkout_session(stripe_client, "twice")
    assert stripe_client.post(f"{C}/billing/invoices/{invoice['id']}/mark-paid").status_code == 200
    assert stripe_double.complete(session) == 200
    (kept,) = _unapplied(stripe_client)
    assert kept["reason"] == f"Invoice {invoice['id']} is already paid."
    assert _granted(stripe_client, "twice") == 1_000_000


def test_mny_c3_malformed_metadata_is_kept_for_the_customer_it_names(
    stripe_client: Client, stripe_double: StripeDouble
) -> None:
    """MNY-C3 (issue 12 item 6): malformed invoice metadata was answered 200 and dropped; now
    the payment is kept in the state of the customer the session names (by our id, or by the
    linked Stripe customer), once per session."""
    _, session = _checkout_session(stripe_client, "named")
    ours = stripe_double.sessions[session]
    by_id = {
        "invoice_id": "INV-0042",
        "allotment_customer_id": ours["metadata"]["allotment_customer_id"],
    }
    assert stripe_double.pay_elsewhere(by_id, amount_total=1234) == 200
    _last_outcome(stripe_client, stripe_double)  # a repeated delivery
    assert stripe_double.pay_elsewhere({}, amount_total=55, customer=ours["customer"]) == 200
    first, second = _unapplied(stripe_client)
    customer_id = ours["metadata"]["allotment_customer_id"]
    assert (first["customerId"], first["amountMinor"]) == (customer_id, 1234)
    assert first["invoiceReference"] == "INV-0042"
    assert first["reason"] == "The session's invoice_id is malformed: 'INV-0042'."
    assert (second["customerId"], second["amountMinor"]) == (customer_id, 55)
    assert second["reason"] == "The session names no invoice (no invoice_id metadata)."
    assert _status(stripe_client, "named") == "DUE"  # nothing applied by guesswork


def test_mny_c3_payment_naming_nobody_is_kept_per_environment(
    stripe_client: Client, stripe_double: StripeDouble
) -> None:
    """MNY-C3: an unknown invoice and no known customer: kept at the environment's level, in
    the environment the event's livemode names, and visible only with that environment's
    key; the admin scope is required."""
    unknown = str(uuid.uuid4())
    assert stripe_double.pay_elsewhere({"invoice_id": unknown}, customer="cus_nobody") == 200
    assert stripe_double.pay_elsewhere({"invoice_id": unknown}, livemode=True) == 200
    (sandbox,) = _unapplied(stripe_client)
    assert "customerId" not in sandbox and sandbox["stripeCustomerId"] == "cus_nobody"
    assert sandbox["reason"] == f"No invoice {unknown} in this environment."
    (live,) = _unapplied(stripe_client, LIVE_KEY)
    assert live["sessionId"].startswith("cs_live_") and live["sessionId"] != sandbox["sessionId"]
    forbidden = stripe_client.get(
        f"{A}/unapplied-payments", headers={"Authorization": f"Bearer {CLIENT_KEY}"}
    )
    assert forbidden.status_code == 403
    assert forbidden.json()["success"] is False
