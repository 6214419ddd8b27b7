"""The `credit_notes` and `credit_note_lines` tables (docs/credit-notes.md, CN-46)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

from allotment.domain.state import CustomerState
from allotment.persistence.analytics_rows.table import Row

__all__ = ("CreditNoteLineRow", "CreditNoteRow", "credit_note_rows")


class CreditNoteRow(Row, frozen=True, gc=False):
    table = "credit_notes"
    credit_note_id: str
    credit_note_number: str | None
    invoice_id: str
    customer_id: str
    subscription_id: str
    credit_note_type: str
    credit_note_status: str
    reason: str
    currency: str
    total_amount: Decimal
    refund_status: str | None
    tanso_invoice_id: str | None  # the Tanso invoice carrying an allotment credit (CN-30)
    memo: str | None
    created_at: datetime
    finalized_at: datetime | None
    voided_at: datetime | None


class CreditNoteLineRow(Row, frozen=True, gc=False):
    table = "credit_note_lines"
    line_id: str
    credit_note_id: str
    invoice_line_id: str
    display_name: str
    amount: Decimal
    currency: str


def credit_note_rows(state: CustomerState) -> Iterator[Row]:
    """Each of the customer's credit notes, in creation order, followed by its lines."""
    cid = str(state.id)
    for note in state.credit_notes.values():
        yield CreditNoteRow(
            credit_note_id=str(note.id),
            credit_note_number=note.number,
            invoice_id=str(note.invoice_id),
            customer_id=cid,
            subscription_id=str(note.subscription_id),
            credit_note_type=note.type.value,
            credit_note_status=note.status.value,
            reason=note.reason.value,
            currency=note.currency,
            total_amount=note.total,
            refund_status=note.refund_status.value if note.refund_status else None,
            tanso_invoice_id=str(note.tanso_invoice_id) if note.tanso_invoice_id else None,
            memo=note.memo,
            created_at=note.created_at,
            finalized_at=note.finalized_at,
            voided_at=note.voided_at,
        )
        for line in note.lines:
            yield CreditNoteLineRow(
                line_id=str(line.id),
                credit_note_id=str(note.id),
                invoice_line_id=str(line.invoice_line_id),
                display_name=line.display_name,
                amount=line.amount,
                currency=note.currency,
            )
