"""changeSubscriptionPlan and cancelScheduledPlanChange (SUB-60..SUB-70, INV-51, INV-52)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import msgspec

from allotment.domain.allocations import accounted
from allotment.domain.cancellation import cancel_pending_change
from allotment.domain.catalog import BillingTiming, Plan, PlanStatus
from allotment.domain.context import Outcome, TurnContext
from allotment.domain.credit_backing import backing_notes
from allotment.domain.credit_note_state import CreditNoteReason
from allotment.domain.credits import GrantSource
from allotment.domain.facts import Fact, InvoiceIssued, SubscriptionChanged
from allotment.domain.grants import PoolDefaults, grant_facts
from allotment.domain.invoicing import invoice, line
from allotment.domain.money import allocate_money
from allotment.domain.periods import add_months
from allotment.domain.proration import unused_ratio
from allotment.domain.replies import Done, Rejected, RejectionKind
from allotment.domain.state import (
    AccessState,
    CancelMode,
    ChangeStatus,
    ChangeType,
    CustomerState,
    InvoiceStatus,
    InvoiceType,
    PlanSegment,
    ScheduledChange,
    Subscription,
)
from allotment.domain.subscriptions import allocation_key

__all__ = ("cancel_scheduled_change", "change_plan", "holds_plan_elsewhere")


def holds_plan_elsewhere(state: CustomerState, sub: Subscription, plan_id: uuid.UUID) -> bool:
    """Whether another live subscription of the customer is on `plan_id`."""
    return any(o.plan_id == plan_id and o.id != sub.id for o in state.live_subscriptions())


def _invalid(message: str) -> Outcome:
    return Outcome(Rejected(kind=RejectionKind.INVALID, message=message))


def _refusal(  # noqa: PLR0911 (one return per SUB-61 rule)
    sub: Subscription, current: Plan, target: Plan
) -> str | None:
    """SUB-61, and MNY-A4's billing timing."""
    if not sub.live:
        return "Subscription is already cancelled."
    if sub.access is AccessState.PENDING_PAYMENT:
        return "Subscription is awaiting payment; pay or cancel it before changing plans."
    if sub.access is AccessState.SUSPENDED:
        return "Subscription is past due; pay its invoices before changing plans."
    if sub.cancel_mode is CancelMode.END_OF_PERIOD:
        return "Subscription is scheduled for cancellation; revert it before changing plans."
    if target.id == current.id:
        return "changeToPlanId: the subscription is already on this plan."
    if target.currency != current.currency or target.interval_months != current.interval_months:
        return "changeToPlanId: the target plan must have the same currency and interval."
    if target.billing_timing is not current.billing_timing:
        # MNY-A4: a period is billed on one timing; neither an invoice nor the period end can
        # yet close a period on one and open the next on the other without mis-billing it.
        return (
            "changeToPlanId: the target plan must have the same billing timing "
            "(in advance or in arrears)."
        )
    # MNY-A2, MNY-A3 (AMB-13): no price rule; changeType decides the timing, whatever it costs
    return None


def change_plan(
    state: CustomerState,
    sub: Subscription,
    target_id: uuid.UUID,
    change_type: ChangeType,
    ctx: TurnContext,
) -> Outcome:
    target = ctx.catalog.plans.get(target_id)
    if target is None or target.status is not PlanStatus.ACTIVE:
        return Outcome(Rejected(kind=RejectionKind.NOT_FOUND, message="Plan not found."))
    current = ctx.catalog.plans[sub.plan_id]
    refusal = _refusal(sub, current, target)
    if refusal is not None:
        return _invalid(refusal)
    if holds_plan_elsewhere(state, sub, target.id):  # SUB-4 holds across plan changes too
        return Outcome(
            Rejected(
                kind=RejectionKind.CONFLICT,
                message="Customer already has a live subscription to this plan.",
            )
        )
    if change_type is ChangeType.DOWNGRADE:
        return Outcome(
            Done(),
            [SubscriptionChanged(at=ctx.now, subscription=_schedule(sub, current, target, ctx))],
        )
    return Outcome(Done(), _upgrade(state, sub, current, target, ctx))


def _schedule(sub: Subscription, current: Plan, target: Plan, ctx: TurnContext) -> Subscription:
    """SUB-62: scheduled for the period end; a new downgrade replaces a pending one."""
    base = cancel_pending_change(sub)
    change = ScheduledChange(
        id=ctx.new_id(),
        type=ChangeType.DOWNGRADE,
        from_plan_id=current.id,
        to_plan_id=target.id,
        status=ChangeStatus.PENDING,
        effective_at=sub.current_period_end,
        created_at=ctx.now,
    )
    return msgspec.structs.replace(
        base, scheduled_change=change, changes=(*base.changes, change), modified_at=ctx.now
    )


