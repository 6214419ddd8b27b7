"""Tanso's credits as credit notes (CN-30, CN-31).

Tanso expresses a credit as an invoice line: INV-50's CREDIT invoice for an immediate
cancellation, INV-51's "Credit for unused <plan>" line of an upgrade's adjustment invoice. Each
is backed, in the same turn, by finalized REFUND notes on the money the customer actually paid
for the current period, so the Flexprice view shows what was credited against which lines.
Tanso's invoices are unchanged; the note names the invoice that carries the credit.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from allotment.domain.context import TurnContext
from allotment.domain.credit_note_commands import CreditLineRequest
from allotment.domain.credit_note_facts import CreditNoteCreated
from allotment.domain.credit_note_rules import EMPTY_LEDGER, creditable
from allotment.domain.credit_note_state import CreditNoteReason, CreditNoteType
from allotment.domain.credit_notes import finalize_facts, new_note
from allotment.domain.facts import Fact
from allotment.domain.money import ZERO
from allotment.domain.replies import Rejected
from allotment.domain.state import SETTLED, CustomerState, Invoice, Subscription

__all__ = ("backing_notes",)


def backing_notes(
    state: CustomerState,
    sub: Subscription,
    credit: Decimal,
    reason: CreditNoteReason,
    carrier: uuid.UUID,
    ctx: TurnContext,
    *,
    refund: bool,
) -> list[Fact]:
    """Finalized notes crediting `credit` on the current period's paid invoices of `sub`,
    oldest first, line by line within what each line and invoice has left (CN-2). `carrier`
    is the Tanso invoice with the credit; `refund` False when that invoice nets it (INV-51)."""
    facts: list[Fact] = []
    remaining = credit
    for invoice in _paid_this_period(state, sub):
        if remaining <= 0:
            break
        requests, remaining = _take(state, invoice, remaining)
        if not requests:
            continue
        note = new_note(
            invoice, CreditNoteType.REFUND, reason, requests, ctx, tanso_invoice_id=carrier
        )
        finalized = finalize_facts(state, note, ctx, refund=refund)
        if isinstance(finalized, Rejected):  # `_take` stayed within every limit it checks
            raise AssertionError(f"backing note refused: {finalized.message}")
        facts += [CreditNoteCreated(at=ctx.now, note=note), *finalized]
    return facts


def _paid_this_period(state: CustomerState, sub: Subscription) -> list[Invoice]:
    """The invoices that took money for the current period: its INITIAL or RENEWAL invoice and
    the paid adjustments of upgrades within it. AMB-18: only money received is credited."""
    return [
        invoice
        for invoice in state.invoices.values()
        if invoice.subscription_id == sub.id
        and invoice.status in SETTLED
        and invoice.amount > 0
        and sub.current_period_start <= invoice.period_start < sub.current_period_end
    ]


def _take(
    state: CustomerState, invoice: Invoice, wanted: Decimal
) -> tuple[list[CreditLineRequest], Decimal]:
    ledger = state.invoice_ledgers.get(invoice.id, EMPTY_LEDGER)
    left = creditable(invoice, ledger)
    requests: list[CreditLineRequest] = []
    for item in invoice.items:
        amount = min(wanted, left, item.charge_amount - ledger.credited.get(item.id, ZERO))
        if amount > 0:
            requests.append(CreditLineRequest(invoice_line_id=item.id, amount=amount))
            wanted -= amount
            left -= amount
    return requests, wanted
