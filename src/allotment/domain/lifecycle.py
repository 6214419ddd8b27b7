"""What happens at a subscription's period end (SUB-30..SUB-36, SUB-44, SUB-63, CRD-40..CRD-44).

A period end is one transition made of ordered steps; later steps read the state earlier steps
produced, so each fact is applied (through `apply`, which runs `evolve`) as soon as it is made.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

import msgspec

from allotment.domain.catalog import BillingTiming, Plan, RolloverPolicy
from allotment.domain.context import TurnContext
from allotment.domain.credits import (
    CreditGrant,
    CreditPool,
    CreditTransaction,
    GrantSource,
    TransactionType,
)
from allotment.domain.facts import (
    CreditsExpired,
    CreditsReversed,
    Fact,
    InvoiceIssued,
    InvoiceRevised,
    SubscriptionChanged,
    UsageBilled,
)
from allotment.domain.invoicing import base_lines, current_period_invoice, invoice, usage_lines
from allotment.domain.money import ZERO
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

__all__ = ("Apply", "clawback_facts", "end_period", "expiry_facts")

Apply = Callable[[Fact], None]


def end_period(state: CustomerState, sub: Subscription, ctx: TurnContext, apply: Apply) -> None:
    """Close `sub`'s current period at its end T: finalise, then end or renew (SUB-30)."""
    at = sub.current_period_end
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
    for fact in _rollover_facts(state, sub, plan, ctx, at):  # step 3
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
    _issue_next_invoice(state, renewed, new_plan, plan, ctx, apply, at)  # step 5
    if new_plan.billing_timing is BillingTiming.IN_ARREARS or new_plan.is_free:  # step 6
        for fact in plan_credit_grants(state, renewed, new_plan, start, _at(ctx, at)):
            apply(fact)


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
    usage, billed = usage_lines(state, sub, plan, at, ctx.new_id, at)
    if pending is None or pending.status is not InvoiceStatus.PENDING:
        return
    final = invoice(
        ctx.new_id,
        sub,
        type_=pending.type,
        status=InvoiceStatus.DUE,
        currency=plan.currency,
        due=pending.due_date,
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
    closing_plan: Plan,
    ctx: TurnContext,
    apply: Apply,
    at: datetime,
) -> None:
    """SUB-31 (IN_ADVANCE: DUE, base + the closing period's usage) and SUB-32 (IN_ARREARS: a
    new PENDING invoice due at the new period end)."""
    period = (sub.current_period_start, sub.current_period_end)
    items = base_lines(sub, ctx.catalog, period, ctx.new_id, at)
    if plan.billing_timing is BillingTiming.IN_ARREARS:
        pending = invoice(
            ctx.new_id,
            sub,
            type_=InvoiceType.RENEWAL,
            status=InvoiceStatus.PENDING,
            currency=plan.currency,
            due=period[1],
            period=period,
            items=items,
            at=at,
            plan_id=plan.id,
        )
        apply(InvoiceIssued(at=at, invoice=pending))
        return
    closing = msgspec.structs.replace(sub, current_period_start=at)  # only `id` matters below
    usage, billed = usage_lines(state, closing, closing_plan, at, ctx.new_id, at)
    due = period[0] + timedelta(days=ctx.payment_terms_days)
    renewal = invoice(
        ctx.new_id,
        sub,
        type_=InvoiceType.RENEWAL,
        status=InvoiceStatus.DUE,
        currency=plan.currency,
        due=due,
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


def expiry_facts(state: CustomerState, ctx: TurnContext, until: datetime) -> list[Fact]:
    """CRD-42: every grant whose `expiresAt` <= `until` expires, stamped at its own instant."""
    facts: list[Fact] = []
    for pool in state.pools.values():
        balance = pool.balance
        for grant in sorted(pool.grants, key=lambda g: (g.expires_at is None, g.expires_at)):
            if grant.expires_at is None or grant.expires_at > until:
                break
            facts.append(
                _take(
                    ctx,
                    pool,
                    grant,
                    TransactionType.EXPIRATION,
                    grant.remaining,
                    balance,
                    grant.expires_at,
                    "Grant expired",
                )
            )
            balance -= grant.remaining
    facts.sort(key=lambda fact: fact.at)  # stable: keeps each pool's expiry order
    return facts


def _rollover_facts(
    state: CustomerState, sub: Subscription, plan: Plan, ctx: TurnContext, at: datetime
) -> list[Fact]:
    """CRD-40: apply each fed pool's policy to this subscription's remaining plan credits;
    CAPPED expires the excess over the cap, oldest grants first."""
    facts: list[Fact] = []
    for allocation in plan.credit_allocations:
        model = ctx.catalog.credit_models[allocation.credit_model_key]
        pool = state.pools.get(model.denomination)
        if pool is None or pool.rollover_policy is RolloverPolicy.FULL:
            continue
        grants = sorted(
            (
                g
                for g in pool.grants
                if g.source is GrantSource.SUBSCRIPTION and g.subscription_id == sub.id
            ),
            key=lambda g: g.granted_at,
        )
        capped = pool.rollover_policy is RolloverPolicy.CAPPED
        cap = (pool.rollover_cap or ZERO) if capped else ZERO  # NONE keeps nothing (CRD-41)
        excess = sum((g.remaining for g in grants), ZERO) - cap
        balance = pool.balance
        for grant in grants:
            if excess <= 0:
                break
            amount = min(excess, grant.remaining)
            facts.append(
                _take(
                    ctx,
                    pool,
                    grant,
                    TransactionType.EXPIRATION,
                    amount,
                    balance,
                    at,
                    f"Rollover ({pool.rollover_policy.value})",
                )
            )
            balance -= amount
            excess -= amount
    return facts


def clawback_facts(
    state: CustomerState, subscription_id: uuid.UUID, ctx: TurnContext, at: datetime
) -> list[Fact]:
    """CRD-43: the subscription's plan grants with credits left are zeroed by REVERSALs."""
    facts: list[Fact] = []
    for pool in state.pools.values():
        balance = pool.balance
        for grant in pool.grants:
            if (
                grant.source is not GrantSource.SUBSCRIPTION
                or grant.subscription_id != subscription_id
            ):
                continue
            facts.append(
                _take(
                    ctx,
                    pool,
                    grant,
                    TransactionType.REVERSAL,
                    grant.remaining,
                    balance,
                    at,
                    "Plan credits clawed back",
                )
            )
            balance -= grant.remaining
    return facts


def _take(
    ctx: TurnContext,
    pool: CreditPool,
    grant: CreditGrant,
    type_: TransactionType,
    amount: Decimal,
    balance: Decimal,
    at: datetime,
    description: str,
) -> Fact:
    """Credits leaving one grant: an EXPIRATION or a REVERSAL (clawback), with its ledger entry."""
    transaction = CreditTransaction(
        id=ctx.new_id(),
        pool_id=pool.id,
        type=type_,
        amount=-amount,
        balance_before=balance,
        balance_after=balance - amount,
        created_at=at,
        description=description,
        grant_id=grant.id,
        subscription_id=grant.subscription_id,
    )
    kind = CreditsReversed if type_ is TransactionType.REVERSAL else CreditsExpired
    return kind(at=at, denomination=pool.denomination, grant_id=grant.id, transaction=transaction)
