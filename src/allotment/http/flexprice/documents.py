"""The PDFs (CN-D1..CN-D6, CN-45): `GET /v1/invoices/{id}/pdf` (the client's `get_invoice_pdf`)
and `GET /v1/creditnotes/{id}/pdf` (allotment's own path: the client has no credit-note PDF).
The documents are built from the owner's state in its read, rendered off the event loop."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import anyio
from litestar import Response, get
from litestar.params import FromPath

from allotment.documents import CreditNoteDocument, DocumentLine, Party
from allotment.documents.build import customer_party, invoice_document
from allotment.documents.model import InvoiceDocument
from allotment.documents.render import render_credit_note, render_invoice
from allotment.domain.catalog import Catalog
from allotment.domain.credit_note_rules import invoice_totals
from allotment.domain.state import CustomerState
from allotment.http.context import AnyRequest, settings_of, shard_of
from allotment.http.flexprice.credit_notes import ADMIN
from allotment.http.flexprice.errors import FLEX_ERRORS, not_found
from allotment.http.flexprice.invoices import invoice_id_of
from allotment.http.flexprice.wire import parse_id

__all__ = ("credit_note_pdf", "invoice_pdf")

_PDF: Final = "application/pdf"


def _seller(request: AnyRequest) -> Party:
    settings = settings_of(request)
    return Party.seller(settings.seller_name, settings.seller_address)


def _pdf(content: bytes, name: str) -> Response[Any]:
    return Response(content=content, media_type=_PDF,
                    headers={"content-disposition": f'inline; filename="{name}.pdf"'})  # fmt: skip


@get("/invoices/{id:str}/pdf", operation_id="getInvoicePdf", opt=ADMIN, responses=FLEX_ERRORS,
     summary="Download an invoice as PDF", media_type=_PDF)  # fmt: skip
async def invoice_pdf(request: AnyRequest, id: FromPath[str]) -> Response[Any]:
    """The invoice's document: its number (the id while it is a draft), lines, and totals net
    of credit notes (CN-D6)."""
    invoice_id = invoice_id_of(id)
    seller = _seller(request)

    def project(state: CustomerState, catalog: Catalog, now: datetime) -> InvoiceDocument | None:
        invoice = state.invoices.get(invoice_id)
        if invoice is None:
            return None
        totals = invoice_totals(state, invoice)
        return invoice_document(
            state, invoice, seller=seller, invoice_number=totals.number or str(invoice.id),
            adjustments=totals.adjustment_amount, refunded=totals.refunded_amount,
        )  # fmt: skip

    document = await shard_of(request).read_on_owner(invoice_id, project)
    if document is None:
        raise not_found("invoice", id)
    content = await anyio.to_thread.run_sync(render_invoice, document)
    return _pdf(content, document.invoice_number)


@get("/creditnotes/{id:str}/pdf", operation_id="getCreditNotePdf", opt=ADMIN,
     responses=FLEX_ERRORS, summary="Download a credit note as PDF", media_type=_PDF)  # fmt: skip
async def credit_note_pdf(request: AnyRequest, id: FromPath[str]) -> Response[Any]:
    """The note's document: its number (the id while it is a draft), the invoice it credits,
    its lines and total (CN-D1, CN-45)."""
    note_id = parse_id("id", id)
    if note_id is None:
        raise not_found("credit note", id)
    seller = _seller(request)

    def project(state: CustomerState, catalog: Catalog, now: datetime) -> CreditNoteDocument | None:
        note = state.credit_notes.get(note_id)
        if note is None:
            return None
        invoice = state.invoices[note.invoice_id]
        items = {item.id: item.description for item in invoice.items}
        issued = note.finalized_at or note.created_at
        return CreditNoteDocument(
            seller=seller, customer=customer_party(state),
            credit_note_number=note.number or str(note.id),
            invoice_number=invoice_totals(state, invoice).number or str(invoice.id),
            invoice_date=invoice.created_at.date(), status=note.status.value,
            note_type=note.type.value, reason=note.reason.value, memo=note.memo,
            currency=note.currency, issue_date=issued.date(), total=note.total,
            lines=tuple(
                DocumentLine(description=line.display_name or items[line.invoice_line_id],
                             amount=line.amount)
                for line in note.lines
            ),
        )  # fmt: skip

    document = await shard_of(request).read_on_owner(note_id, project)
    if document is None:
        raise not_found("credit note", id)
    content = await anyio.to_thread.run_sync(render_credit_note, document)
    return _pdf(content, document.credit_note_number)
