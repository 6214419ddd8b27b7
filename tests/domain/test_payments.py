"""Provider payments in the domain (MNY-C2..MNY-C4): decisions and replay."""

from __future__ import annotations

import uuid

import msgspec

from allotment.domain.commands import (
    ApplyProviderPayment,
    CancelSubscription,
    OpenCheckoutSession,
    RecordFailedPayment,
    RecordUnappliedPayment,
    Subscribe,
)
from allotment.domain.facts import Fact, PaymentRecorded
from allotment.domain.payment_records import PaymentRecord, PaymentStatus, ProviderPayment
from allotment.domain.replies import Done, Subscribed
from allotment.domain.state import CancelMode, InvoiceStatus, OpenCheckout
from allotment.persistence.codec import decode_record, encode_record
from allotment.persistence.ports import JournalRecord
from tests.domain.harness import START, World, encoded, replay


def _subscribed(world: World) -> uuid.UUID:
    reply = world.run(Subscribe(plan_id=world.plan_id("pro_monthly")))
    assert isinstance(reply, Subscribed) and reply.invoice.status is InvoiceStatus.DUE
    return reply.invoice.id


def _paid(
    session: str = "cs_1", amount: int | None = 4900, currency: str | None = "USD"
) -> ProviderPayment:
    return ProviderPayment(
        session_id=session, event_type="checkout.session.completed", amount_minor=amount,
        currency=currency,
    )  # fmt: skip


def _message(reply: object) -> str | None:
    assert isinstance(reply, Done)
    return reply.message


def test_mny_c2_a_payment_applies_once_per_session() -> None:
    """MNY-C2, INV-20/21: applied, then the same session again changes nothing."""
    world = World()
    invoice = _subscribed(world)
    assert (
        _message(world.run(ApplyProviderPayment(invoice_id=invoice, payment=_paid()))) == "applied"
    )
    assert world.state.invoices[invoice].status is InvoiceStatus.PAID
    count = len(world.facts)
    repeat = world.run(ApplyProviderPayment(invoice_id=invoice, payment=_paid()))
    assert _message(repeat) == "already recorded: APPLIED" and len(world.facts) == count
    assert world.state.payments["cs_1"].status is PaymentStatus.APPLIED


def test_mny_c3_a_different_amount_or_currency_is_not_a_payment_of_the_invoice() -> None:
    """MNY-C3: kept whole as unapplied; the invoice stays DUE."""
    world = World()
    invoice = _subscribed(world)
    short = world.run(ApplyProviderPayment(invoice_id=invoice, payment=_paid("cs_a", 4899)))
    assert _message(short) == f"unapplied: Paid 4899 minor units; invoice {invoice} is due 4900."
    euro = world.run(ApplyProviderPayment(invoice_id=invoice, payment=_paid("cs_b", 4900, "EUR")))
    assert _message(euro) == f"unapplied: Paid in EUR; invoice {invoice} is in USD."
    assert world.state.invoices[invoice].status is InvoiceStatus.DUE
    unknown = world.run(ApplyProviderPayment(invoice_id=invoice, payment=_paid("cs_c", None, None)))
    assert _message(unknown) == "applied"  # nothing to compare: the session was ours


def test_mny_c3_a_voided_invoice_keeps_the_payment_unapplied() -> None:
    world = World()
    invoice = _subscribed(world)
    sub = next(iter(world.state.subscriptions))
    world.run(CancelSubscription(subscription_id=sub, mode=CancelMode.IMMEDIATE))
    assert world.state.invoices[invoice].status is InvoiceStatus.VOID
    reply = world.run(ApplyProviderPayment(invoice_id=invoice, payment=_paid()))
    assert _message(reply) == f"unapplied: Invoice {invoice} is VOID; nothing is due on it."
    record = world.state.payments["cs_1"]
    assert (record.status, record.invoice_id, record.customer_id) == (
        PaymentStatus.UNAPPLIED, invoice, world.state.id,
    )  # fmt: skip


def test_mny_c4_a_failure_closes_only_its_own_session() -> None:
    """MNY-C4: the failed session is forgotten (a new checkout gets a new idempotency key);
    another open session of the invoice is kept."""
    world = World()
    invoice = _subscribed(world)
    opened = OpenCheckout(session_id="cs_open", url="https://checkout.stripe.com/c/pay/cs_open")
    world.run(OpenCheckoutSession(invoice_id=invoice, checkout=opened))
    world.run(RecordFailedPayment(invoice_id=invoice, payment=_paid("cs_other")))
    assert world.state.checkouts[invoice] == opened
    world.run(RecordFailedPayment(invoice_id=invoice, payment=_paid("cs_open")))
    assert invoice not in world.state.checkouts
    assert world.state.checkout_generation[invoice] == 1
    assert world.state.invoices[invoice].status is InvoiceStatus.DUE
    assert {p.status for p in world.state.payments.values()} == {PaymentStatus.FAILED}


def test_payment_facts_replay_and_survive_the_journal_codec() -> None:
    """A new fact must replay: the state rebuilt from the facts equals the live one, and the
    facts, as customer facts and as an environment fact, round-trip through the codec."""
    world = World()
    invoice = _subscribed(world)
    world.run(RecordUnappliedPayment(payment=_paid("cs_x"), reason="The session names no invoice."))
    world.run(ApplyProviderPayment(invoice_id=invoice, payment=_paid()))
    assert encoded(replay(world.facts)) == encoded(world.state)
    facts: list[Fact] = world.facts
    record = JournalRecord(7, world.state.id, facts, [])
    assert decode_record(encode_record(record)) == record
    environment = PaymentRecord(
        payment=_paid("cs_env"), status=PaymentStatus.UNAPPLIED, recorded_at=START, reason="r"
    )
    env_record = JournalRecord(8, None, [], [PaymentRecorded(at=START, record=environment)])
    assert decode_record(encode_record(env_record)) == env_record
    raw = msgspec.msgpack.decode(encode_record(env_record))
    assert raw[3][0]["type"] == "payment_recorded"
