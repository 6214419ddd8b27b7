"""Credit notes: one table or example per rule of docs/credit-notes.md (CN-1..CN-12)."""

from __future__ import annotations

import uuid

import pytest

from allotment.domain.commands import CancelSubscription
from allotment.domain.credit_note_commands import (
    CreateCreditNote,
    CreditLineRequest,
    CreditNoteShown,
    FinalizeCreditNote,
    InvoicePaymentStatus,
    RecordRefund,
    VoidCreditNote,
)
from allotment.domain.credit_note_facts import CreditNoteFinalized, RefundRequested
from allotment.domain.credit_note_state import (
    CreditNoteReason,
    CreditNoteStatus,
    CreditNoteType,
    RefundStatus,
)
from allotment.domain.replies import RejectionKind
from allotment.domain.state import AccessState, CancelMode, InvoiceStatus
from tests.domain.cn_world import CnWorld, D, rejected


@pytest.fixture
def world() -> CnWorld:
    return CnWorld()


@pytest.mark.parametrize(
    ("amounts", "field"),
    [
        (("0",), "line_items[0].amount"),  # CN-1: positive
        (("-1",), "line_items[0].amount"),
        (("1.005",), "line_items[0].amount"),  # CN-1: the currency's minor unit
        (("19.01",), "line_items[0].amount"),  # CN-2: more than the line
        ((), "line_items"),  # CN-1: at least one line
    ],
)
def test_cn1_cn2_bad_lines_are_refused_and_change_nothing(
    world: CnWorld, amounts: tuple[str, ...], field: str
) -> None:
    invoice = world.subscribe()
    before = len(world.facts)
    reply = rejected(world.credit(invoice, *amounts), field)
    assert reply.kind is RejectionKind.INVALID
    assert len(world.facts) == before and not world.state.credit_notes


def test_cn1_a_line_of_another_invoice_is_refused(world: CnWorld) -> None:
    first = world.subscribe()
    other = world.subscribe("pro_monthly")
    lines = (CreditLineRequest(invoice_line_id=other.items[0].id, amount=D(1)),)
    command = CreateCreditNote(invoice_id=first.id, reason=CreditNoteReason.DUPLICATE, lines=lines)
    rejected(world.run(command), "line_items[0].invoice_line_item_id")
    missing = CreateCreditNote(
        invoice_id=uuid.uuid4(), reason=CreditNoteReason.DUPLICATE, lines=lines
    )
    assert rejected(world.run(missing), "invoice_id").kind is RejectionKind.NOT_FOUND


def test_cn2_a_lines_credited_total_never_passes_the_line(world: CnWorld) -> None:
    invoice = world.subscribe()  # one line of 19.00, unpaid
    world.note(world.credit(invoice, "12.00"))
    rejected(world.credit(invoice, "7.01"), "line_items[0].amount")
    assert world.totals(invoice).credited_lines == {invoice.items[0].id: D("12.00")}
    world.note(world.credit(invoice, "7.00"))  # exactly what is left
    assert world.totals(invoice).amount_due == 0


def test_cn3_type_follows_the_payment_state_and_is_decided_again_at_finalization(
    world: CnWorld,
) -> None:
    invoice = world.subscribe()
    unpaid = world.note(world.credit(invoice, "1.00"))
    assert unpaid.type is CreditNoteType.ADJUSTMENT
    draft = world.note(world.credit(invoice, "2.00", process=False))
    assert draft.status is CreditNoteStatus.DRAFT and draft.number is None
    world.pay(invoice)
    paid = world.note(world.credit(invoice, "3.00"))
    assert paid.type is CreditNoteType.REFUND
    world.run(FinalizeCreditNote(note_id=draft.id))
    assert world.state.credit_notes[draft.id].type is CreditNoteType.REFUND


@pytest.mark.parametrize("status", [InvoiceStatus.VOID, InvoiceStatus.CANCELLED])
def test_cn4_no_notes_on_voided_or_cancelled_invoices(world: CnWorld, status: str) -> None:
    if status is InvoiceStatus.VOID:
        invoice = world.subscribe()  # DUE: an immediate cancellation voids it (SUB-46 a)
    else:
        invoice = world.subscribe("usage_monthly")  # PENDING: cancelled (SUB-46 b)
    cancel = CancelSubscription(subscription_id=invoice.subscription_id, mode=CancelMode.IMMEDIATE)
    world.run(cancel)
    assert world.invoice(invoice.id).status is status
    line = invoice.items[0].id if invoice.items else uuid.uuid4()  # PENDING has no lines yet
    lines = (CreditLineRequest(invoice_line_id=line, amount=D("0.01")),)
    command = CreateCreditNote(
        invoice_id=invoice.id, reason=CreditNoteReason.DUPLICATE, lines=lines
    )
    rejected(world.run(command), "invoice_id")


def test_cn4_the_currency_is_the_invoices(world: CnWorld) -> None:
    invoice = world.subscribe()
    rejected(world.credit(invoice, "1.00", currency="EUR"), "currency")
    note = world.note(world.credit(invoice, "1.00", currency="usd"))
    assert note.currency == invoice.currency == "USD"


def test_cn5_cn6_an_adjustment_lowers_what_is_due(world: CnWorld) -> None:
    invoice = world.subscribe()
    world.note(world.credit(invoice, "4.00"))
    totals = world.totals(invoice)
    assert (totals.total, totals.amount_due, totals.amount_paid) == (D(19), D(15), D(0))
    assert (totals.adjustment_amount, totals.amount_remaining) == (D(4), D(15))
    assert totals.payment_status is InvoicePaymentStatus.PENDING
    assert world.invoice(invoice.id).amount == D(19)  # Tanso's amount is unchanged
    world.pay(invoice)
    totals = world.totals(invoice)
    assert (totals.amount_paid, totals.amount_remaining) == (D(15), D(0))
    assert totals.creditable == D(15)


