"""Starting subscriptions, paying invoices, and the derived access state (SUB-3..SUB-19, INV-20).

Renewals, plan changes and cancellation build on the same state (Subscription keeps the period
grid origin, the initial invoice and the CRD-12 grant keys).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal

from allotment.domain.catalog import BillingTiming, Plan
from allotment.domain.context import Outcome, TurnContext
from allotment.domain.credits import GrantSource
from allotment.domain.facts import Fact, InvoiceIssued, InvoiceStatusChanged, SubscriptionStarted
from allotment.domain.grants import PoolDefaults, grant_facts
from allotment.domain.money import ZERO, round_money
from allotment.domain.periods import add_months, start_of_day
from allotment.domain.replies import Done, Rejected, RejectionKind, Subscribed
from allotment.domain.state import (
    PAYABLE,
    SETTLED,
    AccessState,
    CustomerState,
    Invoice,
    InvoiceItem,
    InvoiceStatus,
    InvoiceType,
    Subscription,
)

__all__ = (
    "NOT_PAYABLE",
    "allocation_key",
    "derive_access",
    "entitlement_id",
    "mark_invoice_paid",
    "plan_credit_grants",
    "subscribe",
)

NOT_PAYABLE = "Invoice is not payable in its current state."
_UNPAID_INITIAL = (InvoiceStatus.DUE, InvoiceStatus.PAST_DUE)


def entitlement_id(subscription_id: uuid.UUID, feature_key: str) -> uuid.UUID:
    """The id of the entitlement a subscription grants for a feature (EVT-22)."""
    return uuid.uuid5(subscription_id, f"entitlement:{feature_key}")


def allocation_key(denomination: str, period_start: datetime) -> str:
    """The CRD-12 and MNY-A1 key of one denomination's allocation for one period."""
    return f"{denomination}@{period_start.isoformat()}"


def derive_access(sub: Subscription, invoices: Iterable[Invoice]) -> AccessState:
    """SUB-3. PENDING_PAYMENT outranks SUSPENDED: an unpaid initial invoice can go PAST_DUE."""
    if sub.ended_at is not None:
        return AccessState.ENDED
    past_due = False
    for invoice in invoices:
        if invoice.subscription_id != sub.id:
            continue
        if (
            sub.prepaid
            and invoice.id == sub.initial_invoice_id
            and invoice.status in _UNPAID_INITIAL
        ):
            return AccessState.PENDING_PAYMENT  # an arrears invoice follows grace instead
        past_due = past_due or invoice.status is InvoiceStatus.PAST_DUE
    return AccessState.SUSPENDED if past_due else AccessState.ACTIVE


def subscribe(
    state: CustomerState, plan_id: uuid.UUID, grace_days: int, ctx: TurnContext
) -> Outcome:
    """createSubscription (SUB-10..SUB-19)."""
    plan = ctx.catalog.plans.get(plan_id)
    if plan is None or plan.status != "ACTIVE":
        return Outcome(Rejected(kind=RejectionKind.NOT_FOUND, message="Plan not found."))
    if any(s.plan_id == plan_id for s in state.live_subscriptions()):
        return Outcome(
            Rejected(
                kind=RejectionKind.CONFLICT,
                message="Customer already has a live subscription to this plan.",
            )
        )
    start = start_of_day(ctx.now)
    end = add_months(start, plan.interval_months, start.day)
    in_advance = plan.billing_timing is BillingTiming.IN_ADVANCE
    pending_payment = in_advance and not plan.is_free
    sub = Subscription(
        id=ctx.new_id(),
        plan_id=plan.id,
        interval_months=plan.interval_months,
        billing_anchor_day=start.day,
        grace_period_days=grace_days,
        first_period_start=start,
        current_period_start=start,
        current_period_end=end,
        initial_invoice_id=ctx.new_id(),
        prepaid=pending_payment,
        access=AccessState.PENDING_PAYMENT if pending_payment else AccessState.ACTIVE,
        created_at=ctx.now,
        modified_at=ctx.now,
    )
    invoice = _initial_invoice(sub, plan, ctx)
    facts: list[Fact] = [SubscriptionStarted(at=ctx.now, subscription=sub)]
    facts.append(InvoiceIssued(at=ctx.now, invoice=invoice))
    if not pending_payment:
        facts += plan_credit_grants(state, sub, plan, start, ctx)  # SUB-18, SUB-19, CRD-12
    return Outcome(Subscribed(subscription=sub, invoice=invoice), facts)


