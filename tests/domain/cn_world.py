"""A customer with invoices to credit, for the credit-note tests (docs/credit-notes.md)."""

from __future__ import annotations

import uuid
from decimal import Decimal

from allotment.domain.commands import MarkInvoicePaid, Subscribe
from allotment.domain.credit_note_commands import (
    CreateCreditNote,
    CreditLineRequest,
    CreditNoteShown,
    InvoiceTotals,
)
from allotment.domain.credit_note_rules import invoice_totals
from allotment.domain.credit_note_state import CreditNote, CreditNoteReason
from allotment.domain.replies import Rejected, Reply, Subscribed
from allotment.domain.state import Invoice
from tests.domain.harness import World

D = Decimal


class CnWorld(World):
    def subscribe(self, plan_key: str = "starter_monthly") -> Invoice:
        reply = self.run(Subscribe(plan_id=self.plan_id(plan_key)))
        assert isinstance(reply, Subscribed), reply
        return reply.invoice

    def pay(self, invoice: Invoice) -> None:
        self.run(MarkInvoicePaid(invoice_id=invoice.id))

    def invoice(self, invoice_id: uuid.UUID) -> Invoice:
        return self.state.invoices[invoice_id]

    def totals(self, invoice: Invoice) -> InvoiceTotals:
        return invoice_totals(self.state, self.invoice(invoice.id))

    def credit(
        self,
        invoice: Invoice,
        *amounts: str,
        reason: CreditNoteReason = CreditNoteReason.BILLING_ERROR,
        process: bool = True,
        key: str | None = None,
        line: int = 0,
        **extra: object,
    ) -> Reply:
        lines = tuple(
            CreditLineRequest(invoice_line_id=invoice.items[line + i].id, amount=D(amount))
            for i, amount in enumerate(amounts)
        )
        command = CreateCreditNote(
            invoice_id=invoice.id,
            reason=reason,
            lines=lines,
            process=process,
            idempotency_key=key,
            **extra,  # type: ignore[arg-type]
        )
        return self.run(command)

    def note(self, reply: Reply) -> CreditNote:
        assert isinstance(reply, CreditNoteShown), reply
        return self.state.credit_notes[reply.note.id]


def rejected(reply: Reply, field: str | None = None) -> Rejected:
    assert isinstance(reply, Rejected), reply
    if field is not None:
        assert reply.field == field, reply
    return reply