def _upgrade(
    state: CustomerState, sub: Subscription, current: Plan, target: Plan, ctx: TurnContext
) -> list[Fact]:
    """SUB-64..SUB-67: the plan switches now; proration per timing; the credit delta is granted."""
    now = ctx.now
    base = cancel_pending_change(sub)
    change = ScheduledChange(
        id=ctx.new_id(),
        type=ChangeType.UPGRADE,
        from_plan_id=current.id,
        to_plan_id=target.id,
        status=ChangeStatus.COMPLETED,
        effective_at=now,
        created_at=now,
    )
    # INV-52: a first period has no segments yet; its plan has been in force since its start
    segments = base.plan_segments or (
        PlanSegment(plan_id=current.id, start=base.current_period_start),
    )
    upgraded = msgspec.structs.replace(
        base,
        plan_id=target.id,
        changes=(*base.changes, change),
        modified_at=now,
        plan_segments=(*segments, PlanSegment(plan_id=target.id, start=now)),
    )
    facts: list[Fact] = [SubscriptionChanged(at=now, subscription=upgraded)]
    adjustment = None
    if current.billing_timing is BillingTiming.IN_ADVANCE:
        adjustment = _adjustment_invoice(upgraded, current, target, ctx)
        if adjustment is not None:
            facts.append(adjustment)
    facts += _credit_delta(state, upgraded, target, ctx)
    if adjustment is not None:  # CN-31: its credit line, backed by a note on what was paid
        credit = -adjustment.invoice.items[0].charge_amount
        reason, carrier = CreditNoteReason.ORDER_CHANGE, adjustment.invoice.id
        facts += backing_notes(state, sub, credit, reason, carrier, ctx, refund=False)
    return facts


def _adjustment_invoice(
    sub: Subscription, old: Plan, new: Plan, ctx: TurnContext
) -> InvoiceIssued | None:
    """INV-51: the net of the unused old price and the remaining new price; none when <= 0."""
    now = ctx.now
    ratio = unused_ratio(sub.current_period_start, sub.current_period_end, now)
    # MNY-B4: the credit and the charge are two parts of one net amount, so they are allocated
    # to sum to round(r × (new − old)) rather than rounded apart
    credit, new_remaining = allocate_money(
        [-ratio * old.price_amount, ratio * new.price_amount], new.currency
    )
    old_remaining = -credit
    if new_remaining - old_remaining <= 0:
        return None  # AMB-13: a cheaper "upgrade" forfeits the difference
    items = [
        line(ctx.new_id, -old_remaining, f"Credit for unused {old.name}", now),
        line(ctx.new_id, new_remaining, f"Charge for remaining {new.name}", now),
    ]
    adjustment = invoice(
        ctx.new_id,
        sub,
        type_=InvoiceType.ADJUSTMENT,
        status=InvoiceStatus.ADJUSTMENT_OPEN,
        currency=new.currency,
        due=now + timedelta(days=ctx.payment_terms_days),
        period=(now, sub.current_period_end),
        items=items,
        at=now,
    )
    return InvoiceIssued(at=now, invoice=adjustment)


def _credit_delta(
    state: CustomerState, sub: Subscription, new: Plan, ctx: TurnContext
) -> list[Fact]:
    """SUB-67 as MNY-A1 states it: for each denomination, top the period's allocation up to the
    new plan's, never past what the period has already been granted (no second grant for the
    same period, whatever the path to this plan)."""
    facts: list[Fact] = []
    balances: dict[str, Decimal] = {}
    catalog = ctx.catalog
    for allocation in new.credit_allocations:
        model = catalog.credit_models[allocation.credit_model_key]
        top_up = allocation.credit_amount - accounted(state, sub, model.denomination, catalog)
        if top_up <= 0:
            continue
        expires_at = None
        if allocation.grant_expires_months is not None:
            expires_at = add_months(ctx.now, allocation.grant_expires_months, ctx.now.day)
        facts += grant_facts(
            state,
            ctx,
            model.denomination,
            top_up,
            GrantSource.SUBSCRIPTION,
            PoolDefaults.from_model(model, new.currency, allocation.hard_limit),
            balances,
            expires_at=expires_at,
            subscription_id=sub.id,
            top_up_key=allocation_key(model.denomination, sub.current_period_start),
        )
    return facts


def cancel_scheduled_change(sub: Subscription, ctx: TurnContext) -> Outcome:
    """SUB-70: a PENDING change becomes CANCELLED; nothing pending is a 200 no-op."""
    if sub.scheduled_change is None:
        return Outcome(Done())
    cancelled = msgspec.structs.replace(cancel_pending_change(sub), modified_at=ctx.now)
    return Outcome(Done(), [SubscriptionChanged(at=ctx.now, subscription=cancelled)])
