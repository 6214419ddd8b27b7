"""What happens at a subscription's period end (SUB-30..SUB-36, SUB-44, SUB-63).

A period end is one transition made of ordered steps; later steps read the state earlier steps
produced, so each fact is applied (through `apply`, which runs `evolve`) as soon as it is made.
The credits leaving grants on the way (expiry, rollover, clawback) are `credit_lifecycle`'s.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import msgspec

from allotment.domain.catalog import BillingTiming, Plan
from allotment.domain.context import TurnContext
from allotment.domain.credit_lifecycle import clawback_facts, expiry_facts, rollover_facts
from allotment.domain.facts import (
    Fact,
    InvoiceIssued,
    InvoiceRevised,
    SubscriptionChanged,
    UsageBilled,
)
from allotment.domain.invoicing import base_lines, current_period_invoice, invoice
from allotment.domain.periods import add_months
from allotment.domain.state import (
    AccessState,
    CancelMode,
    ChangeStatus,
    CustomerState,
    InvoiceStatus,
    InvoiceType,
    PlanSegment,
    Subscription,
)
from allotment.domain.subscriptions import plan_credit_grants
from allotment.domain.usage_billing import usage_lines

__all__ = ("Apply", "end_period")

Apply = Callable[[Fact], None]


def end_period(state: CustomerState, sub: Subscription, ctx: TurnContext, apply: Apply) -> None:
    """Close `sub`'s current period at its end T: finalise, then end or renew (SUB-30)."""
    at = sub.current_period_end
    closing = (sub.current_period_start, at)
    plan = ctx.catalog.plans[sub.plan_id]
    ending = sub.cancel_mode is CancelMode.END_OF_PERIOD
    _finalise(state, sub, plan, ctx, apply, at)  # step 1, priced with the closing plan
    if ending:  # SUB-44
        for fact in clawback_facts(state, sub.id, ctx, at):
            apply(fact)
        ended = msgspec.structs.replace(sub, ended_at=at, access=AccessState.ENDED, modified_at=at)
        apply(SubscriptionChanged(at=at, subscription=ended))
        return
    sub = _apply_scheduled_change(state, state.subscriptions[sub.id], ctx, apply, at)  # step 2
    for fact in expiry_facts(state, ctx, at):  # CRD-44: expiries due by the period end first
        apply(fact)
    for fact in rollover_facts(state, sub, plan, ctx, at):  # step 3
        apply(fact)
    start = sub.current_period_end  # step 4: the next period on the grid
    end = add_months(
        sub.first_period_start,
        _months_since_first(sub) + 2 * sub.interval_months,
        sub.billing_anchor_day,
    )
    new_plan = ctx.catalog.plans[sub.plan_id]
    renewed = msgspec.structs.replace(
        sub,
        current_period_start=start,
        current_period_end=end,
        modified_at=at,
        plan_segments=(PlanSegment(plan_id=new_plan.id, start=start),),
    )
    apply(SubscriptionChanged(at=at, subscription=renewed))
    _issue_next_invoice(state, renewed, new_plan, (plan, closing), ctx, apply)  # step 5
    if new_plan.billing_timing is BillingTiming.IN_ARREARS or new_plan.is_free:  # step 6
        for fact in plan_credit_grants(state, renewed, new_plan, start, _at(ctx, at)):
            apply(fact)


def _catch_up_due(sub: Subscription, due: datetime) -> datetime:
    """MNY-A5: an invoice a catch-up renewal issues or finalises is due no earlier than the
    payment that restored access, so its grace runs from then and SUB-34's catch-up reaches
    the period containing now instead of suspending again a month behind."""
    if sub.active_since is None:
        return due
    return max(due, sub.active_since)


def _months_since_first(sub: Subscription) -> int:
    first, start = sub.first_period_start, sub.current_period_start
    return (start.year - first.year) * 12 + start.month - first.month


def _at(ctx: TurnContext, at: datetime) -> TurnContext:
    """The context as of the transition's instant, so grants and their expiry start at T."""
    return TurnContext(
        now=at,
        catalog=ctx.catalog,
        prices=ctx.prices,
        new_id=ctx.new_id,
        payment_terms_days=ctx.payment_terms_days,
        numbers=ctx.numbers,  # CN-20: the turn's own sequences
    )


def _finalise(
    state: CustomerState,
    sub: Subscription,
    plan: Plan,
    ctx: TurnContext,
    apply: Apply,
    at: datetime,
) -> None:
    """IN_ARREARS: the closing PENDING invoice gets its base and usage lines and becomes DUE
    (PAID at 0, SUB-33). IN_ADVANCE usage waits for the renewal invoice (INV-31)."""
    if plan.billing_timing is not BillingTiming.IN_ARREARS:
        return
    pending = current_period_invoice(state, sub)
    items = base_lines(sub, ctx.catalog, (sub.current_period_start, at), ctx.new_id, at)
    usage, billed = usage_lines(
        state, sub, plan, (sub.current_period_start, at), ctx.catalog, ctx.new_id, at
    )
    if pending is None or pending.status is not InvoiceStatus.PENDING:
        return
    final = invoice(
        ctx.new_id,
        sub,
        type_=pending.type,
        status=InvoiceStatus.DUE,
        currency=plan.currency,
        due=_catch_up_due(sub, pending.due_date),
        period=(pending.period_start, pending.period_end),
        items=items + usage,
        at=pending.created_at,
        invoice_id=pending.id,
        plan_id=pending.plan_id,
    )
    if final.amount == 0:
        final = msgspec.structs.replace(final, status=InvoiceStatus.PAID)
    apply(InvoiceRevised(at=at, invoice=msgspec.structs.replace(final, modified_at=at)))
    _usage_billed(apply, at, sub.id, billed, pending.id)


