"""What a credit note may credit, and an invoice's running totals (CN-1..CN-7, CN-12).

Pure functions of the customer state: the decisions in `credit_notes.py` and the backing of
Tanso's credits (`credit_backing.py`) both check a note here, and reads show the same totals.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Protocol

from allotment.domain.credit_note_commands import (
    CreateCreditNote,
    InvoicePaymentStatus,
    InvoiceTotals,
)
from allotment.domain.credit_note_state import CreditNoteType, InvoiceLedger
from allotment.domain.money import ZERO, round_money
from allotment.domain.replies import Rejected, RejectionKind
from allotment.domain.state import PAYABLE, SETTLED, CustomerState, Invoice

__all__ = (
    "EMPTY_LEDGER",
    "check_lines",
    "creditable",
    "invoice_totals",
    "note_type",
    "request_digest",
)

EMPTY_LEDGER = InvoiceLedger()


class _Credit(Protocol):
    """A line asked for (`CreditLineRequest`) or kept on a draft note (`CreditNoteLine`)."""

    @property
    def invoice_line_id(self) -> uuid.UUID: ...

    @property
    def amount(self) -> Decimal: ...


def _invalid(message: str, field: str) -> Rejected:
    return Rejected(kind=RejectionKind.INVALID, message=message, field=field)


def note_type(invoice: Invoice) -> CreditNoteType | Rejected:
    """CN-3 and CN-4: ADJUSTMENT on an unpaid invoice, REFUND on a paid one; none on an
    invoice that is not finalized (PENDING), voided or cancelled."""
    if invoice.status in PAYABLE:
        return CreditNoteType.ADJUSTMENT
    if invoice.status in SETTLED:
        return CreditNoteType.REFUND
    return _invalid(
        f"invoice_id: an invoice in status {invoice.status} cannot be credited.", "invoice_id"
    )


def _paid(invoice: Invoice, ledger: InvoiceLedger) -> Decimal:
    """Tanso's payments are whole: a settled invoice was paid what was due when it settled,
    and only REFUND notes (never ADJUSTMENT ones) reach it afterwards (CN-5)."""
    if invoice.status not in SETTLED:
        return ZERO
    return max(invoice.amount - ledger.adjusted, ZERO)


def creditable(invoice: Invoice, ledger: InvoiceLedger) -> Decimal:
    """CN-2: what further notes may credit: the amount still due on an unpaid invoice, the
    amount paid and not yet refunded on a paid one; nothing on a negative (credit) invoice."""
    if invoice.status in SETTLED:
        return _paid(invoice, ledger) - ledger.refunded
    return max(invoice.amount - ledger.adjusted, ZERO)


def _payment_status(paid: Decimal, refunded: Decimal) -> InvoicePaymentStatus:
    if paid <= 0 and refunded <= 0:
        return InvoicePaymentStatus.PENDING
    if refunded <= 0:
        return InvoicePaymentStatus.SUCCEEDED
    if refunded < paid:
        return InvoicePaymentStatus.PARTIALLY_REFUNDED
    return InvoicePaymentStatus.REFUNDED


def invoice_totals(state: CustomerState, invoice: Invoice) -> InvoiceTotals:
    """CN-5: Flexprice's running totals of one invoice, derived from Tanso's invoice and the
    ledger of finalized notes. A credit (negative) invoice owes nothing: every total is 0."""
    ledger = state.invoice_ledgers.get(invoice.id, EMPTY_LEDGER)
    due = max(invoice.amount - ledger.adjusted, ZERO)
    paid = _paid(invoice, ledger)
    status = _payment_status(paid, ledger.refunded)
    if invoice.status in SETTLED and paid == 0 and invoice.amount > 0:
        status = InvoicePaymentStatus.SUCCEEDED  # CN-7: settled by an adjustment, not money
    return InvoiceTotals(
        invoice_id=invoice.id,
        number=ledger.number,
        currency=invoice.currency,
        total=invoice.amount,
        amount_due=due,
        amount_paid=paid,
        amount_remaining=due - paid,
        adjustment_amount=ledger.adjusted,
        refunded_amount=ledger.refunded,
        creditable=creditable(invoice, ledger),
        payment_status=status,
        credited_lines=dict(ledger.credited),
    )


def check_lines(
    invoice: Invoice, ledger: InvoiceLedger, lines: Sequence[_Credit]
) -> Rejected | None:
    """CN-1 and CN-2: at least one line; each names a line of this invoice once, credits a
    positive amount in the invoice currency's minor unit, and with what finalized notes
    credited stays within the line; the note's total stays within what is creditable."""
    if not lines:
        return _invalid("line_items: at least one line is required.", "line_items")
    items = {item.id: item for item in invoice.items}
    seen: set[uuid.UUID] = set()
    for index, request in enumerate(lines):
        where = f"line_items[{index}]"
        item = items.get(request.invoice_line_id)
        if item is None or request.invoice_line_id in seen:
            return _invalid(
                f"{where}.invoice_line_item_id: not a line of the invoice, or named twice.",
                f"{where}.invoice_line_item_id",
            )
        seen.add(request.invoice_line_id)
        amount = request.amount
        if amount <= 0 or round_money(amount, invoice.currency) != amount:
            return _invalid(
                f"{where}.amount: must be positive, in {invoice.currency}'s minor unit.",
                f"{where}.amount",
            )
        left = item.charge_amount - ledger.credited.get(item.id, ZERO)
        if amount > left:
            return _invalid(
                f"{where}.amount: {amount} is over the {max(left, ZERO)} left on the line.",
                f"{where}.amount",
            )
    total = sum((line.amount for line in lines), ZERO)
    left = creditable(invoice, ledger)
    if total > left:
        return _invalid(
            f"line_items: the total {total} is over the {max(left, ZERO)} creditable.",
            "line_items",
        )
    return None


def request_digest(command: CreateCreditNote) -> str:
    """CN-12: what makes two creates with one idempotency key "the same body". Amounts compare
    as numbers (10.0 and 10.00 are one amount); metadata as maps."""
    lines = [
        (
            str(line.invoice_line_id),
            str(line.amount.normalize()),
            line.display_name,
            sorted(line.metadata.items()),
        )
        for line in command.lines
    ]
    body = (
        str(command.invoice_id),
        command.reason.value,
        lines,
        command.memo,
        sorted(command.metadata.items()),
        command.number,
        command.process,
        command.currency,
    )
    return hashlib.sha256(repr(body).encode()).hexdigest()
