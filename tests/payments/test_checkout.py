"""Stripe checkout and webhooks (STR-1..STR-7, INV-20/21), driven through the real SDK against
the local Stripe double."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from litestar.testing import TestClient

from allotment.http.fast_path import FastPath
from tests.http.helpers import C, check, create_customer, subscribe
from tests.payments.conftest import WEBHOOK_SECRET
from tests.stripe_double import StripeDouble, sign

Client = TestClient[FastPath]


def _due_invoice(client: Client, ref: str, plan: str = "pro_monthly") -> dict[str, Any]:
    create_customer(client, ref)
    invoice: dict[str, Any] = subscribe(client, ref, plan)["invoice"]
    assert invoice["status"] == "DUE"
    return invoice


def _checkout(client: Client, invoice_id: str) -> Any:
    return client.post(f"{C}/billing/invoices/{invoice_id}/stripe/checkout")


def _pool(client: Client, ref: str) -> dict[str, Any]:
    pools: list[dict[str, Any]] = client.get(f"{C}/credits/{ref}/pools").json()["data"]
    return pools[0] if pools else {}


def test_str5_str6_full_flow_due_invoice_to_paid_and_access(
    stripe_client: Client, stripe_double: StripeDouble
) -> None:
    invoice = _due_invoice(stripe_client, "buyer")
    assert check(stripe_client, "buyer", "api_calls")["isAllowed"] is False
    response = _checkout(stripe_client, invoice["id"])
    assert response.status_code == 200
    url = response.json()["data"]["url"]
    session_id = url.rsplit("/", 1)[-1]
    session = stripe_double.sessions[session_id]
    assert (
        session["amount_total"] == 4900 and session["currency"] == "usd"
    )  # exactly the invoice, in cents
    assert session["metadata"]["invoice_id"] == invoice["id"]
    assert [i["price_data"]["product_data"]["name"] for i in session["line_items_received"]] == [
        "Plan base price: Pro"
    ]
    customer = stripe_double.customers[session["customer"]]
    assert customer["email"] == "jane@example.com"
    assert stripe_double.complete(session_id) == 200  # a correctly signed webhook, delivered
    invoices = stripe_client.get(f"{C}/billing/invoices/buyer").json()["data"]
    assert invoices[0]["status"] == "PAID"
    assert check(stripe_client, "buyer", "api_calls")["isAllowed"] is True
    assert _pool(stripe_client, "buyer")["totalGranted"] == 1_000_000  # INV-20: credits granted
    keys = [key for _, path, _, key in stripe_double.requests]
    assert all(
        key and key.startswith("allotment-") for key in keys
    )  # idempotency keys from our ids


def test_str6_duplicate_webhook_is_a_no_op(
    stripe_client: Client, stripe_double: StripeDouble
) -> None:
    invoice = _due_invoice(stripe_client, "dup")
    session_id = _checkout(stripe_client, invoice["id"]).json()["data"]["url"].rsplit("/", 1)[-1]
    stripe_double.complete(session_id)
    assert stripe_double.resend(stripe_double.last_event_id) == 200
    assert stripe_double.resend(stripe_double.last_event_id) == 200
    assert _pool(stripe_client, "dup")["totalGranted"] == 1_000_000  # INV-21: granted once


def test_str6_bad_signature_is_400_and_changes_nothing(
    stripe_client: Client, stripe_double: StripeDouble
) -> None:
    invoice = _due_invoice(stripe_client, "forger")
    session_id = _checkout(stripe_client, invoice["id"]).json()["data"]["url"].rsplit("/", 1)[-1]
    stripe_double.deliver = lambda payload, headers: stripe_client.post(
        "/api/v1/webhooks/stripe", content=payload,
        headers={**headers, "Stripe-Signature": sign(payload, "whsec_not_the_secret")},
    ).status_code  # fmt: skip
    assert stripe_double.complete(session_id) == 400
    unsigned = stripe_client.post(
        "/api/v1/webhooks/stripe", content=b"{}", headers={"content-type": "application/json"}
    )
    assert unsigned.status_code == 400
    assert unsigned.json()["error"]["message"].startswith("Invalid Stripe signature")
    assert stripe_client.get(f"{C}/billing/invoices/forger").json()["data"][0]["status"] == "DUE"


def test_str5_open_session_is_reused_and_an_expired_one_replaced(
    stripe_client: Client, stripe_double: StripeDouble
) -> None:
    invoice = _due_invoice(stripe_client, "slow")
    first = _checkout(stripe_client, invoice["id"]).json()["data"]["url"]
    assert _checkout(stripe_client, invoice["id"]).json()["data"]["url"] == first
    assert len(stripe_double.sessions) == 1 and len(stripe_double.customers) == 1
    assert stripe_double.expire(first.rsplit("/", 1)[-1]) == 200  # checkout.session.expired
    second = _checkout(stripe_client, invoice["id"]).json()["data"]["url"]
    assert second != first and len(stripe_double.sessions) == 2
    assert len(stripe_double.customers) == 1  # the linked Stripe customer is reused


def test_str3_already_paid_invoice_returns_an_empty_url(
    stripe_client: Client, stripe_double: StripeDouble
) -> None:
    invoice = _due_invoice(stripe_client, "early")
    stripe_client.post(f"{C}/billing/invoices/{invoice['id']}/mark-paid")
    response = _checkout(stripe_client, invoice["id"])
    assert response.status_code == 200 and response.json() == {"success": True, "data": {"url": ""}}
    assert stripe_double.requests == []  # no session created


def test_str2_str4_unknown_and_unpayable_invoices(stripe_client: Client) -> None:
    assert _checkout(stripe_client, "not-a-uuid").status_code == 400
    assert (
        _checkout(stripe_client, "6f1c1f55-2b7c-4d0e-9b1a-0a11070e0e11").json()["error"]["message"]
        == "Invoice not found."
    )
    create_customer(stripe_client, "arrears")
    pending = subscribe(stripe_client, "arrears", "usage_monthly")["invoice"]
    refused = _checkout(stripe_client, pending["id"])
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == "Invoice is not payable in its current state."


def test_stripe_error_is_a_502_with_its_message_and_no_state_change(
    stripe_client: Client, stripe_double: StripeDouble
) -> None:
    invoice = _due_invoice(stripe_client, "outage")
    before = stripe_client.get(f"{C}/customers/outage").json()
    stripe_double.fail_next(500, "Stripe is having a bad day")
    response = _checkout(stripe_client, invoice["id"])
    assert response.status_code == 502
    assert "Stripe is having a bad day" in response.json()["error"]["message"]
    assert stripe_client.get(f"{C}/customers/outage").json() == before
    stripe_double.fail_next(503, "Service unavailable")  # on session creation, after the customer
    stripe_double._faults.insert(0, (0, "", "", 0.0))  # let the customer creation through
    assert _checkout(stripe_client, invoice["id"]).status_code == 502
    assert stripe_client.get(f"{C}/customers/outage").json() == before  # not even the link
    assert _checkout(stripe_client, invoice["id"]).status_code == 200  # the retry succeeds
    assert len(stripe_double.customers) == 1  # retries reused the idempotency key


@pytest.mark.parametrize("stripe_timeout_s", [0.5])
def test_stripe_timeout_is_a_502(stripe_client: Client, stripe_double: StripeDouble) -> None:
    invoice = _due_invoice(stripe_client, "timeout")
    stripe_double.hang_next()  # no answer at all: only the timeout can end the call
    response = _checkout(stripe_client, invoice["id"])
    assert response.status_code == 502
    assert response.json()["error"]["message"].startswith("Stripe error:")


def test_str1_webhook_without_stripe_is_refused(client: Client) -> None:
    response = client.post(
        "/api/v1/webhooks/stripe", content=b"{}", headers={"Stripe-Signature": "t=1,v1=x"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Stripe is not enabled at the account."


def test_unknown_event_types_are_acknowledged(stripe_client: Client) -> None:
    payload = b'{"id": "evt_1", "object": "event", "type": "customer.created", "livemode": false, "data": {"object": {"id": "cus_1", "object": "customer"}}}'
    response = stripe_client.post(
        "/api/v1/webhooks/stripe",
        content=payload,
        headers={"Stripe-Signature": sign(payload, WEBHOOK_SECRET)},
    )
    assert response.status_code == 200 and response.json()["data"]["outcome"] == "ignored"


def test_str5_concurrent_checkouts_for_one_invoice_create_one_session(
    stripe_client: Client, stripe_double: StripeDouble
) -> None:
    """Idempotency keys derive from our ids: simultaneous requests share one session."""
    invoice = _due_invoice(stripe_client, "twice")
    with ThreadPoolExecutor(4) as pool:
        urls = list(
            pool.map(
                lambda _: _checkout(stripe_client, invoice["id"]).json()["data"]["url"], range(4)
            )
        )
    assert len(set(urls)) == 1 and urls[0]
    assert len(stripe_double.sessions) == 1 and len(stripe_double.customers) == 1