def test_cn7_an_adjustment_to_zero_settles_the_invoice_as_mark_paid_does(world: CnWorld) -> None:
    invoice = world.subscribe()  # the prepaid initial invoice: no access until paid (SUB-3)
    sub_id = invoice.subscription_id
    assert world.state.subscriptions[sub_id].access is AccessState.PENDING_PAYMENT
    world.note(world.credit(invoice, "19.00", reason=CreditNoteReason.SERVICE_ISSUE))
    assert world.invoice(invoice.id).status is InvoiceStatus.PAID
    assert world.state.subscriptions[sub_id].access is AccessState.ACTIVE
    totals = world.totals(invoice)
    assert (totals.amount_due, totals.amount_paid, totals.amount_remaining) == (D(0), D(0), D(0))


def test_cn8_cn9_a_refund_is_owed_then_tracked(world: CnWorld) -> None:
    invoice = world.subscribe()
    world.pay(invoice)
    note = world.note(world.credit(invoice, "5.00"))
    requested = [f for f in world.facts if isinstance(f, RefundRequested)]
    assert [(r.note_id, r.amount, r.currency) for r in requested] == [(note.id, D(5), "USD")]
    assert note.refund_status is RefundStatus.PENDING
    totals = world.totals(invoice)
    assert (totals.refunded_amount, totals.amount_paid) == (D(5), D(19))
    assert totals.payment_status is InvoicePaymentStatus.PARTIALLY_REFUNDED
    world.run(RecordRefund(note_id=note.id, status=RefundStatus.PROCESSING, reference="re_1"))
    world.run(RecordRefund(note_id=note.id, status=RefundStatus.SUCCEEDED, reference="re_1"))
    world.run(RecordRefund(note_id=note.id, status=RefundStatus.FAILED))  # succeeded is final
    shown = world.state.credit_notes[note.id]
    assert (shown.refund_status, shown.refund_reference) == (RefundStatus.SUCCEEDED, "re_1")
    adjustment = world.note(world.credit(world.subscribe("pro_monthly"), "1.00"))
    rejected(world.run(RecordRefund(note_id=adjustment.id, status=RefundStatus.SUCCEEDED)), "id")


def test_cn10_a_draft_credits_nothing_until_finalized_and_finalizing_twice_is_one(
    world: CnWorld,
) -> None:
    invoice = world.subscribe()
    draft = world.note(world.credit(invoice, "19.00", process=False))
    assert world.totals(invoice).amount_due == D(19)
    world.run(FinalizeCreditNote(note_id=draft.id))
    before = len(world.facts)
    again = world.run(FinalizeCreditNote(note_id=draft.id))
    assert isinstance(again, CreditNoteShown) and len(world.facts) == before
    finalized = [f for f in world.facts if isinstance(f, CreditNoteFinalized)]
    assert [f.note_id for f in finalized] == [draft.id]


def test_cn10_finalizing_a_draft_checks_the_invoice_as_it_is_then(world: CnWorld) -> None:
    invoice = world.subscribe()
    draft = world.note(world.credit(invoice, "15.00", process=False))
    world.note(world.credit(invoice, "5.00"))
    rejected(world.run(FinalizeCreditNote(note_id=draft.id)), "line_items[0].amount")


def test_cn11_a_voided_note_gives_back_what_it_credited(world: CnWorld) -> None:
    invoice = world.subscribe()
    note = world.note(world.credit(invoice, "6.00"))
    world.run(VoidCreditNote(note_id=note.id))
    totals = world.totals(invoice)
    assert (totals.amount_due, totals.adjustment_amount) == (D(19), D(0))
    assert totals.credited_lines == {}
    voided = world.state.credit_notes[note.id]
    assert voided.status is CreditNoteStatus.VOIDED and voided.voided_at == world.now
    rejected(world.run(FinalizeCreditNote(note_id=note.id)), "id")
    draft = world.note(world.credit(invoice, "1.00", process=False))
    world.run(VoidCreditNote(note_id=draft.id))
    assert world.totals(invoice).amount_due == D(19)


@pytest.mark.parametrize("case", ["refund_sent", "invoice_paid_since"])
def test_cn11_a_credit_already_acted_on_cannot_be_voided(world: CnWorld, case: str) -> None:
    invoice = world.subscribe()
    if case == "refund_sent":
        world.pay(invoice)
        note = world.note(world.credit(invoice, "2.00"))
        world.run(RecordRefund(note_id=note.id, status=RefundStatus.PROCESSING))
    else:
        note = world.note(world.credit(invoice, "2.00"))
        world.pay(invoice)
    rejected(world.run(VoidCreditNote(note_id=note.id)), "id")
    assert world.state.credit_notes[note.id].status is CreditNoteStatus.FINALIZED


def test_cn12_an_idempotency_key_returns_its_note_or_conflicts(world: CnWorld) -> None:
    invoice = world.subscribe()
    first = world.credit(invoice, "3.00", key="k1")
    before = len(world.facts)
    again = world.credit(invoice, "3.0", key="k1")  # the same amount, spelled otherwise
    assert isinstance(first, CreditNoteShown) and isinstance(again, CreditNoteShown)
    assert again.replayed and again.note.id == first.note.id and len(world.facts) == before
    conflict = rejected(world.credit(invoice, "4.00", key="k1"), "idempotency_key")
    assert conflict.kind is RejectionKind.CONFLICT
    assert world.totals(invoice).adjustment_amount == D(3)
