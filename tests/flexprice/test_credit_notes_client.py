"""Credit notes and invoices through the official `flexprice` client, unchanged, against one
real server (CN-40..CN-45; the domain's rules CN-1..CN-12 through the wire)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pypdf import PdfReader

from flexprice import Flexprice
from flexprice import models as m
from tests.flexprice.support import C, Refusal, customer_with_invoice, flex_client, refused, tanso
from tests.reliability.server import KEY, Server


class World:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.http = tanso(server)
        self.fx = flex_client(server)
        self.unpaid = customer_with_invoice(self.http, "fx-unpaid")
        self.paid = customer_with_invoice(self.http, "fx-paid", paid=True)
        self.other = customer_with_invoice(self.http, "fx-other")

    def line(self, invoice: str) -> str:
        items = self.fx.invoices.get_invoice(id=invoice).line_items
        assert items and items[0].id
        return items[0].id

    def everything(self) -> tuple[Any, ...]:
        """What a refusal must leave unchanged: invoices both ways, and every note."""
        invoices = [
            self.fx.invoices.get_invoice(id=i).model_dump() for i in (self.unpaid, self.paid)
        ]
        tanso_side = [
            self.http.get(f"{C}/billing/invoices/{r}").json() for r in ("fx-unpaid", "fx-paid")
        ]
        notes = httpx.get(f"{self.server.url}/v1/creditnotes", headers={"x-api-key": KEY}).json()
        return invoices, tanso_side, notes


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, server_shards: int) -> Iterator[World]:
    server = Server(tmp_path_factory.mktemp("flexprice"), "--seller-name", "Acme Billing GmbH",
                    shards=server_shards)  # fmt: skip
    try:
        yield World(server)
    finally:
        server.kill()


def _lines(line: str, amount: str) -> list[m.CreateCreditNoteLineItemRequest]:
    return [m.CreateCreditNoteLineItemRequest(invoice_line_item_id=line, amount=amount)]


def test_cn42_invoice_reads_in_flexprice_shape_and_tanso_unchanged(world: World) -> None:
    """CN-42: number, lines with ids, running totals; the Tanso listing is as before."""
    invoice = world.fx.invoices.get_invoice(id=world.unpaid)
    assert invoice.invoice_number and invoice.invoice_number.startswith("INV-")
    assert invoice.invoice_status == "FINALIZED" and invoice.payment_status == "PENDING"
    assert invoice.amount_due == invoice.total == invoice.amount_remaining == "49.00"
    assert invoice.amount_paid == invoice.adjustment_amount == invoice.refunded_amount == "0.00"
    found = world.fx.invoices.query_invoice(external_customer_id="fx-paid")
    assert found.pagination and found.pagination.total == 1
    assert found.items and found.items[0].payment_status == "SUCCEEDED"
    assert found.items[0].amount_paid == "49.00"
    tanso_view = world.http.get(f"{C}/billing/invoices/fx-unpaid").json()["data"][0]
    assert set(tanso_view) == {"id", "amount", "currency", "status", "dueDate", "subscription",
                               "createdAt", "modifiedAt", "metadata"}  # fmt: skip
    assert "invoice_number" not in str(tanso_view)


def test_cn6_adjustment_lowers_due_then_void_restores_it(world: World) -> None:
    """CN-6, CN-10, CN-11, CN-20 through the client: create (processed), get, void."""
    line = world.line(world.unpaid)
    note = world.fx.credit_notes.create_credit_note(
        invoice_id=world.unpaid, reason="BILLING_ERROR", line_items=_lines(line, "9.00"),
        memo="wrong seat count", metadata={"ticket": "T-1"},
    )  # fmt: skip
    assert note.credit_note_type == "ADJUSTMENT" and note.credit_note_status == "FINALIZED"
    assert note.credit_note_number and note.credit_note_number.startswith("CN-")
    assert note.total_amount == "9.00" and note.metadata == {"ticket": "T-1"}
    assert world.fx.invoices.get_invoice(id=world.unpaid).amount_due == "40.00"
    assert world.fx.credit_notes.get_credit_note(id=note.id or "").memo == "wrong seat count"
    voided = world.fx.credit_notes.void_credit_note(id=note.id or "")
    assert voided.credit_note_status == "VOIDED" and voided.voided_at is not None
    invoice = world.fx.invoices.get_invoice(id=world.unpaid)
    assert invoice.amount_due == "49.00" and invoice.adjustment_amount == "0.00"


def test_cn10_draft_then_finalize_and_cn12_idempotency(world: World) -> None:
    line = world.line(world.unpaid)
    draft = world.fx.credit_notes.create_credit_note(
        invoice_id=world.unpaid, reason="SERVICE_ISSUE", line_items=_lines(line, "1.50"),
        process_credit_note=False, idempotency_key="fx-key-1",
    )  # fmt: skip
    assert draft.credit_note_status == "DRAFT" and draft.credit_note_number is None
    again = world.fx.credit_notes.create_credit_note(
        invoice_id=world.unpaid, reason="SERVICE_ISSUE", line_items=_lines(line, "1.5"),
        process_credit_note=False, idempotency_key="fx-key-1",
    )  # fmt: skip
    assert again.id == draft.id
    final = world.fx.credit_notes.process_credit_note(id=draft.id or "")
    assert final.credit_note_status == "FINALIZED" and final.credit_note_number
    assert world.fx.invoices.get_invoice(id=world.unpaid).adjustment_amount == "1.50"
    world.fx.credit_notes.void_credit_note(id=draft.id or "")


def test_cn8_refund_note_on_a_paid_invoice(world: World) -> None:
    """CN-3, CN-8: a paid invoice gets a REFUND note; refunded_amount and payment_status move.
    It was not paid through Stripe, so the refund is owed (PENDING), made by hand."""
    note = world.fx.credit_notes.create_credit_note(
        invoice_id=world.paid, reason="UNSATISFACTORY",
        line_items=_lines(world.line(world.paid), "10.00"),
    )  # fmt: skip
    assert note.credit_note_type == "REFUND" and note.refund_status == "PENDING"
    invoice = world.fx.invoices.get_invoice(id=world.paid)
    assert invoice.refunded_amount == "10.00" and invoice.payment_status == "PARTIALLY_REFUNDED"


def test_cn44_list_filters_and_pagination(world: World) -> None:
    """CN-44: by invoice, customer and status, Flexprice's `{items, pagination}`."""
    headers = {"x-api-key": KEY}
    base = f"{world.server.url}/v1/creditnotes"
    invoice = world.fx.invoices.get_invoice(id=world.paid)
    by_invoice = httpx.get(base, params={"invoice_id": world.paid}, headers=headers).json()
    assert {n["invoice_id"] for n in by_invoice["items"]} == {world.paid}
    by_customer = httpx.get(base, params={"customer_id": invoice.customer_id}, headers=headers)
    assert by_customer.json()["items"] == by_invoice["items"]
    voided = httpx.get(base, params={"credit_note_status": "VOIDED"}, headers=headers).json()
    assert voided["items"] and {n["credit_note_status"] for n in voided["items"]} == {"VOIDED"}
    everything = httpx.get(base, headers=headers).json()
    one = httpx.get(base, params={"limit": 1, "offset": 1}, headers=headers).json()
    assert one["pagination"] == {
        "total": everything["pagination"]["total"],
        "limit": 1,
        "offset": 1,
    }
    assert one["items"] == everything["items"][1:2]


