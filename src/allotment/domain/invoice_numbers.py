"""CN-20: an invoice takes the next number of its environment when it is finalized, that is
when it first awaits payment or is settled; a PENDING invoice (in arrears, still counting
usage) has none yet, and one cancelled before it was finalized never gets one.

It runs after the facts of a turn are applied, like the notifications, so every way an
invoice is issued or finalized (subscribing, renewing, a period's end, a plan change, a
cancellation's credit, a payment) is numbered by this one rule.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from allotment.domain.context import TurnContext
from allotment.domain.credit_note_state import NumberKind
from allotment.domain.facts import (
    Fact,
    InvoiceIssued,
    InvoiceNumbered,
    InvoiceRevised,
    InvoiceStatusChanged,
)
from allotment.domain.state import PAYABLE, SETTLED, CustomerState

__all__ = ("FINALIZED", "invoice_number_facts")

FINALIZED = PAYABLE | SETTLED


def invoice_number_facts(
    state: CustomerState, facts: Sequence[Fact], ctx: TurnContext
) -> list[Fact]:
    """The `InvoiceNumbered` facts of the invoices `facts` (applied to `state`) finalized, in
    the order the facts touched them."""
    touched: dict[uuid.UUID, None] = {}
    for fact in facts:
        if isinstance(fact, InvoiceIssued | InvoiceRevised):
            touched[fact.invoice.id] = None
        elif isinstance(fact, InvoiceStatusChanged):
            touched[fact.invoice_id] = None
    numbered: list[Fact] = []
    for invoice_id in touched:
        invoice = state.invoices[invoice_id]
        ledger = state.invoice_ledgers.get(invoice_id)
        if invoice.status not in FINALIZED or (ledger is not None and ledger.number is not None):
            continue
        sequence, number = ctx.numbers.allocate(NumberKind.INVOICE)
        numbered.append(
            InvoiceNumbered(at=ctx.now, invoice_id=invoice_id, number=number, sequence=sequence)
        )
    return numbered
