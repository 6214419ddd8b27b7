"""Invariants of credit notes and invoice totals (CN-2, CN-5, CN-21), checked by
`invariants.check` after every step of the property tests."""

from __future__ import annotations

import uuid

from allotment.domain.credit_note_evolve import ledger_with
from allotment.domain.credit_note_rules import EMPTY_LEDGER, invoice_totals
from allotment.domain.credit_note_state import CreditNoteStatus, InvoiceLedger, NumberKind
from allotment.domain.money import ZERO
from allotment.domain.state import CustomerState

__all__ = ("check_credit_notes",)


def check_credit_notes(state: CustomerState) -> None:
    derived: dict[uuid.UUID, InvoiceLedger] = {}
    for note in state.credit_notes.values():
        if note.status is CreditNoteStatus.FINALIZED:
            derived[note.invoice_id] = ledger_with(
                derived.get(note.invoice_id, EMPTY_LEDGER), note, 1
            )
    for invoice in state.invoices.values():
        ledger = state.invoice_ledgers.get(invoice.id, EMPTY_LEDGER)
        expected = derived.get(invoice.id, EMPTY_LEDGER)
        assert (ledger.adjusted, ledger.refunded) == (expected.adjusted, expected.refunded), (
            f"invoice {invoice.id}: stale credit totals"
        )
        assert {k: v for k, v in ledger.credited.items() if v} == expected.credited, (
            f"invoice {invoice.id}: stale credited lines"
        )
        for item in invoice.items:  # CN-2
            credited = ledger.credited.get(item.id, ZERO)
            assert credited <= max(item.charge_amount, ZERO), f"line {item.id} over-credited"
        if invoice.amount < 0:
            continue  # a Tanso credit invoice owes nothing and is never credited
        totals = invoice_totals(state, invoice)
        remaining = invoice.amount - totals.adjustment_amount - totals.amount_paid  # CN-5
        assert totals.amount_remaining == remaining >= 0, f"invoice {invoice.id}: remaining"
        assert totals.amount_due == invoice.amount - totals.adjustment_amount
        assert totals.refunded_amount <= totals.amount_paid, f"invoice {invoice.id}: refunds"
    _check_sequences(state)


def _check_sequences(state: CustomerState) -> None:
    """CN-21: what the customer remembers taking is the highest it took."""
    invoices = [x.sequence for x in state.invoice_ledgers.values() if x.sequence is not None]
    notes = [n.sequence for n in state.credit_notes.values() if n.sequence is not None]
    for kind, taken in ((NumberKind.INVOICE, invoices), (NumberKind.CREDIT_NOTE, notes)):
        assert state.sequences_used.get(kind, 0) == max(taken, default=0), f"stale {kind}"
