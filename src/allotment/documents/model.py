"""What an invoice or credit-note PDF shows, as plain values (docs/credit-notes.md, Documents).

These structs are the whole interface of the renderer: it reads nothing else, so a document is
a function of its struct (the same struct gives the same bytes, CN-D3). Builders from the
domain's state (`build.py`) and, later, the Flexprice routes fill them in. Amounts are
`Decimal` in major units of `currency`; the renderer formats them exactly (CN-D2).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import msgspec

from allotment.domain.money import ZERO

__all__ = (
    "CreditNoteDocument",
    "DocumentLine",
    "InvoiceDocument",
    "Party",
)


class Party(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """The seller or the customer: a name, and an email and address lines when known."""

    name: str
    email: str | None = None
    address: tuple[str, ...] = ()

    @classmethod
    def seller(cls, name: str, address: str) -> Party:
        """The seller as configured (`--seller-name`, `--seller-address`): one address line
        per line of text, blank lines dropped, so an environment variable can hold it all."""
        lines = tuple(line.strip() for line in address.splitlines() if line.strip())
        return cls(name=name.strip(), address=lines)


class DocumentLine(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """One line. `quantity` and `unit_price` are None where the source has no such split (a
    Tanso invoice item carries only its amount; its description names any usage quantity)."""

    description: str
    amount: Decimal
    quantity: Decimal | None = None
    unit_price: Decimal | None = None


class InvoiceDocument(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """An invoice as printed. The totals obey (checked on construction, CN-D1):
    subtotal = Σ lines, total = subtotal − adjustments, amount_due = total − amount_paid,
    except that a VOID or CANCELLED invoice is owed nothing (amount_due = 0)."""

    seller: Party
    customer: Party
    invoice_number: str
    status: str  # as the invoice's API shows it (PAID, DUE, VOID, ...)
    currency: str
    issue_date: date
    due_date: date | None
    period_start: date | None
    period_end: date | None
    lines: tuple[DocumentLine, ...]
    subtotal: Decimal
    adjustments: Decimal = (
        ZERO  # Σ FINALIZED ADJUSTMENT credit notes (Flexprice's adjustment_amount)
    )
    total: Decimal
    amount_paid: Decimal = ZERO
    amount_due: Decimal
    refunded: Decimal = ZERO  # Σ FINALIZED REFUND credit notes (Flexprice's refunded_amount)
    owes_nothing: bool = False  # VOID or CANCELLED: nothing is due whatever the total

    def __post_init__(self) -> None:
        _check_sum(self.lines, self.subtotal)
        if self.total != self.subtotal - self.adjustments:
            raise ValueError(f"total {self.total} != subtotal − adjustments")
        due = ZERO if self.owes_nothing else self.total - self.amount_paid
        if self.amount_due != due:
            raise ValueError(f"amount_due {self.amount_due} != {due}")


class CreditNoteDocument(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """A credit note as printed: the invoice it credits, why, and how (Flexprice's
    `credit_note_type`: ADJUSTMENT lowers what is due, REFUND returns money paid)."""

    seller: Party
    customer: Party
    credit_note_number: str
    invoice_number: str  # the credited invoice's number
    invoice_date: date | None
    status: str  # DRAFT, FINALIZED or VOIDED
    note_type: str  # ADJUSTMENT or REFUND
    reason: str  # one of Flexprice's 7 reasons, e.g. BILLING_ERROR
    memo: str | None
    currency: str
    issue_date: date
    lines: tuple[DocumentLine, ...]
    total: Decimal

    def __post_init__(self) -> None:
        _check_sum(self.lines, self.total)


def _check_sum(lines: tuple[DocumentLine, ...], expected: Decimal) -> None:
    """A printed total that is not the sum of its printed lines is a mapping bug upstream."""
    summed = sum((line.amount for line in lines), ZERO)
    if summed != expected:
        raise ValueError(f"the lines sum to {summed}, not {expected}")
