"""The shard's side of credit notes (runtime/credit_notes.py): routing by invoice, note and
idempotency key, the checks across customers (CN-12, CN-22), the configured prefixes (CN-20,
CN-23) and reads by note id, through the queued shard as the HTTP layer will call it."""

from __future__ import annotations

import argparse
import uuid
from decimal import Decimal

import msgspec
import pytest

from allotment.config import Settings
from allotment.domain.commands import MarkInvoicePaid, Subscribe
from allotment.domain.credit_note_commands import (
    CreateCreditNote,
    CreditLineRequest,
    CreditNoteShown,
    FinalizeCreditNote,
    VoidCreditNote,
)
from allotment.domain.credit_note_facts import RefundRequested
from allotment.domain.credit_note_rules import invoice_totals
from allotment.domain.credit_note_state import CreditNoteReason, CreditNoteStatus, RefundStatus
from allotment.domain.replies import Rejected, RejectionKind, Subscribed
from allotment.domain.state import CustomerState, Invoice, Profile
from allotment.runtime.clock import ManualClock
from allotment.runtime.ports import CustomerLookup, RefundAnswer, Shard
from allotment.runtime.refunds import issue_refunds, refund_key
from allotment.serve_options import serve_options, settings_from
from allotment.wiring import build_system
from tests.conftest import START
from tests.refund_double import RefundDouble

pytestmark = pytest.mark.anyio


async def _invoice(front: Shard, ref: str, *, paid: bool) -> Invoice:
    await front.create_customer(ref, Profile())
    plan = front.catalog.plan_by_key("starter_monthly")
    assert plan is not None
    lookup = CustomerLookup(external_id=ref)
    reply = await front.command(lookup, Subscribe(plan_id=plan.id))
    assert isinstance(reply, Subscribed)
    if paid:
        await front.command(lookup, MarkInvoicePaid(invoice_id=reply.invoice.id))
    return reply.invoice


def _create(invoice: Invoice, amount: str, **extra: object) -> CreateCreditNote:
    line = CreditLineRequest(invoice_line_id=invoice.items[0].id, amount=Decimal(amount))
    command = CreateCreditNote(invoice_id=invoice.id, reason=CreditNoteReason.ORDER_CHANGE,
                               lines=(line,))  # fmt: skip
    return msgspec.structs.replace(command, **extra)


async def test_notes_are_routed_checked_across_customers_and_numbered_with_the_prefixes() -> None:
    settings = Settings(clock="manual", invoice_number_prefix="F-", credit_note_number_prefix="N-")
    system = build_system(settings, ManualClock(START), persistent=False, queued=True)
    async with system.running():
        front = system.route("test")
        first = await _invoice(front, "a", paid=True)
        second = await _invoice(front, "b", paid=False)
        made = await front.credit_note(_create(first, "2.00", idempotency_key="k"))
        assert isinstance(made, CreditNoteShown) and made.note.number == "N-000001"
        assert made.invoice.number == "F-000001" and made.invoice.refunded_amount == Decimal(2)
        # CN-12: the key is the environment's; on another customer's invoice it conflicts
        clash = await front.credit_note(_create(second, "2.00", idempotency_key="k"))
        assert isinstance(clash, Rejected) and clash.kind is RejectionKind.CONFLICT
        # CN-22: a caller's number is unique and never in the sequence's space
        taken = await front.credit_note(_create(second, "1.00", number="OWN-1"))
        assert isinstance(taken, CreditNoteShown) and taken.note.number == "OWN-1"
        for number, kind in (("OWN-1", RejectionKind.CONFLICT), ("N-9", RejectionKind.INVALID)):
            refused = await front.credit_note(_create(second, "1.00", number=number))
            assert isinstance(refused, Rejected) and refused.kind is kind
            assert refused.field == "credit_note_number"
        draft = await front.credit_note(_create(second, "1.00", process=False))
        assert isinstance(draft, CreditNoteShown)
        done = await front.credit_note(FinalizeCreditNote(note_id=draft.note.id))
        assert isinstance(done, CreditNoteShown) and done.note.number == "N-000002"
        voided = await front.credit_note(VoidCreditNote(note_id=made.note.id))
        assert isinstance(voided, CreditNoteShown)
        assert voided.note.status is CreditNoteStatus.VOIDED
        # reads by note id reach the owner, as the HTTP layer will read them
        due = await front.read_on_owner(
            done.note.id, lambda s, _c, _n: invoice_totals(s, s.invoices[second.id]).amount_due
        )
        assert due == Decimal("17.00")  # 19.00 less the two finalized adjustments
        for missing in (
            FinalizeCreditNote(note_id=uuid.uuid4()),
            _create(first, "1", invoice_id=uuid.uuid4()),
        ):
            gone = await front.credit_note(missing)
            assert isinstance(gone, Rejected) and gone.kind is RejectionKind.NOT_FOUND


