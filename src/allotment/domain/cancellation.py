"""cancelSubscription and revertScheduledCancellation (SUB-40..SUB-51, INV-50, CRD-43)."""

from __future__ import annotations

from datetime import datetime

import msgspec

from allotment.domain.catalog import BillingTiming, Plan
from allotment.domain.context import Outcome, TurnContext
from allotment.domain.credit_backing import backing_notes
from allotment.domain.credit_lifecycle import clawback_facts
from allotment.domain.credit_note_state import CreditNoteReason
from allotment.domain.facts import Fact, InvoiceIssued, InvoiceStatusChanged, SubscriptionChanged
from allotment.domain.invoicing import current_period_invoice, invoice, line
from allotment.domain.money import round_money
from allotment.domain.proration import unused_ratio
from allotment.domain.replies import Done, Rejected, RejectionKind
from allotment.domain.state import (
    PAYABLE,
    AccessState,
    CancelMode,
    ChangeStatus,
    CustomerState,
    InvoiceStatus,
    InvoiceType,
    Subscription,
)

__all__ = ("ALREADY_CANCELLED", "cancel", "cancel_pending_change", "revert_cancellation")

ALREADY_CANCELLED = "Subscription is already cancelled."


def cancel_pending_change(sub: Subscription) -> Subscription:
    """The subscription with its PENDING scheduled change CANCELLED (SUB-43, SUB-46 f)."""
    change = sub.scheduled_change
    if change is None:
        return sub
    cancelled = msgspec.structs.replace(change, status=ChangeStatus.CANCELLED)
    changes = tuple(cancelled if c.id == change.id else c for c in sub.changes)
    return msgspec.structs.replace(sub, scheduled_change=None, changes=changes)


def cancel(state: CustomerState, sub: Subscription, mode: CancelMode, ctx: TurnContext) -> Outcome:
    if not sub.live:
        return Outcome(Rejected(kind=RejectionKind.INVALID, message=ALREADY_CANCELLED))  # SUB-41
    if sub.access is AccessState.PENDING_PAYMENT or mode is CancelMode.IMMEDIATE:
        return Outcome(Done(), _cancel_now(state, sub, ctx))  # SUB-47: unpaid acts as IMMEDIATE
    if sub.cancel_mode is CancelMode.END_OF_PERIOD:
        return Outcome(Done())  # SUB-42: a second request keeps the original timestamps
    scheduled = msgspec.structs.replace(
        cancel_pending_change(sub),
        cancel_mode=CancelMode.END_OF_PERIOD,
        cancelled_at=ctx.now,
        cancel_effective_at=sub.current_period_end,
        modified_at=ctx.now,
    )
    return Outcome(Done(), [SubscriptionChanged(at=ctx.now, subscription=scheduled)])


def _cancel_now(state: CustomerState, sub: Subscription, ctx: TurnContext) -> list[Fact]:
    """SUB-45/SUB-46, all in one turn."""
    now = ctx.now
    facts = _close_invoices(state, sub, now)  # (a), (b)
    credit = _credit_note(state, sub, ctx)  # (c)
    facts += credit
    facts += clawback_facts(state, sub.id, ctx, now)  # (e)
    ended = msgspec.structs.replace(
        cancel_pending_change(sub),
        cancel_mode=CancelMode.IMMEDIATE,
        cancelled_at=now,
        cancel_effective_at=now,
        current_period_end=max(now, sub.current_period_start),
        ended_at=now,
        access=AccessState.ENDED,
        modified_at=now,
    )
    facts.append(SubscriptionChanged(at=now, subscription=ended))
    for issued in credit:  # CN-30: the credit as notes on what was paid, after Tanso's facts
        note = issued.invoice
        reason = CreditNoteReason.SUBSCRIPTION_CANCELLATION
        facts += backing_notes(state, sub, -note.amount, reason, note.id, ctx, refund=True)
    return facts