@pytest.mark.parametrize(
    ("case", "field"),
    [
        ("line of another invoice", "line_items[0].invoice_line_item_id"),
        ("over the limit", "line_items[0].amount"),
        ("missing reason", "reason"),
        ("not a reason", "reason"),
        ("amount not a decimal", "line_items[0].amount"),
    ],
)
def test_cn41_bad_input_is_a_validation_error_and_changes_nothing(
    world: World, case: str, field: str
) -> None:
    before = world.everything()
    line = world.line(world.unpaid)
    body: dict[str, Any] = {"invoice_id": world.unpaid, "reason": "DUPLICATE",
                            "line_items": [{"invoice_line_item_id": line, "amount": "1.00"}]}  # fmt: skip
    if case == "line of another invoice":
        body["line_items"][0]["invoice_line_item_id"] = world.line(world.other)
    elif case == "over the limit":
        body["line_items"][0]["amount"] = "49.01"
    elif case == "missing reason":
        del body["reason"]
    elif case == "not a reason":
        body["reason"] = "BECAUSE"
    else:
        body["line_items"][0]["amount"] = "ten"
    if case in {"missing reason", "not a reason"}:  # the client's model would refuse to send it
        raw = httpx.post(
            f"{world.server.url}/v1/creditnotes", json=body, headers={"x-api-key": KEY}
        )
        refusal = Refusal(raw)
    else:
        lines = [m.CreateCreditNoteLineItemRequest(**line) for line in body["line_items"]]
        refusal = refused(lambda: world.fx.credit_notes.create_credit_note(
            invoice_id=world.unpaid, reason="DUPLICATE", line_items=lines))  # fmt: skip
    assert (refusal.status, refusal.code, refusal.field) == (400, "validation_error", field)
    assert refusal.message.startswith(field)
    assert world.everything() == before


