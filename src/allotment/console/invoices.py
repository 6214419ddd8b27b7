"""Invoices (CON-56..CON-59): every invoice of the environment, filtered by status and age
(days since it was issued), newest first, one page at a time, with a link to the Stripe
checkout where one is open.

The list comes from the analytics snapshot (`AnalyticsReads.invoices`: a DuckDB query on a
worker thread, as fresh as the snapshot, whose time the page prints). Each listed invoice is
then read live through `Shard.read_on_owner`, the call the API's invoice routes make: one turn
of its customer per row, at most `PAGE_SIZE` rows, so the page shows each invoice's status and
checkout as they are now, and marks one whose status changed since the snapshot. Without a
data directory the list comes from one pass of `Shard.all_customers` (no turn, O(customers)).
"""

from __future__ import annotations

import heapq
import uuid
from datetime import datetime, timedelta

import msgspec
from litestar import get
from litestar.params import FromQuery
from litestar.response import Template

from allotment.console.context import ConsoleArg
from allotment.domain.catalog import Catalog
from allotment.domain.state import PAYABLE, CustomerState, Invoice, InvoiceStatus
from allotment.runtime.analytics_reads import HistoryUnavailable, InvoiceListing, InvoiceQuery
from allotment.runtime.ports import Projector, Shard

__all__ = ("AGES", "PAGES", "PAGE_SIZE", "InvoiceRow", "invoices", "live_statuses", "scan_invoices")

PAGE_SIZE = 50
PAGES_MAX = 200  # a bound on the fallback scan's kept rows: PAGE_SIZE x PAGES_MAX
AGES = {  # the age filter: label, and (issued at least, issued less than) days ago
    "": ("Any age", None, None),
    "7": ("Issued in the last 7 days", None, 7),
    "30": ("Issued in the last 30 days", None, 30),
    "90": ("Issued in the last 90 days", None, 90),
    "older": ("Issued over 90 days ago", 90, None),
}
STATUSES = tuple(status.value for status in InvoiceStatus)


class InvoiceRow(msgspec.Struct, frozen=True, kw_only=True):
    listing: InvoiceListing
    status_now: str | None  # as the customer's state has it now; None: no longer found
    checkout_url: str | None  # an open Stripe checkout of a payable invoice


def _query(status: str, age: str, page: int, now: datetime) -> InvoiceQuery:
    _, older_than, newer_than = AGES[age]
    return InvoiceQuery(
        statuses=(status,) if status else (),
        created_from=now - timedelta(days=newer_than) if newer_than is not None else None,
        created_before=now - timedelta(days=older_than) if older_than is not None else None,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )


Live = tuple[str, str | None]  # the invoice's status now, and its open checkout's URL


def _live(invoice_id: uuid.UUID, now: datetime) -> Projector[Live]:
    def project(state: CustomerState, _catalog: Catalog, _now: datetime) -> Live:
        invoice = state.invoices[invoice_id]
        checkout = state.checkouts.get(invoice_id)
        open_ = (
            checkout is not None
            and invoice.status in PAYABLE
            and (checkout.expires_at is None or checkout.expires_at > now)
        )
        return invoice.status.value, checkout.url if open_ and checkout is not None else None

    return project


async def live_statuses(
    shard: Shard, listed: list[InvoiceListing], now: datetime
) -> list[InvoiceRow]:
    """Each listed invoice with its status and open checkout as they are now (CON-58)."""
    rows = []
    for listing in listed:  # one turn per row, of the invoice's own customer
        invoice_id = uuid.UUID(listing.invoice_id)
        live = await shard.read_on_owner(invoice_id, _live(invoice_id, now))
        status, url = live if live is not None else (None, None)
        rows.append(InvoiceRow(listing=listing, status_now=status, checkout_url=url))
    return rows


def _listing(state: CustomerState, invoice: Invoice) -> InvoiceListing:
    return InvoiceListing(
        invoice_id=str(invoice.id), customer_id=str(state.id), external_id=state.external_id,
        invoice_type=invoice.type.value, status=invoice.status.value, amount=invoice.amount,
        currency=invoice.currency, due_date=invoice.due_date, created_at=invoice.created_at,
    )  # fmt: skip


async def scan_invoices(shard: Shard, query: InvoiceQuery) -> tuple[int, list[InvoiceListing]]:
    """The fallback without a snapshot: one pass of `Shard.all_customers` (no turn), keeping
    only the newest `offset + limit` matches (a bounded heap), and counting them all."""
    keep = query.offset + query.limit
    newest: list[tuple[datetime, str, InvoiceListing]] = []
    total = 0
    wanted = frozenset(query.statuses)

    def visit(state: CustomerState, _catalog: Catalog, _now: datetime) -> None:
        nonlocal total
        for invoice in state.invoices.values():
            if wanted and invoice.status.value not in wanted:
                continue
            created = invoice.created_at
            if query.created_from is not None and created < query.created_from:
                continue
            if query.created_before is not None and created >= query.created_before:
                continue
            total += 1
            item = (created, str(invoice.id), _listing(state, invoice))
            if len(newest) < keep:
                heapq.heappush(newest, item)
            elif item[:2] > newest[0][:2]:
                heapq.heapreplace(newest, item)

    await shard.all_customers(visit)
    ordered = [item[2] for item in sorted(newest, key=lambda i: i[:2], reverse=True)]
    return total, ordered[query.offset :]


@get("/invoices", name="console.invoices")
async def invoices(
    console: ConsoleArg,
    status: FromQuery[str] = "",
    age: FromQuery[str] = "",
    page: FromQuery[int] = 1,
) -> Template:
    """The invoices matching the filter; an unknown status or age shows every invoice."""
    status = status if status in STATUSES else ""
    age = age if age in AGES else ""
    page = min(max(page, 1), PAGES_MAX)
    now = console.system.clock.now()
    query = _query(status, age, page, now)
    as_of: datetime | None = None
    note: str | None = None
    reads = console.system.analytics_reads
    try:
        if reads is None:
            raise HistoryUnavailable("this server keeps no data directory")
        found = await reads.invoices(console.environment, query)
        total, listed, as_of = found.total, found.rows, found.taken_at
    except HistoryUnavailable as missing:
        total, listed = await scan_invoices(console.shard, query)
        note = f"Listed from every customer now ({missing})."
    pages = min(max(1, -(-total // PAGE_SIZE)), PAGES_MAX)
    return console.render(
        "invoices.html", title="Invoices", status=status, age=age, statuses=STATUSES,
        ages=AGES, rows=await live_statuses(console.shard, listed, now), total=total,
        page=min(page, pages), pages=pages, as_of=as_of, note=note,
    )  # fmt: skip


PAGES = [invoices]