def _close_invoices(state: CustomerState, sub: Subscription, now: datetime) -> list[Fact]:
    """SUB-46 (a) payable invoices are voided; (b) a PENDING one is cancelled (AMB-14: partial
    usage is forgiven)."""
    facts: list[Fact] = []
    for candidate in state.invoices.values():
        if candidate.subscription_id != sub.id:
            continue
        if candidate.status in PAYABLE:
            facts.append(
                InvoiceStatusChanged(at=now, invoice_id=candidate.id, status=InvoiceStatus.VOID)
            )
        elif candidate.status is InvoiceStatus.PENDING:
            status = (
                InvoiceStatus.CANCELLED_PROCESSED
                if _usage_recorded(state, sub)
                else InvoiceStatus.CANCELLED
            )
            facts.append(InvoiceStatusChanged(at=now, invoice_id=candidate.id, status=status))
    return facts


def _credit_note(state: CustomerState, sub: Subscription, ctx: TurnContext) -> list[InvoiceIssued]:
    """SUB-46 (c), INV-50: a PAID credit note for the unused part of an IN_ADVANCE period, only
    when that period was paid."""
    now = ctx.now
    plan = ctx.catalog.plans[sub.plan_id]
    current = current_period_invoice(state, sub)
    if (
        plan.billing_timing is not BillingTiming.IN_ADVANCE
        or current is None
        or current.status is not InvoiceStatus.PAID
    ):
        return []
    ratio = unused_ratio(sub.current_period_start, sub.current_period_end, now)
    paid = _paid_plan(state, sub, ctx)
    credit = round_money(ratio * paid.price_amount, paid.currency)
    if credit <= 0:
        return []
    item = line(ctx.new_id, -credit, "Prorated credit for unused period", now)
    note = invoice(
        ctx.new_id,
        sub,
        type_=InvoiceType.CREDIT,
        status=InvoiceStatus.PAID,
        currency=plan.currency,
        due=now,
        period=(now, sub.current_period_end),  # the unused part it credits (INV-4)
        items=[item],
        at=now,
    )
    return [InvoiceIssued(at=now, invoice=note)]


def _paid_plan(state: CustomerState, sub: Subscription, ctx: TurnContext) -> Plan:
    """The plan whose price the customer actually paid for the current period: the period's
    invoice paid for the first plan; an upgrade counts once its adjustment invoice is paid (or
    when it needed none). AMB-18: a credit never returns money that was never received."""
    segments = sub.plan_segments
    paid = ctx.catalog.plans[segments[0].plan_id] if segments else ctx.catalog.plans[sub.plan_id]
    for segment in segments[1:]:
        adjustments = [
            i for i in state.invoices.values()
            if i.subscription_id == sub.id and i.type is InvoiceType.ADJUSTMENT
            and i.period_start == segment.start
        ]  # fmt: skip
        if all(i.status is InvoiceStatus.ADJUSTMENT_PAID for i in adjustments):
            paid = ctx.catalog.plans[segment.plan_id]
    return paid


def _usage_recorded(state: CustomerState, sub: Subscription) -> bool:
    counters = state.usage.get(sub.id, {})
    # "usage recorded against it": billable units, not included or credit-covered ones
    return any(
        counter.unbilled.get(sub.current_period_start, 0) > 0 for counter in counters.values()
    )


def revert_cancellation(sub: Subscription, ctx: TurnContext) -> Outcome:
    """SUB-50/SUB-51: only a scheduled END_OF_PERIOD cancellation can be reverted."""
    if not sub.live or sub.cancel_mode is CancelMode.IMMEDIATE:
        return Outcome(Rejected(kind=RejectionKind.INVALID, message=ALREADY_CANCELLED))
    if sub.cancel_mode is None:
        return Outcome(Done())  # idempotent no-op
    reverted = msgspec.structs.replace(
        sub, cancel_mode=None, cancelled_at=None, cancel_effective_at=None, modified_at=ctx.now
    )
    return Outcome(Done(), [SubscriptionChanged(at=ctx.now, subscription=reverted)])
