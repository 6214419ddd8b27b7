"""Refunds owed by REFUND credit notes, sent to the provider (CN-8, CN-9).

For each finalized note whose refund is PENDING (or PROCESSING with no provider refund id,
when a crash or a provider failure came between the provider call and its answer), a turn
first records PROCESSING, so the note can no longer be voided (CN-11); then the `RefundIssuer`
is called with a key stable per note, so the provider refunds once however often this runs;
then its answer is recorded. A refund the provider answered with its id is never asked for
again (CN-48): it exists, its progress comes by webhook, and the provider's record of the key
does not last forever (Stripe's: 24 hours), while a refund can stay pending for days.
"""

from __future__ import annotations

import uuid

from allotment.domain.credit_note_commands import RecordRefund
from allotment.domain.credit_note_facts import RefundRequested
from allotment.domain.credit_note_state import CreditNote, CreditNoteStatus, RefundStatus
from allotment.domain.replies import Rejected
from allotment.domain.state import CustomerState
from allotment.runtime.ports import RefundIssuer, Shard

__all__ = ("issue_refunds", "refund_key")

_OPEN = (RefundStatus.PENDING, RefundStatus.PROCESSING)


def refund_key(note: CreditNote) -> str:
    return f"allotment-credit-note-{note.id}"


async def issue_refunds(
    shard: Shard,
    issuer: RefundIssuer,
    *,
    note_id: uuid.UUID | None = None,
    provider_paid_only: bool = False,
) -> int:
    """Send every open refund of the environment; returns how many were sent. `note_id`: only
    the refunds of that note's customer. `provider_paid_only`: leave the notes no provider
    payment paid (refunded by hand, CN-47) PENDING, untouched."""

    def open_refunds(state: CustomerState, _catalog: object, _now: object) -> list[CreditNote]:
        return [
            n
            for n in state.credit_notes.values()
            if n.status is CreditNoteStatus.FINALIZED and n.refund_status in _OPEN
            and n.refund_reference is None
            and (n.refund_payment is not None or not provider_paid_only)
        ]  # fmt: skip

    if note_id is None:
        owed = await shard.all_customers(open_refunds)
    else:
        owed = [await shard.read_on_owner(note_id, open_refunds) or []]
    sent = 0
    for note in (note for notes in owed for note in notes):
        started = await shard.credit_note(
            RecordRefund(note_id=note.id, status=RefundStatus.PROCESSING)
        )
        if isinstance(started, Rejected):  # voided meanwhile: nothing is owed any more
            continue
        request = RefundRequested(
            at=note.finalized_at or note.created_at, note_id=note.id, invoice_id=note.invoice_id,
            amount=note.total, currency=note.currency, payment_session=note.refund_payment,
        )  # fmt: skip
        answer = await issuer.issue(request, refund_key(note))
        status = RecordRefund(note_id=note.id, status=answer.status, reference=answer.reference)
        await shard.credit_note(status)
        sent += 1
    return sent
