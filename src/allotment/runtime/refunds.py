"""The refund desk (CN-47): issues the refunds finalized REFUND notes owe through the
`RefundIssuer`, exactly once across crashes.

For each note whose invoice a provider payment paid, with `refund_status` PENDING or
PROCESSING: PROCESSING is journalled before the provider is called, then the answer. A crash
anywhere leaves the note PENDING or PROCESSING, and the next run (a later request, or the
server's start) calls the provider again with the same idempotency key, the note's id: the
provider answers the refund it made before instead of making a second one. A note that no
provider payment paid is refunded by hand and stays PENDING until reported.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from allotment.domain.catalog import Catalog
from allotment.domain.credit_note_commands import RecordRefund
from allotment.domain.credit_note_facts import RefundRequested
from allotment.domain.credit_note_state import CreditNoteStatus, RefundStatus
from allotment.domain.payment_records import PaymentStatus
from allotment.domain.state import CustomerState
from allotment.payments.ports import PaymentProviderError
from allotment.runtime.ports import RefundIssuer, Shard

__all__ = ("issue_owed", "refund_key")

logger = logging.getLogger("allotment.refunds")
_OPEN = (RefundStatus.PENDING, RefundStatus.PROCESSING)


def refund_key(note_id: uuid.UUID) -> str:
    return f"allotment-refund-{note_id}"


def _owed(state: CustomerState, catalog: Catalog, now: datetime) -> list[RefundRequested]:
    owed = []
    for note in state.credit_notes.values():
        if note.status is not CreditNoteStatus.FINALIZED or note.refund_status not in _OPEN:
            continue
        session = next((s for s, record in state.payments.items()
                        if record.invoice_id == note.invoice_id
                        and record.status is PaymentStatus.APPLIED), None)  # fmt: skip
        if session is not None:
            owed.append(RefundRequested(
                at=note.modified_at, note_id=note.id, invoice_id=note.invoice_id,
                amount=note.total, currency=note.currency, payment_session=session,
            ))  # fmt: skip
    return owed


async def issue_owed(shard: Shard, issuer: RefundIssuer, note_id: uuid.UUID | None = None) -> int:
    """Issue every refund the shard's notes owe a provider (only those of `note_id`'s customer
    when given); how many were answered. A provider failure leaves its note PROCESSING, for
    the next run."""
    if note_id is None:
        everyone = await shard.all_customers(_owed)
    else:
        everyone = [await shard.read_on_owner(note_id, _owed) or []]
    answered = 0
    for owed in everyone:
        for request in owed:
            await shard.credit_note(RecordRefund(note_id=request.note_id,
                                                 status=RefundStatus.PROCESSING))  # fmt: skip
            try:
                answer = await issuer.issue(request, refund_key(request.note_id))
            except PaymentProviderError as error:
                logger.warning("refund of credit note %s not issued: %s", request.note_id, error)
                continue
            await shard.credit_note(RecordRefund(
                note_id=request.note_id, status=answer.status, reference=answer.reference
            ))  # fmt: skip
            answered += 1
    return answered