def _issue_next_invoice(
    state: CustomerState,
    sub: Subscription,
    plan: Plan,
    closing: tuple[Plan, tuple[datetime, datetime]],
    ctx: TurnContext,
    apply: Apply,
) -> None:
    """SUB-31 (IN_ADVANCE: DUE, base + the closing period's usage) and SUB-32 (IN_ARREARS: a
    new PENDING invoice due at the new period end). `closing` is the closing period's plan and
    `[start, end)`; the new period starts at its end."""
    if plan.billing_timing is BillingTiming.IN_ARREARS:
        _issue_pending_invoice(sub, plan, ctx, apply, closing[1][1])
    else:
        _issue_renewal_invoice(state, sub, plan, closing, ctx, apply)


def _issue_pending_invoice(
    sub: Subscription, plan: Plan, ctx: TurnContext, apply: Apply, at: datetime
) -> None:
    """SUB-32: the new period's PENDING invoice, with its base lines, due at the period end."""
    period = (sub.current_period_start, sub.current_period_end)
    pending = invoice(
        ctx.new_id,
        sub,
        type_=InvoiceType.RENEWAL,
        status=InvoiceStatus.PENDING,
        currency=plan.currency,
        due=period[1],
        period=period,
        items=base_lines(sub, ctx.catalog, period, ctx.new_id, at),
        at=at,
        plan_id=plan.id,
    )
    apply(InvoiceIssued(at=at, invoice=pending))


def _issue_renewal_invoice(
    state: CustomerState,
    sub: Subscription,
    plan: Plan,
    closing: tuple[Plan, tuple[datetime, datetime]],
    ctx: TurnContext,
    apply: Apply,
) -> None:
    """SUB-31: the renewal invoice is DUE with the new period's base and the closing period's
    usage (with late usage of earlier periods, MNY-B1), and PAID at once when it comes to zero
    (SUB-33)."""
    closing_plan, closing_period = closing
    at = closing_period[1]
    period = (sub.current_period_start, sub.current_period_end)
    items = base_lines(sub, ctx.catalog, period, ctx.new_id, at)
    usage, billed = usage_lines(state, sub, closing_plan, closing_period, ctx.catalog,
                                ctx.new_id, at)  # fmt: skip
    renewal = invoice(
        ctx.new_id,
        sub,
        type_=InvoiceType.RENEWAL,
        status=InvoiceStatus.DUE,
        currency=plan.currency,
        due=_catch_up_due(sub, period[0] + timedelta(days=ctx.payment_terms_days)),
        period=period,
        items=items + usage,
        at=at,
        plan_id=plan.id,
    )
    zero = renewal.amount == 0
    if zero:
        renewal = msgspec.structs.replace(renewal, status=InvoiceStatus.PAID)  # SUB-33
    apply(InvoiceIssued(at=at, invoice=renewal))
    _usage_billed(apply, at, sub.id, billed, renewal.id)
    if zero and not plan.is_free:  # paid plans grant on payment; a zero invoice is paid now
        for fact in plan_credit_grants(
            state, state.subscriptions[sub.id], plan, period[0], _at(ctx, at)
        ):
            apply(fact)


def _usage_billed(
    apply: Apply, at: datetime, sub_id: uuid.UUID, billed: list[str], invoice_id: uuid.UUID
) -> None:
    """The usage of `billed` features up to `at` is on `invoice_id` (it is not billed again)."""
    for feature_key in billed:
        apply(
            UsageBilled(
                at=at,
                subscription_id=sub_id,
                feature_key=feature_key,
                through=at,
                invoice_id=invoice_id,
            )
        )


def _apply_scheduled_change(
    state: CustomerState, sub: Subscription, ctx: TurnContext, apply: Apply, at: datetime
) -> Subscription:
    """SUB-63: a PENDING downgrade due by the period end switches the plan. It FAILs, and the
    subscription renews on its plan, when the target is gone or another live subscription of
    the customer holds it (SUB-4)."""
    change = sub.scheduled_change
    if change is None or change.status is not ChangeStatus.PENDING or change.effective_at > at:
        return sub
    target = ctx.catalog.plans.get(change.to_plan_id)
    if target is not None and any(
        o.plan_id == target.id and o.id != sub.id for o in state.live_subscriptions()
    ):
        target = None
    status = ChangeStatus.COMPLETED if target is not None else ChangeStatus.FAILED
    done = msgspec.structs.replace(change, status=status)
    changes = tuple(done if c.id == change.id else c for c in sub.changes)
    switched = msgspec.structs.replace(
        sub,
        plan_id=target.id if target is not None else sub.plan_id,
        scheduled_change=None,
        changes=changes,
        modified_at=at,
    )
    apply(SubscriptionChanged(at=at, subscription=switched))
    return switched
