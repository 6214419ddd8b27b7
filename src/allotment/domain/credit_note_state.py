"""Credit notes and the running totals of the invoices they credit (issue 18, docs/credit-notes.md).

A credit note credits lines of one invoice. Its type follows the invoice's payment state when
it is created (CN-3): an unpaid invoice gets an ADJUSTMENT, which lowers what is owed; a paid
one gets a REFUND, which records money owed back. Notes and ledgers are frozen values replaced
whole by `credit_note_evolve`, the only code that changes them.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal

import msgspec

from allotment.domain.money import ZERO

__all__ = (
    "CreditNote",
    "CreditNoteLine",
    "CreditNoteReason",
    "CreditNoteStatus",
    "CreditNoteType",
    "InvoiceLedger",
    "NumberKind",
    "RefundStatus",
)


class CreditNoteReason(enum.StrEnum):
    """Flexprice's `types.CreditNoteReason`, all seven values (CN-2)."""

    DUPLICATE = "DUPLICATE"
    FRAUDULENT = "FRAUDULENT"
    ORDER_CHANGE = "ORDER_CHANGE"
    UNSATISFACTORY = "UNSATISFACTORY"
    SERVICE_ISSUE = "SERVICE_ISSUE"
    BILLING_ERROR = "BILLING_ERROR"
    SUBSCRIPTION_CANCELLATION = "SUBSCRIPTION_CANCELLATION"


class CreditNoteStatus(enum.StrEnum):
    DRAFT = "DRAFT"
    FINALIZED = "FINALIZED"
    VOIDED = "VOIDED"


class CreditNoteType(enum.StrEnum):
    ADJUSTMENT = "ADJUSTMENT"  # the invoice was unpaid: what is owed goes down (CN-6)
    REFUND = "REFUND"  # the invoice was paid: money is owed back (CN-8)


class RefundStatus(enum.StrEnum):
    """The part of Flexprice's payment-status enum a refund moves through (CN-8, CN-9)."""

    PENDING = "PENDING"  # owed, not yet sent to the provider
    PROCESSING = "PROCESSING"  # the provider accepted it and has not settled it yet
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class NumberKind(enum.StrEnum):
    """The two gap-free sequences of an environment (CN-20)."""

    INVOICE = "INVOICE"
    CREDIT_NOTE = "CREDIT_NOTE"


class CreditNoteLine(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    id: uuid.UUID
    invoice_line_id: uuid.UUID
    amount: Decimal  # > 0, in the invoice's currency, rounded to its minor unit
    display_name: str
    metadata: dict[str, str] = msgspec.field(default_factory=dict)


class CreditNote(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    id: uuid.UUID
    invoice_id: uuid.UUID
    subscription_id: uuid.UUID
    type: CreditNoteType
    status: CreditNoteStatus
    reason: CreditNoteReason
    currency: str
    lines: tuple[CreditNoteLine, ...]
    total: Decimal
    created_at: datetime
    modified_at: datetime
    memo: str | None = None
    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    idempotency_key: str | None = None
    request_digest: str | None = None  # CN-12: what the key was first sent with
    number: str | None = None  # set at finalization (CN-20), or as the caller gave it
    sequence: int | None = None  # its place in the environment's sequence; None if given
    finalized_at: datetime | None = None
    voided_at: datetime | None = None
    refund_status: RefundStatus | None = None  # REFUND notes only (CN-8)
    refund_reference: str | None = None  # the provider's refund id, once it has one
    refund_payment: str | None = None  # the provider payment to refund (RefundRequested)
    # The Tanso invoice carrying this credit (INV-50's CREDIT invoice, INV-51's ADJUSTMENT
    # invoice): the link between the two views of one credit (CN-30, CN-31).
    tanso_invoice_id: uuid.UUID | None = None


class InvoiceLedger(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """What finalized credit notes and numbering added to one invoice. An invoice without a
    ledger has none of it: snapshots written before issue 18 decode unchanged.

    `amount_paid` is not kept: Tanso's payments are all or nothing, so a settled invoice was
    paid what was due when it settled, and ADJUSTMENT notes only reach unpaid invoices (CN-3).
    """

    adjusted: Decimal = ZERO  # FINALIZED ADJUSTMENT notes (Flexprice `adjustment_amount`)
    refunded: Decimal = ZERO  # FINALIZED REFUND notes (Flexprice `refunded_amount`)
    credited: dict[uuid.UUID, Decimal] = msgspec.field(default_factory=dict)  # by invoice line
    number: str | None = None  # CN-20: given when the invoice is finalized
    sequence: int | None = None
