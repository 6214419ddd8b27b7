"""The `invoices` and `invoice_items` tables; invoices carry their number and Flexprice's running
totals (docs/credit-notes.md, CN-46)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

from allotment.domain.credit_note_rules import invoice_totals
from allotment.domain.state import CustomerState
from allotment.persistence.analytics_rows.table import Row

__all__ = ("InvoiceItemRow", "InvoiceRow", "invoice_rows")


class InvoiceRow(Row, frozen=True, gc=False):
    table = "invoices"
    invoice_id: str
    customer_id: str
    subscription_id: str
    invoice_type: str
    status: str
    amount: Decimal
    currency: str
    due_date: datetime
    period_start: datetime
    period_end: datetime
    created_at: datetime
    modified_at: datetime
    invoice_number: str | None
    amount_due: Decimal
    amount_paid: Decimal
    amount_remaining: Decimal
    adjustment_amount: Decimal
    refunded_amount: Decimal
    payment_status: str


class InvoiceItemRow(Row, frozen=True, gc=False):
    table = "invoice_items"
    item_id: str
    invoice_id: str
    charge_amount: Decimal
    description: str
    created_at: datetime


def invoice_rows(state: CustomerState) -> Iterator[Row]:
    """Each of the customer's invoices, followed by its items."""
    cid = str(state.id)
    for inv in state.invoices.values():
        totals = invoice_totals(state, inv)
        yield InvoiceRow(
            invoice_id=str(inv.id),
            customer_id=cid,
            subscription_id=str(inv.subscription_id),
            invoice_type=inv.type.value,
            status=inv.status.value,
            amount=inv.amount,
            currency=inv.currency,
            due_date=inv.due_date,
            period_start=inv.period_start,
            period_end=inv.period_end,
            created_at=inv.created_at,
            modified_at=inv.modified_at,
            invoice_number=totals.number,
            amount_due=totals.amount_due,
            amount_paid=totals.amount_paid,
            amount_remaining=totals.amount_remaining,
            adjustment_amount=totals.adjustment_amount,
            refunded_amount=totals.refunded_amount,
            payment_status=totals.payment_status.value,
        )
        for item in inv.items:
            yield InvoiceItemRow(
                item_id=str(item.id),
                invoice_id=str(inv.id),
                charge_amount=item.charge_amount,
                description=item.description,
                created_at=item.created_at,
            )
