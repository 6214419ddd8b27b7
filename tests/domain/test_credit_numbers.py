"""Numbers (CN-20..CN-23) and Tanso's credits as notes (CN-30, CN-31)."""

from __future__ import annotations

from datetime import timedelta

from allotment.domain.commands import CancelSubscription, ChangePlan
from allotment.domain.credit_note_commands import FinalizeCreditNote
from allotment.domain.credit_note_facts import (
    CreditNoteFinalized,
    InvoiceNumbered,
    RefundRequested,
)
from allotment.domain.credit_note_state import (
    CreditNoteReason,
    CreditNoteStatus,
    CreditNoteType,
    NumberKind,
)
from allotment.domain.facts import Fact
from allotment.domain.state import CancelMode, ChangeType, InvoiceStatus, InvoiceType
from allotment.runtime.numbering import Sequences
from tests.domain.cn_world import CnWorld


def _numbers(facts: list[Fact]) -> list[str]:
    return [f.number for f in facts if isinstance(f, InvoiceNumbered | CreditNoteFinalized)]


def test_cn20_invoices_are_numbered_when_finalized_and_notes_when_finalized() -> None:
    world = CnWorld()
    due = world.subscribe()  # IN_ADVANCE: DUE at once, so finalized
    pending = world.subscribe("usage_monthly")  # IN_ARREARS: PENDING, not yet finalized
    assert world.state.invoice_ledgers[due.id].number == "INV-000001"
    assert pending.id not in world.state.invoice_ledgers
    draft = world.note(world.credit(due, "1.00", process=False))
    assert draft.number is None
    world.note(world.credit(due, "2.00"))
    world.run(FinalizeCreditNote(note_id=draft.id))
    assert world.state.credit_notes[draft.id].number == "CN-000002"
    world.advance(32 * 86_400)  # the arrears period ends: its invoice is finalized
    world.run(FinalizeCreditNote(note_id=draft.id))
    numbers = _numbers(world.facts)
    invoices = sorted(n for n in numbers if n.startswith("INV-"))
    assert invoices == [f"INV-{i:06d}" for i in range(1, len(invoices) + 1)]
    assert pending.id in world.state.invoice_ledgers
    assert sorted(n for n in numbers if n.startswith("CN-")) == ["CN-000001", "CN-000002"]


def test_cn21_numbers_handed_out_by_a_turn_that_journalled_nothing_are_taken_again() -> None:
    sequences = Sequences({NumberKind.INVOICE: "F-", NumberKind.CREDIT_NOTE: "C-"})
    assert sequences.allocate(NumberKind.INVOICE) == (1, "F-000001")
    sequences.settle()  # the turn was refused: nothing journalled
    assert sequences.allocate(NumberKind.INVOICE) == (1, "F-000001")
    sequences.observe([])  # ... nor this one
    first = sequences.allocate(NumberKind.CREDIT_NOTE)
    second = sequences.allocate(NumberKind.CREDIT_NOTE)  # one turn, two numbers
    assert (first, second) == ((1, "C-000001"), (2, "C-000002"))
    world = CnWorld()
    world.subscribe()
    sequences.observe(world.facts)  # journalled: INV sequence 1
    assert sequences.allocate(NumberKind.INVOICE) == (2, "F-000002")
    assert sequences.last(NumberKind.CREDIT_NOTE) == 0
    recovered = Sequences()
    recovered.recover([world.state])  # CN-21: from what the customers' facts took
    assert recovered.allocate(NumberKind.INVOICE) == (2, "INV-000002")


def test_cn22_a_number_the_caller_gives_is_kept_and_takes_no_sequence() -> None:
    world = CnWorld()
    invoice = world.subscribe()
    given = world.note(world.credit(invoice, "1.00", number="ACME-7"))
    assert (given.number, given.sequence) == ("ACME-7", None)
    assert world.note(world.credit(invoice, "1.00")).number == "CN-000001"


def test_cn30_an_immediate_cancellation_credit_is_a_finalized_note() -> None:
    world = CnWorld()
    invoice = world.subscribe()
    world.pay(invoice)
    world.now += timedelta(days=10)
    world.run(
        CancelSubscription(subscription_id=invoice.subscription_id, mode=CancelMode.IMMEDIATE)
    )
    (credit_invoice,) = [i for i in world.state.invoices.values() if i.type is InvoiceType.CREDIT]
    (note,) = world.state.credit_notes.values()
    assert note.reason is CreditNoteReason.SUBSCRIPTION_CANCELLATION
    assert (note.status, note.type) == (CreditNoteStatus.FINALIZED, CreditNoteType.REFUND)
    assert note.total == -credit_invoice.amount > 0
    assert (note.invoice_id, note.tanso_invoice_id) == (invoice.id, credit_invoice.id)
    assert [r.note_id for r in world.facts if isinstance(r, RefundRequested)] == [note.id]
    assert world.totals(invoice).refunded_amount == note.total
    assert credit_invoice.status is InvoiceStatus.PAID  # Tanso's credit invoice as before


def test_cn30_no_note_when_the_period_was_never_paid() -> None:
    world = CnWorld()
    invoice = world.subscribe()
    world.run(
        CancelSubscription(subscription_id=invoice.subscription_id, mode=CancelMode.IMMEDIATE)
    )
    assert not world.state.credit_notes


def test_cn31_an_upgrade_credit_is_a_note_netted_by_the_adjustment_invoice() -> None:
    world = CnWorld()
    invoice = world.subscribe()  # starter, 19.00
    world.pay(invoice)
    world.now += timedelta(days=10)
    upgrade = ChangePlan(
        subscription_id=invoice.subscription_id,
        to_plan_id=world.plan_id("pro_monthly"),
        change_type=ChangeType.UPGRADE,
    )
    world.run(upgrade)
    (adjustment,) = [i for i in world.state.invoices.values() if i.type is InvoiceType.ADJUSTMENT]
    (note,) = world.state.credit_notes.values()
    assert note.reason is CreditNoteReason.ORDER_CHANGE
    assert note.total == -adjustment.items[0].charge_amount  # "Credit for unused Starter"
    assert (note.invoice_id, note.tanso_invoice_id) == (invoice.id, adjustment.id)
    assert note.refund_status is None  # netted, not refunded
    assert not [f for f in world.facts if isinstance(f, RefundRequested)]
    world.pay(adjustment)
    world.now += timedelta(days=5)
    world.run(
        CancelSubscription(subscription_id=invoice.subscription_id, mode=CancelMode.IMMEDIATE)
    )
    notes = list(world.state.credit_notes.values())
    cancellation = [n for n in notes if n.reason is CreditNoteReason.SUBSCRIPTION_CANCELLATION]
    (credit_invoice,) = [i for i in world.state.invoices.values() if i.type is InvoiceType.CREDIT]
    assert sum(n.total for n in cancellation) == -credit_invoice.amount
    for paid in (invoice, adjustment):  # CN-2 holds on every invoice the credit reached
        totals = world.totals(paid)
        assert totals.refunded_amount <= totals.amount_paid
