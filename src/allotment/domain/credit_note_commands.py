"""Commands and replies of credit notes (issue 18): what the HTTP layer sends the actor of the
customer owning an invoice or a note, and what it gets back. Field names are the domain's; the
wire's spellings are the HTTP layer's (docs/credit-notes.md, "Interface")."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal

import msgspec

from allotment.domain.credit_note_state import (
    CreditNote,
    CreditNoteReason,
    RefundStatus,
)

__all__ = (
    "CreateCreditNote",
    "CreditLineRequest",
    "CreditNoteCommand",
    "CreditNoteReply",
    "CreditNoteShown",
    "FinalizeCreditNote",
    "InvoicePaymentStatus",
    "InvoiceTotals",
    "RecordRefund",
    "VoidCreditNote",
)


class CreditLineRequest(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    invoice_line_id: uuid.UUID
    amount: Decimal
    display_name: str | None = None  # defaults to the invoice line's description
    metadata: dict[str, str] = msgspec.field(default_factory=dict)


class _CnCommand(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag_field="type"):
    pass


class CreateCreditNote(_CnCommand, tag="cn_create", frozen=True, kw_only=True):
    """CN-1..CN-12. `process` (Flexprice `process_credit_note`, default true) finalizes the
    note in the same turn; `number` is the caller's own `credit_note_number` (CN-22)."""

    invoice_id: uuid.UUID
    reason: CreditNoteReason
    lines: tuple[CreditLineRequest, ...]
    memo: str | None = None
    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    idempotency_key: str | None = None
    number: str | None = None
    process: bool = True
    currency: str | None = None  # CN-4: when given, it must be the invoice's


class FinalizeCreditNote(_CnCommand, tag="cn_finalize", frozen=True, kw_only=True):
    """CN-10: DRAFT -> FINALIZED; the rules are checked again against the invoice as it is now.
    A FINALIZED note answers as it is; a VOIDED one is refused (CN-11)."""

    note_id: uuid.UUID


class VoidCreditNote(_CnCommand, tag="cn_void", frozen=True, kw_only=True):
    """CN-11: DRAFT or FINALIZED -> VOIDED; a VOIDED note answers as it is."""

    note_id: uuid.UUID


class RecordRefund(_CnCommand, tag="cn_record_refund", frozen=True, kw_only=True):
    """CN-9: the refund edge reports what the provider said about a REFUND note's refund."""

    note_id: uuid.UUID
    status: RefundStatus
    reference: str | None = None


CreditNoteCommand = CreateCreditNote | FinalizeCreditNote | VoidCreditNote | RecordRefund


class InvoicePaymentStatus(enum.StrEnum):
    """Flexprice's `payment_status` of an invoice, as far as Tanso's payments reach (CN-5)."""

    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"
    REFUNDED = "REFUNDED"


class InvoiceTotals(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """An invoice's running totals in Flexprice's terms (CN-5): `total` is Tanso's `amount`;
    `amount_due` = total - adjustment_amount; `amount_remaining` = amount_due - amount_paid."""

    invoice_id: uuid.UUID
    number: str | None
    currency: str
    total: Decimal
    amount_due: Decimal
    amount_paid: Decimal
    amount_remaining: Decimal
    adjustment_amount: Decimal
    refunded_amount: Decimal
    creditable: Decimal  # what further notes may still credit (CN-2)
    payment_status: InvoicePaymentStatus
    credited_lines: dict[uuid.UUID, Decimal]  # FINALIZED notes, by invoice line


class CreditNoteShown(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag="cn_shown"):
    """A note as it is after the command, with its invoice's totals. `replayed` is true when an
    idempotency key returned a note made earlier (CN-12)."""

    note: CreditNote
    invoice: InvoiceTotals
    customer_id: uuid.UUID
    replayed: bool = False
    at: datetime | None = None


CreditNoteReply = CreditNoteShown
