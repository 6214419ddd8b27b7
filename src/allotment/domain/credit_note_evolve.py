"""Apply the facts of credit notes, refunds and numbers (issue 18). The only code that changes
`CustomerState.credit_notes`, `credit_note_keys`, `invoice_ledgers` and `sequences_used`."""

from __future__ import annotations

from typing import assert_never

import msgspec

from allotment.domain.credit_note_facts import (
    CreditNoteCreated,
    CreditNoteFinalized,
    CreditNoteVoided,
    InvoiceNumbered,
    RefundRequested,
    RefundSettled,
)
from allotment.domain.credit_note_state import (
    CreditNote,
    CreditNoteStatus,
    CreditNoteType,
    InvoiceLedger,
    NumberKind,
    RefundStatus,
)
from allotment.domain.money import ZERO
from allotment.domain.state import CustomerState

__all__ = ("CreditNoteFact", "evolve_credit_note", "ledger_with")

CreditNoteFact = (
    CreditNoteCreated
    | CreditNoteFinalized
    | CreditNoteVoided
    | InvoiceNumbered
    | RefundRequested
    | RefundSettled
)


def evolve_credit_note(state: CustomerState, fact: CreditNoteFact) -> None:
    match fact:
        case CreditNoteCreated():
            state.credit_notes[fact.note.id] = fact.note
            if fact.note.idempotency_key is not None:
                state.credit_note_keys[fact.note.idempotency_key] = fact.note.id
        case CreditNoteFinalized():
            note = msgspec.structs.replace(
                state.credit_notes[fact.note_id],
                status=CreditNoteStatus.FINALIZED,
                type=fact.note_type,
                number=fact.number,
                sequence=fact.sequence,
                finalized_at=fact.at,
                modified_at=fact.at,
            )
            state.credit_notes[note.id] = note
            _credit(state, note, 1)
            if fact.sequence is not None:
                _used(state, NumberKind.CREDIT_NOTE, fact.sequence)
        case CreditNoteVoided():
            note = state.credit_notes[fact.note_id]
            if note.status is CreditNoteStatus.FINALIZED:
                _credit(state, note, -1)  # CN-11: what it credited is given back
            state.credit_notes[note.id] = msgspec.structs.replace(
                note, status=CreditNoteStatus.VOIDED, voided_at=fact.at, modified_at=fact.at
            )
        case InvoiceNumbered():
            ledger = state.invoice_ledgers.get(fact.invoice_id, InvoiceLedger())
            state.invoice_ledgers[fact.invoice_id] = msgspec.structs.replace(
                ledger, number=fact.number, sequence=fact.sequence
            )
            _used(state, fact.kind, fact.sequence)
        case RefundRequested():
            _refund(state, fact, RefundStatus.PENDING, None)
            note = state.credit_notes[fact.note_id]
            state.credit_notes[note.id] = msgspec.structs.replace(
                note, refund_payment=fact.payment_session
            )
        case RefundSettled():
            _refund(state, fact, fact.status, fact.reference)
        case _:
            assert_never(fact)


def ledger_with(ledger: InvoiceLedger, note: CreditNote, sign: int) -> InvoiceLedger:
    """`ledger` with `note` credited (sign 1) or given back (sign -1)."""
    credited = dict(ledger.credited)
    for line in note.lines:
        amount = credited.get(line.invoice_line_id, ZERO) + sign * line.amount
        if amount:
            credited[line.invoice_line_id] = amount
        else:
            credited.pop(line.invoice_line_id, None)
    change = sign * note.total
    if note.type is CreditNoteType.ADJUSTMENT:
        return msgspec.structs.replace(ledger, adjusted=ledger.adjusted + change, credited=credited)
    return msgspec.structs.replace(ledger, refunded=ledger.refunded + change, credited=credited)


def _credit(state: CustomerState, note: CreditNote, sign: int) -> None:
    ledger = state.invoice_ledgers.get(note.invoice_id, InvoiceLedger())
    state.invoice_ledgers[note.invoice_id] = ledger_with(ledger, note, sign)


def _used(state: CustomerState, kind: NumberKind, sequence: int) -> None:
    """CN-21: the highest sequence of `kind` this customer's facts took."""
    if sequence > state.sequences_used.get(kind, 0):
        state.sequences_used[kind] = sequence


def _refund(
    state: CustomerState,
    fact: RefundRequested | RefundSettled,
    status: RefundStatus,
    reference: str | None,
) -> None:
    note = state.credit_notes[fact.note_id]
    state.credit_notes[note.id] = msgspec.structs.replace(
        note,
        refund_status=status,
        refund_reference=reference or note.refund_reference,
        modified_at=fact.at,
    )
