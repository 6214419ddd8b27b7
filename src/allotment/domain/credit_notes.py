"""Credit notes: create, finalize, void, and a refund's progress (CN-1..CN-12).

`finalize_facts` is the one place a note starts crediting its invoice: the API's notes and the
notes backing Tanso's credits (`credit_backing.py`) pass through it, so both obey the same rules
and take numbers from the same sequence.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import TypeAlias, assert_never, get_args

import msgspec

from allotment.domain.context import Outcome, TurnContext
from allotment.domain.credit_note_commands import (
    CreateCreditNote,
    CreditLineRequest,
    CreditNoteCommand,
    CreditNoteShown,
    FinalizeCreditNote,
    RecordRefund,
    VoidCreditNote,
)
from allotment.domain.credit_note_evolve import CreditNoteFact, evolve_credit_note
from allotment.domain.credit_note_facts import (
    CreditNoteCreated,
    CreditNoteFinalized,
    CreditNoteVoided,
    RefundRequested,
    RefundSettled,
)
from allotment.domain.credit_note_rules import (
    EMPTY_LEDGER,
    check_lines,
    creditable,
    invoice_totals,
    note_type,
    request_digest,
)
from allotment.domain.credit_note_state import (
    CreditNote,
    CreditNoteLine,
    CreditNoteReason,
    CreditNoteStatus,
    CreditNoteType,
    NumberKind,
    RefundStatus,
)
from allotment.domain.facts import Fact, InvoiceStatusChanged
from allotment.domain.money import ZERO
from allotment.domain.payment_records import PaymentStatus
from allotment.domain.replies import Rejected, RejectionKind
from allotment.domain.state import SETTLED, CustomerState, Invoice
from allotment.domain.subscriptions import mark_invoice_paid

__all__ = ("decide_credit_note", "finalize_facts", "new_note", "preview", "show")

_NOTE_FACTS = get_args(CreditNoteFact)
_MOVED = (RefundStatus.PROCESSING, RefundStatus.SUCCEEDED)  # money left or is leaving
_Step: TypeAlias = Callable[[CustomerState, CreditNote, TurnContext], "list[Fact] | Rejected"]


def decide_credit_note(
    state: CustomerState, command: CreditNoteCommand, ctx: TurnContext
) -> Outcome:
    match command:
        case CreateCreditNote():
            return _create(state, command, ctx)
        case FinalizeCreditNote():
            return _on_note(state, command.note_id, ctx, _finalize)
        case VoidCreditNote():
            return _on_note(state, command.note_id, ctx, _void)
        case RecordRefund():
            return _on_note(state, command.note_id, ctx, _refund(command))
        case _:
            assert_never(command)


def show(state: CustomerState, note: CreditNote, *, replayed: bool = False) -> CreditNoteShown:
    invoice = state.invoices[note.invoice_id]
    totals = invoice_totals(state, invoice)
    return CreditNoteShown(note=note, invoice=totals, customer_id=state.id, replayed=replayed)


def preview(state: CustomerState, facts: Sequence[Fact]) -> CustomerState:
    """The notes, ledgers and invoices as `facts` will leave them: what a reply shows, decided
    before `evolve` runs. The rest of the state is shared, unchanged."""
    scratch = msgspec.structs.replace(
        state,
        invoices=dict(state.invoices),
        credit_notes=dict(state.credit_notes),
        credit_note_keys=dict(state.credit_note_keys),
        invoice_ledgers=dict(state.invoice_ledgers),
        sequences_used=dict(state.sequences_used),
    )
    for fact in facts:
        if isinstance(fact, _NOTE_FACTS):
            evolve_credit_note(scratch, fact)
        elif isinstance(fact, InvoiceStatusChanged):
            invoice = scratch.invoices[fact.invoice_id]
            scratch.invoices[invoice.id] = msgspec.structs.replace(invoice, status=fact.status)
    return scratch


def _answer(state: CustomerState, note_id: uuid.UUID, facts: list[Fact]) -> Outcome:
    after = preview(state, facts)
    return Outcome(show(after, after.credit_notes[note_id]), facts)


def _create(state: CustomerState, command: CreateCreditNote, ctx: TurnContext) -> Outcome:
    digest = request_digest(command)
    if command.idempotency_key is not None:
        replayed = _replay(state, command.idempotency_key, digest)
        if replayed is not None:
            return Outcome(replayed)
    checked = _check(state, command)
    if isinstance(checked, Rejected):
        return Outcome(checked)
    invoice, type_ = checked
    note = new_note(
        invoice, type_, command.reason, command.lines, ctx,
        memo=command.memo, metadata=command.metadata, number=command.number,
        idempotency_key=command.idempotency_key, request_digest=digest,
    )  # fmt: skip
    facts: list[Fact] = [CreditNoteCreated(at=ctx.now, note=note)]
    if command.process:  # CN-10: Flexprice's `process_credit_note`, true unless sent false
        finalized = finalize_facts(state, note, ctx)
        if isinstance(finalized, Rejected):
            return Outcome(finalized)
        facts += finalized
    return _answer(state, note.id, facts)


def _replay(state: CustomerState, key: str, digest: str) -> CreditNoteShown | Rejected | None:
    """CN-12: a key seen before answers its note when the request is the same, else conflicts."""
    known = state.credit_note_keys.get(key)
    if known is None:
        return None
    note = state.credit_notes[known]
    if note.request_digest == digest:
        return show(state, note, replayed=True)
    return _rejected(RejectionKind.CONFLICT, "idempotency_key", "was used with another request.")


def _check(
    state: CustomerState, command: CreateCreditNote
) -> tuple[Invoice, CreditNoteType] | Rejected:
    """CN-1..CN-4 for a new note."""
    invoice = state.invoices.get(command.invoice_id)
    if invoice is None:
        return _rejected(RejectionKind.NOT_FOUND, "invoice_id", "no such invoice.")
    if command.currency is not None and command.currency.upper() != invoice.currency:
        return _rejected(RejectionKind.INVALID, "currency",
            f"must be the invoice's currency, {invoice.currency}.")  # fmt: skip
    type_ = note_type(invoice)
    if isinstance(type_, Rejected):
        return type_
    ledger = state.invoice_ledgers.get(invoice.id, EMPTY_LEDGER)
    refused = check_lines(invoice, ledger, command.lines)
    return refused if refused is not None else (invoice, type_)


def new_note(
    invoice: Invoice,
    type_: CreditNoteType,
    reason: CreditNoteReason,
    requests: Sequence[CreditLineRequest],
    ctx: TurnContext,
    *,
    memo: str | None = None,
    metadata: dict[str, str] | None = None,
    number: str | None = None,
    idempotency_key: str | None = None,
    request_digest: str | None = None,
    tanso_invoice_id: uuid.UUID | None = None,
) -> CreditNote:
    """A DRAFT note crediting `requests` (already checked) on `invoice`."""
    items = {item.id: item for item in invoice.items}
    lines = tuple(
        CreditNoteLine(
            id=ctx.new_id(),
            invoice_line_id=request.invoice_line_id,
            amount=request.amount,
            display_name=request.display_name or items[request.invoice_line_id].description,
            metadata=dict(request.metadata),
        )
        for request in requests
    )
    return CreditNote(
        id=ctx.new_id(), invoice_id=invoice.id, subscription_id=invoice.subscription_id,
        type=type_, status=CreditNoteStatus.DRAFT, reason=reason, currency=invoice.currency,
        lines=lines, total=sum((line.amount for line in lines), ZERO), created_at=ctx.now,
        modified_at=ctx.now, memo=memo, metadata=dict(metadata or {}),
        idempotency_key=idempotency_key, request_digest=request_digest, number=number,
        tanso_invoice_id=tanso_invoice_id,
    )  # fmt: skip


def finalize_facts(
    state: CustomerState, note: CreditNote, ctx: TurnContext, *, refund: bool = True
) -> list[Fact] | Rejected:
    """CN-6..CN-8, CN-20: the facts that make `note` credit its invoice, checked against the
    invoice as it is now. `refund` False: the credit is settled by a Tanso invoice that nets
    it (INV-51), so no refund is owed."""
    invoice = state.invoices[note.invoice_id]
    type_ = note_type(invoice)
    if isinstance(type_, Rejected):
        return type_
    ledger = state.invoice_ledgers.get(invoice.id, EMPTY_LEDGER)
    refused = check_lines(invoice, ledger, note.lines)
    if refused is not None:
        return refused
    number, sequence = note.number, None
    if number is None:  # CN-20, CN-22: a number given by the caller takes none
        sequence, number = ctx.numbers.allocate(NumberKind.CREDIT_NOTE)
    facts: list[Fact] = [CreditNoteFinalized(
        at=ctx.now, note_id=note.id, note_type=type_, number=number, sequence=sequence
    )]  # fmt: skip
    if type_ is CreditNoteType.REFUND and refund:  # CN-8
        facts.append(RefundRequested(
            at=ctx.now, note_id=note.id, invoice_id=invoice.id, amount=note.total,
            currency=invoice.currency, payment_session=_paid_through(state, invoice.id),
        ))  # fmt: skip
    if type_ is CreditNoteType.ADJUSTMENT and note.total == creditable(invoice, ledger):
        facts += mark_invoice_paid(state, invoice.id, ctx).facts  # CN-7: as if marked paid
    return facts


def _paid_through(state: CustomerState, invoice_id: uuid.UUID) -> str | None:
    """The provider payment (checkout session) that paid the invoice, if one did."""
    for session, record in state.payments.items():
        if record.invoice_id == invoice_id and record.status is PaymentStatus.APPLIED:
            return session
    return None


def _on_note(state: CustomerState, note_id: uuid.UUID, ctx: TurnContext, step: _Step) -> Outcome:
    note = state.credit_notes.get(note_id)
    if note is None:
        return Outcome(_rejected(RejectionKind.NOT_FOUND, "id", "no such credit note."))
    facts = step(state, note, ctx)
    if isinstance(facts, Rejected):
        return Outcome(facts)
    return _answer(state, note.id, facts)


def _finalize(state: CustomerState, note: CreditNote, ctx: TurnContext) -> list[Fact] | Rejected:
    if note.status is CreditNoteStatus.VOIDED:  # CN-11
        return _rejected(RejectionKind.INVALID, "id", "a voided credit note cannot be finalized.")
    if note.status is CreditNoteStatus.FINALIZED:
        return []  # CN-10: finalizing twice changes nothing
    return finalize_facts(state, note, ctx)


def _void(state: CustomerState, note: CreditNote, ctx: TurnContext) -> list[Fact] | Rejected:
    """CN-11: a voided note gives back what it credited, unless that was already acted on:
    money refunded (or being refunded), or an unpaid invoice since paid on the lower amount."""
    if note.status is CreditNoteStatus.VOIDED:
        return []
    if note.status is CreditNoteStatus.FINALIZED:
        if note.refund_status in _MOVED:
            return _rejected(RejectionKind.INVALID, "id",
                f"its refund is {note.refund_status}; it cannot be voided.")  # fmt: skip
        paid_since = state.invoices[note.invoice_id].status in SETTLED
        if note.type is CreditNoteType.ADJUSTMENT and paid_since:
            return _rejected(RejectionKind.INVALID, "id",
                "the invoice it adjusted has been paid since; it cannot be voided.")  # fmt: skip
    return [CreditNoteVoided(at=ctx.now, note_id=note.id)]


def _refund(command: RecordRefund) -> _Step:
    def step(state: CustomerState, note: CreditNote, ctx: TurnContext) -> list[Fact] | Rejected:
        """CN-9: only a finalized note owing a refund has one; a succeeded refund is final."""
        if note.status is not CreditNoteStatus.FINALIZED or note.refund_status is None:
            return _rejected(RejectionKind.INVALID, "id", "the credit note owes no refund.")
        if note.refund_status is RefundStatus.SUCCEEDED or (
            note.refund_status is command.status
            and command.reference in (None, note.refund_reference)
        ):
            return []
        return [RefundSettled(
            at=ctx.now, note_id=note.id, status=command.status, reference=command.reference
        )]  # fmt: skip

    return step


def _rejected(kind: RejectionKind, field: str, message: str) -> Rejected:
    return Rejected(kind=kind, message=f"{field}: {message}", field=field)
