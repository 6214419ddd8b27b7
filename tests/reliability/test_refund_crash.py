"""A REFUND credit note's Stripe refund exactly once across `kill -9` (CN-9, CN-47, CN-48).

A real server, Stripe on, its `stripe` SDK pointed at the Stripe double over HTTP. The customer
pays through Stripe checkout; a REFUND note is created (acknowledged, DRAFT) and finalized
through the official `flexprice` client; the double holds the refund request open and the
server is killed there: before the request reached Stripe, or after Stripe made the refund
but before its answer left. Restarted on the same data dir, Stripe holds one refund for the
note, the `charge.refunded` webhook settles it, and a resent webhook changes nothing.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from flexprice import models as m
from tests.flexprice.support import C, customer_with_invoice, flex_client, tanso
from tests.payments.conftest import STRIPE_KEY, WEBHOOK_SECRET
from tests.reliability.server import Server
from tests.stripe_double import StripeDouble

WAIT_S = 120  # a bound on reaching the kill point, never an expectation of speed
ENV = {"ALLOTMENT_STRIPE_SECRET_KEY": STRIPE_KEY, "ALLOTMENT_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET}


def _serve(data_dir: Path, double: StripeDouble) -> Server:
    server = Server(data_dir, "--stripe-api-base", double.url, env=ENV)
    double.webhook_url = f"{server.url}/api/v1/webhooks/stripe"
    return server


def _paid_through_checkout(server: Server, double: StripeDouble) -> str:
    """The INITIAL invoice of a new customer, paid by a completed Stripe checkout session."""
    http = tanso(server)
    invoice = customer_with_invoice(http, "refund-crash")
    session = http.post(f"{C}/billing/invoices/{invoice}/stripe/checkout")
    assert session.status_code == 200, session.text
    session_id = session.json()["data"]["url"].rsplit("/", 1)[-1]
    assert double.complete(session_id) == 200
    assert http.get(f"{C}/billing/invoices/refund-crash").json()["data"][0]["status"] == "PAID"
    return invoice


def _draft_refund_note(server: Server, invoice: str) -> str:
    fx = flex_client(server)
    items = fx.invoices.get_invoice(id=invoice).line_items
    assert items and items[0].id
    line = m.CreateCreditNoteLineItemRequest(invoice_line_item_id=items[0].id, amount="10.00")
    draft = fx.credit_notes.create_credit_note(
        invoice_id=invoice, reason="UNSATISFACTORY", line_items=[line], process_credit_note=False,
    )  # fmt: skip
    assert draft.credit_note_status == "DRAFT" and draft.credit_note_type == "REFUND"
    assert draft.id and draft.refund_status is None  # a draft owes nothing yet (CN-8)
    return draft.id


@pytest.mark.parametrize("reaches", [False, True], ids=["before-stripe", "after-stripe"])
def test_cn48_one_stripe_refund_per_note_across_kill_9(tmp_path: Path, reaches: bool) -> None:
    with StripeDouble(STRIPE_KEY, WEBHOOK_SECRET) as double:
        server = _serve(tmp_path, double)
        try:
            invoice = _paid_through_checkout(server, double)
            note_id = _draft_refund_note(server, invoice)
            held = double.hold_next("/v1/refunds", reaches=reaches)
            with ThreadPoolExecutor(1) as pool:
                finalizing = pool.submit(flex_client(server).credit_notes.process_credit_note,
                                         id=note_id)  # fmt: skip
                assert held.arrived.wait(WAIT_S), "the refund never reached the double"
                assert len(double.refunds) == int(reaches)  # made by Stripe, or not yet
                server.kill()
                with pytest.raises(httpx.HTTPError):  # the finalize was never answered
                    finalizing.result(WAIT_S)
            server = _serve(tmp_path, double)  # its start reissues the PROCESSING refund
            refund_key = f"allotment-credit-note-{note_id}"
            # Stripe made it before the crash: the restart's call got it back from the key
            assert double.replays == [("/v1/refunds", refund_key)] * int(reaches)
            _settled_once(server, double, invoice, note_id)
        finally:
            server.stop()


def _settled_once(server: Server, double: StripeDouble, invoice: str, note_id: str) -> None:
    fx = flex_client(server)
    [refund] = double.refunds.values()
    [session] = (s for s in double.sessions.values() if s["status"] == "complete")
    assert (refund["amount"], refund["currency"]) == (1000, "usd")
    assert refund["payment_intent"] == session["payment_intent"]
    assert refund["metadata"] == {"credit_note_id": note_id, "invoice_id": invoice}
    posts = [r for r in double.requests if r[1] == "/v1/refunds"]
    assert [k for *_, k in posts] == [f"allotment-credit-note-{note_id}"]  # made once
    note = fx.credit_notes.get_credit_note(id=note_id)
    assert (note.credit_note_status, note.refund_status) == ("FINALIZED", "PROCESSING")
    # The client retries its unanswered finalize: the note as it is, no second refund (CN-10)
    again = fx.credit_notes.process_credit_note(id=note_id)
    assert again.model_dump() == note.model_dump() and len(double.refunds) == 1
    assert [r for r in double.requests if r[1] == "/v1/refunds"] == posts
    assert fx.invoices.get_invoice(id=invoice).refunded_amount == "10.00"
    assert double.settle_refund(refund["id"]) == 200  # charge.refunded
    settled = fx.credit_notes.get_credit_note(id=note_id)
    assert settled.refund_status == "SUCCEEDED"
    assert double.resend(double.last_event_id) == 200  # a repeat changes nothing (CN-9)
    assert fx.credit_notes.get_credit_note(id=note_id).model_dump() == settled.model_dump()
    assert len(double.refunds) == 1