def test_cn11_finalizing_a_voided_note_is_refused_and_changes_nothing(world: World) -> None:
    note = world.fx.credit_notes.create_credit_note(
        invoice_id=world.unpaid, reason="DUPLICATE",
        line_items=_lines(world.line(world.unpaid), "2.00"), process_credit_note=False,
    )  # fmt: skip
    world.fx.credit_notes.void_credit_note(id=note.id or "")
    before = world.everything()
    refusal = refused(lambda: world.fx.credit_notes.process_credit_note(id=note.id or ""))
    assert (refusal.status, refusal.code, refusal.field) == (400, "validation_error", "id")
    assert world.everything() == before
    missing = refused(lambda: world.fx.credit_notes.get_credit_note(id=world.unpaid))
    assert (missing.status, missing.code) == (404, "not_found")


def test_cn41_only_admin_keys_and_only_v1_speaks_flexprice(world: World) -> None:
    """CN-41: no key, a 401 in Flexprice's shape; the Tanso paths keep their envelope."""
    anonymous = Flexprice(api_key_auth="sk_test_nope", server_url=f"{world.server.url}/v1")
    refusal = refused(lambda: anonymous.invoices.get_invoice(id=world.unpaid))
    assert (refusal.status, refusal.code) == (401, "permission_denied")
    tanso_401 = httpx.get(f"{world.server.url}{C}/plans", headers={"x-api-key": "sk_test_nope"})
    assert tanso_401.json()["success"] is False


def test_cn45_pdfs_through_the_routes(world: World) -> None:
    """CN-D1 and CN-45: the invoice PDF through the client, the note's through its path."""
    note = world.fx.credit_notes.create_credit_note(
        invoice_id=world.other, reason="ORDER_CHANGE",
        line_items=_lines(world.line(world.other), "4.00"), memo="seat removed",
    )  # fmt: skip
    invoice = world.fx.invoices.get_invoice(id=world.other)
    response = world.fx.invoices.get_invoice_pdf(id=world.other)
    assert response.headers["content-type"] == "application/pdf"
    text = _text(response.read())
    assert "Acme Billing GmbH" in text and (invoice.invoice_number or "-") in text
    assert "Ada fx-other" in text and "4.00" in text and "45.00" in text
    pdf = httpx.get(f"{world.server.url}/v1/creditnotes/{note.id}/pdf", headers={"x-api-key": KEY})
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = _text(pdf.content)
    assert (note.credit_note_number or "-") in text and (invoice.invoice_number or "-") in text
    assert "ORDER_CHANGE" in text.replace(" ", "_") or "Order change" in text
    assert "seat removed" in text and "4.00" in text


def _text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
