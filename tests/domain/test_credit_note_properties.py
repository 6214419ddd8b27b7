"""Properties of credit notes over any sequence of invoices, payments and notes (issue 18).

After every step: each invoice has total - adjustments - paid = remaining >= 0, refunded <=
paid, and no line credited past its amount (`invariants.check`, CN-2, CN-5); numbers of each
kind are 1..n without a gap or a repeat (CN-20). At the end, replay from zero and from a
snapshot give the same state.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_DOWN
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from allotment.domain import invariants
from allotment.domain.commands import (
    CancelSubscription,
    ChangePlan,
    Command,
    MarkInvoicePaid,
    Subscribe,
)
from allotment.domain.credit_note_commands import (
    CreateCreditNote,
    CreditLineRequest,
    FinalizeCreditNote,
    RecordRefund,
    VoidCreditNote,
)
from allotment.domain.credit_note_facts import CreditNoteFinalized, InvoiceNumbered
from allotment.domain.credit_note_state import CreditNoteReason, RefundStatus
from allotment.domain.state import CancelMode, ChangeType, CustomerState
from tests.domain.cn_world import CnWorld, D
from tests.domain.harness import assert_replays, snapshot

PLANS = ("starter_monthly", "pro_monthly", "usage_monthly", "enterprise_monthly")
CENT = D("0.01")

notes = st.tuples(
    st.just("note"),
    st.integers(0, 20),
    st.tuples(st.integers(0, 2), st.integers(1, 120), st.booleans(), st.integers(0, 3)),
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("subscribe"), st.integers(0, 3), st.none()),
        st.tuples(st.just("pay"), st.integers(0, 20), st.none()),
        notes,
        notes,  # notes are what is under test: drawn more often
        notes,
        st.tuples(st.just("finalize"), st.integers(0, 20), st.none()),
        st.tuples(st.just("void"), st.integers(0, 20), st.none()),
        st.tuples(st.just("refund"), st.integers(0, 20), st.sampled_from(list(RefundStatus))),
        st.tuples(st.just("advance"), st.integers(1, 40), st.none()),
        st.tuples(st.just("cancel"), st.integers(0, 5), st.none()),
        st.tuples(st.just("upgrade"), st.integers(0, 5), st.integers(0, 3)),
    ),
    min_size=4,
    max_size=30,
)
START = [("subscribe", 0, None), ("subscribe", 1, None), ("pay", 0, None)]


def _pick(items: list[Any], index: int) -> Any:
    return items[index % len(items)] if items else None


def _note(world: CnWorld, index: int, args: tuple[int, int, bool, int]) -> Command | None:
    invoice = _pick(list(world.state.invoices.values()), index)
    if invoice is None or not invoice.items:
        return None
    line_index, percent, process, key = args
    item = invoice.items[line_index % len(invoice.items)]
    # a share of the line, past 100 % now and then (refused, CN-2)
    amount = (abs(item.charge_amount) * percent / 100).quantize(CENT, ROUND_DOWN) or CENT
    return CreateCreditNote(
        invoice_id=invoice.id,
        reason=CreditNoteReason.BILLING_ERROR,
        lines=(CreditLineRequest(invoice_line_id=item.id, amount=amount),),
        process=process,
        idempotency_key=f"k{key}" if key else None,  # repeated keys: replays and conflicts
    )


def _command(world: CnWorld, step: tuple[str, Any, Any]) -> Command | None:  # noqa: PLR0911
    kind, a, b = step
    state = world.state
    notes, subs = list(state.credit_notes), list(state.subscriptions.values())
    if kind == "subscribe":
        live = {s.plan_id for s in state.live_subscriptions()}
        plan_id = world.plan_id(PLANS[a])
        return None if plan_id in live else Subscribe(plan_id=plan_id)
    if kind == "pay":
        invoice = _pick(list(state.invoices.values()), a)
        return MarkInvoicePaid(invoice_id=invoice.id) if invoice else None
    if kind == "note":
        return _note(world, a, b)
    if kind in ("finalize", "void", "refund") and notes:
        note_id = _pick(notes, a)
        if kind == "refund":
            return RecordRefund(note_id=note_id, status=b, reference=f"re_{a}")
        if kind == "finalize":
            return FinalizeCreditNote(note_id=note_id)
        return VoidCreditNote(note_id=note_id)
    if kind == "cancel" and subs:
        return CancelSubscription(subscription_id=_pick(subs, a).id, mode=CancelMode.IMMEDIATE)
    if kind == "upgrade" and subs:
        sub = _pick(subs, a)
        return ChangePlan(
            subscription_id=sub.id,
            to_plan_id=world.plan_id(PLANS[b]),
            change_type=ChangeType.UPGRADE,
        )
    if kind == "advance":
        world.now += timedelta(days=a)
    return None


def _check_numbers(world: CnWorld) -> None:
    invoices = [f.sequence for f in world.facts if isinstance(f, InvoiceNumbered)]
    notes = [f.sequence for f in world.facts if isinstance(f, CreditNoteFinalized)]
    assert invoices == list(range(1, len(invoices) + 1))  # CN-20: in order, none missing
    assert notes == list(range(1, len(notes) + 1))


@settings(max_examples=150, deadline=None)
@given(steps, st.integers(0, 1000))
# Found by CI: two credit periods granted, replayed from a snapshot, iterate in another order
# under some hash seeds (PYTHONHASHSEED=0 among them); `harness.encoded` sorts sets for it.
@example([("subscribe", 0, None)] * 6 + [("advance", 31, None), ("subscribe", 2, None),
          ("pay", 2, None), ("subscribe", 0, None), ("subscribe", 0, None)], 39)  # fmt: skip
def test_credit_notes_keep_every_invoice_consistent_and_replay(
    workload: list[tuple[str, Any, Any]], cut: int
) -> None:
    world = CnWorld()
    snapshots: list[tuple[int, CustomerState]] = []
    for step in [*START, *workload]:
        command = _command(world, step)
        if command is not None:
            world.run(command)
        invariants.check(world.state)
        _check_numbers(world)
        snapshots.append((len(world.facts), snapshot(world.state)))
    assert_replays(world.facts, world.state, snapshots, cut)