def _initial_invoice(sub: Subscription, plan: Plan, ctx: TurnContext) -> Invoice:
    """SUB-17..SUB-19, INV-5, INV-35."""
    price = round_money(plan.price_amount, plan.currency)
    items: tuple[InvoiceItem, ...] = ()
    if price > 0:
        items = (
            InvoiceItem(
                id=ctx.new_id(),
                charge_amount=price,
                description=f"Plan base price: {plan.name}",
                created_at=ctx.now,
            ),
        )
    if plan.billing_timing is BillingTiming.IN_ARREARS:
        status, due = InvoiceStatus.PENDING, sub.current_period_end
    else:
        status = InvoiceStatus.PAID if price == 0 else InvoiceStatus.DUE
        due = sub.current_period_start + timedelta(days=ctx.payment_terms_days)
    return Invoice(
        id=sub.initial_invoice_id,
        subscription_id=sub.id,
        type=InvoiceType.INITIAL,
        status=status,
        amount=sum((i.charge_amount for i in items), ZERO),
        currency=plan.currency,
        due_date=due,
        period_start=sub.current_period_start,
        period_end=sub.current_period_end,
        items=items,
        created_at=ctx.now,
        modified_at=ctx.now,
        plan_id=plan.id,
    )


def plan_credit_grants(
    state: CustomerState, sub: Subscription, plan: Plan, period_start: datetime, ctx: TurnContext
) -> list[Fact]:
    """Grant the plan's credit allocations for one period, at most once each (CRD-11, CRD-12)."""
    facts: list[Fact] = []
    balances: dict[str, Decimal] = {}
    for allocation in plan.credit_allocations:
        model = ctx.catalog.credit_models[allocation.credit_model_key]
        period_key = allocation_key(model.denomination, period_start)
        if period_key in sub.credit_periods_granted:
            continue
        expires_at = None
        if allocation.grant_expires_months is not None:
            expires_at = add_months(ctx.now, allocation.grant_expires_months, ctx.now.day)
        defaults = PoolDefaults.from_model(model, plan.currency, allocation.hard_limit)
        facts += grant_facts(
            state,
            ctx,
            model.denomination,
            allocation.credit_amount,
            GrantSource.SUBSCRIPTION,
            defaults,
            balances,
            expires_at=expires_at,
            subscription_id=sub.id,
            period_key=period_key,
        )
    return facts


def mark_invoice_paid(state: CustomerState, invoice_id: uuid.UUID, ctx: TurnContext) -> Outcome:
    """markInvoicePaid (INV-20..INV-24)."""
    invoice = state.invoices.get(invoice_id)
    if invoice is None:
        return Outcome(Rejected(kind=RejectionKind.NOT_FOUND, message="Invoice not found."))
    if invoice.status in SETTLED:
        return Outcome(Done())  # INV-21: idempotent, no second grant
    if invoice.status not in PAYABLE:
        return Outcome(Rejected(kind=RejectionKind.INVALID, message=NOT_PAYABLE))
    adjustment = invoice.type is InvoiceType.ADJUSTMENT
    status = InvoiceStatus.ADJUSTMENT_PAID if adjustment else InvoiceStatus.PAID
    facts: list[Fact] = [InvoiceStatusChanged(at=ctx.now, invoice_id=invoice.id, status=status)]
    sub = state.subscriptions[invoice.subscription_id]
    # CRD-12: the allocation of the plan this invoice billed, not of a plan upgraded to since
    # (the upgrade granted its own delta, SUB-67).
    plan = ctx.catalog.plans.get(invoice.plan_id or sub.plan_id)
    if (
        plan is not None
        and plan.billing_timing is BillingTiming.IN_ADVANCE
        and invoice.type in (InvoiceType.INITIAL, InvoiceType.RENEWAL)
        and sub.access is not AccessState.ENDED
    ):
        facts += plan_credit_grants(state, sub, plan, invoice.period_start, ctx)
    return Outcome(Done(), facts)
