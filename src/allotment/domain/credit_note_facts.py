"""The facts of credit notes, refunds and numbers (issue 18, docs/credit-notes.md).

A note is created DRAFT and finalized by a fact of its own, in the same turn when the caller
asks it processed (CN-10). Every number an environment's sequence gives is carried by the fact
of the customer it numbers, so the number and its use are journalled in one record (CN-21).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

import msgspec

from allotment.domain.credit_note_state import CreditNote, CreditNoteType, NumberKind, RefundStatus

__all__ = (
    "CreditNoteCreated",
    "CreditNoteFinalized",
    "CreditNoteVoided",
    "InvoiceNumbered",
    "RefundRequested",
    "RefundSettled",
)


class _Fact(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag_field="type"):
    at: datetime


class CreditNoteCreated(_Fact, tag="credit_note_created", frozen=True, kw_only=True):
    """A DRAFT note (CN-10); it credits nothing until finalized."""

    note: CreditNote


class CreditNoteFinalized(_Fact, tag="credit_note_finalized", frozen=True, kw_only=True):
    """The note now credits its invoice (CN-6..CN-8). `sequence` is its place in the
    environment's credit-note sequence, None when the caller gave the number (CN-22). `type`
    is derived again at finalization: a draft credits nothing, so the invoice's payment state
    then decides (CN-3)."""

    note_id: uuid.UUID
    note_type: CreditNoteType
    number: str
    sequence: int | None = None


class CreditNoteVoided(_Fact, tag="credit_note_voided", frozen=True, kw_only=True):
    """The note credits nothing any more; a finalized one gives back what it credited (CN-11)."""

    note_id: uuid.UUID


class InvoiceNumbered(_Fact, tag="invoice_numbered", frozen=True, kw_only=True):
    """An invoice finalized in this turn took the next invoice number (CN-20)."""

    invoice_id: uuid.UUID
    number: str
    sequence: int
    kind: NumberKind = NumberKind.INVOICE


class RefundRequested(_Fact, tag="refund_requested", frozen=True, kw_only=True):
    """A finalized REFUND note owes the customer money (CN-8). The refund edge reads these and
    sends them to the provider through `RefundIssuer`; `payment_session` names the provider
    payment that paid the invoice, when one did (otherwise the refund is made by hand)."""

    note_id: uuid.UUID
    invoice_id: uuid.UUID
    amount: Decimal
    currency: str
    payment_session: str | None = None


class RefundSettled(_Fact, tag="refund_settled", frozen=True, kw_only=True):
    """What the provider answered or reported about a note's refund (CN-9)."""

    note_id: uuid.UUID
    status: RefundStatus
    reference: str | None = None