def test_the_prefixes_are_serve_options() -> None:
    parser = argparse.ArgumentParser()
    serve_options(parser)
    args = parser.parse_args(["--invoice-number-prefix", "ACME-INV-"])
    settings = settings_from(args, {})
    assert (settings.invoice_number_prefix, settings.credit_note_number_prefix) == (
        "ACME-INV-",
        "CN-",
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["--credit-note-number-prefix", "has space"])


async def test_refunds_owed_are_sent_once_and_their_answers_recorded() -> None:
    system = build_system(Settings(clock="manual"), ManualClock(START), persistent=False)
    async with system.running():
        front = system.route("test")
        paid = await _invoice(front, "a", paid=True)
        owed = await front.credit_note(_create(paid, "3.00"))
        failing = await front.credit_note(_create(paid, "1.00"))
        assert isinstance(owed, CreditNoteShown) and isinstance(failing, CreditNoteShown)
        issuer = RefundDouble()
        voided = await front.credit_note(VoidCreditNote(note_id=failing.note.id))
        assert isinstance(voided, CreditNoteShown)  # a voided note owes nothing: not sent
        assert await issue_refunds(front, issuer) == 1
        ((request, key),) = issuer.requests
        assert key == refund_key(owed.note)
        assert (request.note_id, request.amount, request.currency) == (
            owed.note.id,
            Decimal(3),
            "USD",
        )
        assert await issue_refunds(front, issuer) == 0  # SUCCEEDED is final (CN-9)

        def refund_of(state: CustomerState, _c: object, _n: object) -> tuple[object, object]:
            note = state.credit_notes[owed.note.id]
            return note.refund_status, note.refund_reference

        assert await front.read_on_owner(owed.note.id, refund_of) == (
            RefundStatus.SUCCEEDED,
            "re_1",
        )
        refused = await front.credit_note(VoidCreditNote(note_id=owed.note.id))
        assert isinstance(refused, Rejected)  # CN-11: the money has left


async def test_a_refund_whose_answer_was_lost_is_asked_again_with_its_key() -> None:
    """A crash after the provider refunded but before its answer was recorded leaves the note
    PROCESSING; the next run asks again with the same key, and the provider refunds once."""
    system = build_system(Settings(clock="manual"), ManualClock(START), persistent=False)
    async with system.running():
        front = system.route("test")
        owed = await front.credit_note(_create(await _invoice(front, "a", paid=True), "3.00"))
        assert isinstance(owed, CreditNoteShown)
        issuer = RefundDouble()
        real = issuer.issue

        async def refunded_then_crashed(
            request: RefundRequested, idempotency_key: str
        ) -> RefundAnswer:
            await real(request, idempotency_key)
            raise ConnectionError("the answer never arrived")

        issuer.issue = refunded_then_crashed  # type: ignore[method-assign]
        with pytest.raises(ConnectionError):
            await issue_refunds(front, issuer)
        issuer.issue = real  # type: ignore[method-assign]
        assert await issue_refunds(front, issuer) == 1
        assert len(issuer.requests) == 2 and len(issuer.refunds) == 1  # one refund, asked twice
