"""The `unapplied_payments` table: money a provider took that no invoice received (MNY-C3),
from the customers' states and from the environment's own records."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal

from allotment.domain.money import minor_unit_exponent
from allotment.domain.payment_records import PaymentRecord, PaymentStatus
from allotment.domain.state import CustomerState
from allotment.persistence.analytics_rows.table import Columns, Row, Table

__all__ = ("UnappliedPaymentRow", "customer_payment_rows", "unapplied_payment_rows")


class UnappliedPaymentRow(Row, frozen=True, gc=False):
    table = "unapplied_payments"
    session_id: str
    event_type: str
    event_id: str | None
    customer_id: str | None  # null: no customer of the environment
    invoice_id: str | None
    invoice_reference: str | None
    amount_minor: int | None
    amount: Decimal | None
    currency: str | None
    stripe_customer_id: str | None
    reason: str | None
    recorded_at: datetime


def customer_payment_rows(state: CustomerState) -> Iterator[Row]:
    """The customer's unapplied payments."""
    return _rows(p for p in state.payments.values() if p.status is PaymentStatus.UNAPPLIED)


def unapplied_payment_rows(records: Iterable[PaymentRecord]) -> Columns:
    """The table's columns for the environment's own records."""
    table = Table(UnappliedPaymentRow)
    for row in _rows(records):
        table.add(row)
    return table.columns


def _rows(records: Iterable[PaymentRecord]) -> Iterator[UnappliedPaymentRow]:
    for record in records:
        p = record.payment
        amount = None
        if p.amount_minor is not None and p.currency is not None:
            amount = Decimal(p.amount_minor).scaleb(-minor_unit_exponent(p.currency))
        yield UnappliedPaymentRow(
            session_id=p.session_id,
            event_type=p.event_type,
            event_id=p.event_id,
            customer_id=str(record.customer_id) if record.customer_id else None,
            invoice_id=str(record.invoice_id) if record.invoice_id else None,
            invoice_reference=p.invoice_reference,
            amount_minor=p.amount_minor,
            amount=amount,
            currency=p.currency,
            stripe_customer_id=p.provider_customer_id,
            reason=record.reason,
            recorded_at=record.recorded_at,
        )
