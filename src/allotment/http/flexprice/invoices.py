"""Invoices in Flexprice's shape, as far as its client needs them to create and show credit
notes (CN-42): `GET /v1/invoices/{id}` and `POST /v1/invoices/search`. They are Tanso's
invoices, read, never changed: the Tanso API shows them as before."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Final

import msgspec
from litestar import Response, get, post
from litestar.params import FromPath

from allotment.domain.catalog import Catalog
from allotment.domain.credit_note_rules import invoice_totals
from allotment.domain.state import CustomerState, Invoice
from allotment.http.auth import api_key_of
from allotment.http.context import AnyRequest, shard_of
from allotment.http.flexprice.credit_notes import ADMIN
from allotment.http.flexprice.errors import FLEX_ERRORS, invalid, not_found
from allotment.http.flexprice.wire import (
    decode,
    flex_json,
    invoice_json,
    invoice_status,
    newest_first,
    page,
    parse_id,
)
from allotment.runtime.ports import CustomerLookup

__all__ = ("get_invoice", "invoice_id_of", "search_invoices")

_LIMIT_MAX: Final = 1000


class _Filter(msgspec.Struct, frozen=True):
    """The part of Flexprice's `InvoiceFilter` allotment serves; its other fields are refused
    by name rather than ignored (CN-42)."""

    customer_id: str | None = None
    external_customer_id: str | None = None
    invoice_ids: list[str] | None = None
    invoice_status: list[str] | None = None
    payment_status: list[str] | None = None
    invoice_type: str | None = None
    subscription_id: str | None = None
    currency: str | None = None
    limit: int | None = None
    offset: int | None = None
    skip_line_items: bool | None = None
    order: str | None = None
    # Flexprice's other filters: named so that sending one is a clear refusal.
    amount_due_gt: Any = None
    amount_remaining_gt: Any = None
    billing_reason: Any = None
    end_time: Any = None
    start_time: Any = None
    expand: Any = None
    filters: Any = None
    sort: Any = None
    finalized_at_gte: Any = None
    voided_at_gte: Any = None
    period_end_gte: Any = None
    period_end_lte: Any = None
    period_start_gte: Any = None
    period_start_lte: Any = None
    subscription_customer_id: Any = None
    status: Any = None


_UNSUPPORTED: Final = (
    "amount_due_gt", "amount_remaining_gt", "billing_reason", "end_time", "start_time",
    "expand", "filters", "sort", "finalized_at_gte", "voided_at_gte", "period_end_gte",
    "period_end_lte", "period_start_gte", "period_start_lte", "subscription_customer_id",
)  # fmt: skip


def invoice_id_of(raw: str) -> uuid.UUID:
    invoice_id = parse_id("id", raw)
    if invoice_id is None:
        raise not_found("invoice", raw)
    return invoice_id


@get("/invoices/{id:str}", operation_id="getInvoice", opt=ADMIN, responses=FLEX_ERRORS,
     summary="Get an invoice")  # fmt: skip
async def get_invoice(request: AnyRequest, id: FromPath[str]) -> Response[Any]:
    """A Tanso invoice in Flexprice's shape: its number, line items with ids and the running
    totals credit notes move (CN-5, CN-42)."""
    invoice_id = invoice_id_of(id)
    environment = api_key_of(request.scope).environment

    def project(state: CustomerState, catalog: Catalog, now: datetime) -> dict[str, Any] | None:
        invoice = state.invoices.get(invoice_id)
        if invoice is None:
            return None
        return invoice_json(state, invoice, invoice_totals(state, invoice), environment)

    body = await shard_of(request).read_on_owner(invoice_id, project)
    if body is None:
        raise not_found("invoice", id)
    return flex_json(body)


@post("/invoices/search", operation_id="searchInvoices", status_code=200, opt=ADMIN,
      responses=FLEX_ERRORS, summary="Search invoices")  # fmt: skip
async def search_invoices(request: AnyRequest) -> Response[Any]:
    """The environment's invoices matching an `InvoiceFilter`, newest first, in Flexprice's
    `ListInvoicesResponse` (CN-42)."""
    query = decode(await request.body(), _Filter)
    for name in _UNSUPPORTED:
        if getattr(query, name) is not None:
            raise invalid(name, "not supported by allotment")
    limit, offset = query.limit or 50, query.offset or 0
    if not 1 <= limit <= _LIMIT_MAX or offset < 0:
        raise invalid("limit" if offset >= 0 else "offset", f"limit 1..{_LIMIT_MAX}, offset >= 0")
    environment = api_key_of(request.scope).environment

    def project(state: CustomerState, catalog: Catalog, now: datetime) -> list[dict[str, Any]]:
        return [
            invoice_json(state, invoice, totals, environment, lines=not query.skip_line_items)
            for invoice in state.invoices.values()
            if _matches(query, invoice)
            and _totals_match(query, totals := invoice_totals(state, invoice))
        ]

    found = await _customers(request, query, project)
    ordered = newest_first(found)
    if query.order == "asc":
        ordered.reverse()
    return flex_json(page(ordered, limit, offset))


async def _customers(request: AnyRequest, query: _Filter, project: Any) -> list[dict[str, Any]]:
    shard = shard_of(request)
    lookup = None
    if query.customer_id is not None:
        customer_id = parse_id("customer_id", query.customer_id)
        if customer_id is None:
            return []
        lookup = CustomerLookup(customer_id=customer_id)
    elif query.external_customer_id is not None:
        lookup = CustomerLookup(external_id=query.external_customer_id)
    if lookup is None:
        return [item for items in await shard.all_customers(project) for item in items]
    found: list[dict[str, Any]] | None = await shard.read(lookup, project)
    return found or []


def _matches(query: _Filter, invoice: Invoice) -> bool:
    kind = "CREDIT" if invoice.type.value == "CREDIT" else "SUBSCRIPTION"
    return (
        (query.invoice_ids is None or str(invoice.id) in query.invoice_ids)
        and (query.invoice_status is None or invoice_status(invoice) in query.invoice_status)
        and (query.invoice_type is None or query.invoice_type == kind)
        and (query.subscription_id is None or str(invoice.subscription_id) == query.subscription_id)
        and (query.currency is None or query.currency.upper() == invoice.currency)
    )


def _totals_match(query: _Filter, totals: Any) -> bool:
    return query.payment_status is None or totals.payment_status.value in query.payment_status
