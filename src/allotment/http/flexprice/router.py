"""The Flexprice router: credit notes and the invoice reads its client needs, under `/v1`
(Flexprice's `server_url` is `http://HOST:PORT/v1`), with Flexprice's error shape on every
failure on its paths (`errors.py`)."""

from __future__ import annotations

from litestar import Router

from allotment.http.flexprice import credit_notes, documents, invoices
from allotment.http.flexprice.errors import exception_handlers

__all__ = ("ROUTES", "flexprice_router")

ROUTES = [
    credit_notes.create_credit_note,
    credit_notes.list_credit_notes,
    credit_notes.get_credit_note,
    credit_notes.finalize_credit_note,
    credit_notes.void_credit_note,
    documents.credit_note_pdf,
    invoices.get_invoice,
    invoices.search_invoices,
    documents.invoice_pdf,
]


def flexprice_router() -> Router:
    """A new router per app, as Litestar registers routes on it."""
    return Router(
        "/v1",
        route_handlers=ROUTES,
        tags=["Flexprice"],
        exception_handlers=exception_handlers,  # type: ignore[arg-type]
    )
