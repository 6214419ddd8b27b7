"""CN-47: a REFUND credit note on an invoice paid through Stripe checkout issues a Stripe refund
through the SDK (against the Stripe double), tracks `refund_status` from Stripe's answer and
the `charge.refunded` webhook, and refunds exactly once however often it is retried."""

from __future__ import annotations

from typing import Any

from litestar.testing import TestClient

from allotment.domain.credit_note_state import RefundStatus
from allotment.http.fast_path import FastPath
from allotment.payments.refunds import GatewayRefundIssuer
from allotment.runtime.refunds import issue_refunds
from tests.conftest import KEY
from tests.http.helpers import C, create_customer, subscribe
from tests.stripe_double import StripeDouble


def _paid_through_stripe(client: TestClient[FastPath], double: StripeDouble, ref: str) -> str:
    create_customer(client, ref)
    invoice: str = subscribe(client, ref, "pro_monthly")["invoice"]["id"]
    session = client.post(f"{C}/billing/invoices/{invoice}/stripe/checkout")
    assert session.status_code == 200, session.text
    assert double.complete(next(iter(double.sessions))) == 200
    return invoice


def _refund_note(client: TestClient[FastPath], invoice: str, amount: str) -> dict[str, Any]:
    headers = {"x-api-key": KEY}
    line = client.get(f"/v1/invoices/{invoice}", headers=headers).json()["line_items"][0]["id"]
    body = {"invoice_id": invoice, "reason": "UNSATISFACTORY",
            "line_items": [{"invoice_line_item_id": line, "amount": amount}]}  # fmt: skip
    response = client.post("/v1/creditnotes", json=body, headers=headers)
    assert response.status_code == 201, response.text
    note: dict[str, Any] = response.json()
    return note


def test_cn47_refund_through_stripe_then_charge_refunded_settles_it(
    stripe_client: TestClient[FastPath], stripe_double: StripeDouble
) -> None:
    invoice = _paid_through_stripe(stripe_client, stripe_double, "rf1")
    note = _refund_note(stripe_client, invoice, "10.00")
    assert note["credit_note_type"] == "REFUND"
    assert note["refund_status"] == "PROCESSING"  # Stripe answered `pending`
    [refund] = stripe_double.refunds.values()
    assert (refund["amount"], refund["metadata"]["credit_note_id"]) == (1000, note["id"])
    assert stripe_double.settle_refund(refund["id"]) == 200
    after = stripe_client.get(f"/v1/creditnotes/{note['id']}", headers={"x-api-key": KEY}).json()
    assert after["refund_status"] == "SUCCEEDED"
    assert stripe_double.resend(stripe_double.last_event_id) == 200  # a repeat changes nothing
    again = stripe_client.get(f"/v1/creditnotes/{note['id']}", headers={"x-api-key": KEY}).json()
    assert again == after


async def _desk(shard: Any, issuer: GatewayRefundIssuer) -> int:
    return await issue_refunds(shard, issuer, provider_paid_only=True)


def test_cn47_a_retry_after_a_crash_refunds_once(
    stripe_app: FastPath, stripe_client: TestClient[FastPath], stripe_double: StripeDouble
) -> None:
    """A note Stripe's failure left PROCESSING with no refund id is sent by the next desk run
    (as at the start); once Stripe answered with the refund's id, a run sends nothing more
    (CN-48): one refund, one POST."""
    invoice = _paid_through_stripe(stripe_client, stripe_double, "rf2")
    stripe_double.fail_next(500)  # Stripe fails: the note stays PROCESSING, nothing refunded
    note = _refund_note(stripe_client, invoice, "5.00")
    assert note["refund_status"] == "PROCESSING" and stripe_double.refunds == {}
    state: Any = stripe_app.litestar.state
    issuer = GatewayRefundIssuer(state["checkout"].gateway)
    shard = state["system"].route("test")
    portal = stripe_client.blocking_portal  # the app's event loop, where its shard runs
    assert portal.call(_desk, shard, issuer) == 1
    assert portal.call(_desk, shard, issuer) == 0  # still PROCESSING, but Stripe has it
    assert len(stripe_double.refunds) == 1
    posts = [r for r in stripe_double.requests if r[1] == "/v1/refunds"]
    assert [key for *_, key in posts] == [f"allotment-credit-note-{note['id']}"]
    shown = stripe_client.get(f"/v1/creditnotes/{note['id']}", headers={"x-api-key": KEY}).json()
    assert shown["refund_status"] == RefundStatus.PROCESSING.value


def test_cn48_a_refund_stripe_answered_is_not_asked_again_after_its_key_expired(
    stripe_app: FastPath, stripe_client: TestClient[FastPath], stripe_double: StripeDouble
) -> None:
    """A card refund stays `pending` for days; Stripe keeps an idempotency key for 24 hours.
    A desk run after that (the server's start) must not refund again: a refund Stripe
    answered with its id is followed by webhook, never asked for again."""
    invoice = _paid_through_stripe(stripe_client, stripe_double, "rf3")
    note = _refund_note(stripe_client, invoice, "5.00")
    assert note["refund_status"] == "PROCESSING" and len(stripe_double.refunds) == 1
    stripe_double.forget_keys()  # a day later
    state: Any = stripe_app.litestar.state
    issuer = GatewayRefundIssuer(state["checkout"].gateway)
    assert stripe_client.blocking_portal.call(_desk, state["system"].route("test"), issuer) == 0
    assert len(stripe_double.refunds) == 1
