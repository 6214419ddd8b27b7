"""Recording one usage event (EVT-20..EVT-46, CRD-30..CRD-33)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from allotment.domain.catalog import FeatureLink, ResetMode
from allotment.domain.commands import RecordUsage
from allotment.domain.context import Outcome, TurnContext
from allotment.domain.cost import cost_known, event_cost
from allotment.domain.credits import plan_debit
from allotment.domain.entitlement import governing_subscription
from allotment.domain.facts import Fact, UsageRecorded
from allotment.domain.grants import debit_facts
from allotment.domain.money import ZERO, round_credits, round_usage
from allotment.domain.replies import Rejected, RejectionKind, UsageAccepted
from allotment.domain.state import AccessState, CustomerState, Subscription
from allotment.domain.subscriptions import entitlement_id
from allotment.domain.usage import bucket_for, used_units

__all__ = ("record_usage",)


def record_usage(state: CustomerState, cmd: RecordUsage, ctx: TurnContext) -> Outcome:
    """ingestEvent for a resolved customer. Never denies: over-limit events are stored and
    flagged (EVT-43, EVT-45)."""
    rejection = _check_references(state, cmd, ctx)
    if rejection is not None:
        return Outcome(rejection)
    feature_key = _resolve_feature(state, cmd, ctx)
    sub, link = _attribute(state, cmd, feature_key, ctx)
    facts: list[Fact] = []
    over_limit, message = False, None
    bucket = None
    billable = ZERO
    if (
        sub is not None
        and link is not None
        and feature_key is not None
        and (
            sub.access is AccessState.ACTIVE  # EVT-24, EVT-46: otherwise stored, never counted
        )
    ):
        bucket = bucket_for(sub, cmd.occurred_at)
        counted = _count(state, cmd, sub, link, feature_key, bucket, ctx)
        facts, billable, over_limit, message = counted
    recorded = _recorded(cmd, ctx, feature_key, sub, bucket, billable, over_limit=over_limit)
    facts.append(recorded)
    unknown = None
    if not cost_known(recorded.cost_amount, recorded.model):  # OPS-D5
        unknown = (
            f"Cost unknown: the model price table (as of {ctx.prices.as_of}) has no price for "
            f"model '{recorded.model}'; the event is recorded without a cost."
        )
    return Outcome(
        UsageAccepted(over_limit=over_limit, message=message, cost_unknown=unknown), facts
    )


def _count(
    state: CustomerState,
    cmd: RecordUsage,
    sub: Subscription,
    link: FeatureLink,
    feature_key: str,
    bucket: datetime | None,
    ctx: TurnContext,
) -> tuple[list[Fact], Decimal, bool, str | None]:
    """An event counted against an active subscription: its credit debits, billable units,
    and whether it went over the limit (EVT-43) or depleted a pool (CRD-31), with the message."""
    over_limit, message = False, None
    billable = ZERO
    used_after = used_units(state, sub, feature_key, link.reset_mode)
    if bucket is not None and _counts_now(bucket, sub, link):
        used_after += cmd.units
    if link.max_usage is not None and used_after >= link.max_usage:
        over_limit, message = True, f"Usage limit exceeded for feature '{feature_key}'."
    credit_facts, uncovered, depleted = _debit_credits(state, link, cmd, sub.id, ctx)
    if link.metered:
        billable = cmd.units if uncovered is None else uncovered
    if depleted is not None and not over_limit:
        over_limit, message = True, f"Credit pool depleted for '{depleted}'."
    return credit_facts, billable, over_limit, message


def _recorded(
    cmd: RecordUsage,
    ctx: TurnContext,
    feature_key: str | None,
    sub: Subscription | None,
    bucket: datetime | None,
    billable: Decimal,
    *,
    over_limit: bool,
) -> UsageRecorded:
    """The event as stored, counted or not (EVT-24: an uncounted event has no period)."""
    feature = ctx.catalog.features.get(feature_key) if feature_key else None
    cost, provider = event_cost(cmd.cost_amount, cmd.cost_input, feature, cmd.units, ctx.prices)
    cost_input = cmd.cost_input
    return UsageRecorded(
        at=ctx.now,
        idempotency_key=cmd.idempotency_key,
        event_name=cmd.event_name,
        occurred_at=cmd.occurred_at,
        units=cmd.units,
        feature_key=feature_key,
        subscription_id=sub.id if sub else None,
        period_start=bucket,
        billable_units=billable if bucket is not None else ZERO,
        over_limit=over_limit,
        cost_amount=cost,
        revenue_amount=cmd.revenue_amount,
        model=cost_input.model if cost_input else None,
        model_provider=provider,
        input_tokens=cost_input.input_tokens if cost_input else None,
        output_tokens=cost_input.output_tokens if cost_input else None,
        flow_id=cmd.flow_id,
        entitlement_id=cmd.entitlement_id,
        invoice_id=cmd.invoice_id,
        meta=cmd.meta,
    )


def _counts_now(bucket: datetime, sub: Subscription, link: FeatureLink) -> bool:
    """Whether usage in `bucket` is part of the current `used` (ENT-20)."""
    if link.reset_mode is ResetMode.RESET:
        return bucket == sub.current_period_start
    return bucket <= sub.current_period_start


def _check_references(state: CustomerState, cmd: RecordUsage, ctx: TurnContext) -> Rejected | None:
    """EVT-22..EVT-24: ids in the event must belong to this customer."""
    if cmd.subscription_id is not None and cmd.subscription_id not in state.subscriptions:
        return _invalid("subscriptionId: no such subscription for this customer.")
    if cmd.invoice_id is not None and cmd.invoice_id not in state.invoices:
        return _invalid("invoiceId: no such invoice for this customer.")
    if (
        cmd.entitlement_id is not None
        and _entitlement_feature(state, cmd.entitlement_id, ctx) is None
    ):
        return _invalid("entitlementId: no such entitlement for this customer.")
    return None


def _entitlement_feature(state: CustomerState, wanted: uuid.UUID, ctx: TurnContext) -> str | None:
    """The feature of the entitlement `wanted`: one per (subscription, plan feature)."""
    for sub in state.subscriptions.values():
        plan = ctx.catalog.plans.get(sub.plan_id)
        for link in plan.features if plan else ():
            if entitlement_id(sub.id, link.feature_key) == wanted:
                return link.feature_key
    return None


def _resolve_feature(state: CustomerState, cmd: RecordUsage, ctx: TurnContext) -> str | None:
    """EVT-20/EVT-22: featureId or featureKey (already in the command), then the entitlement's
    feature, then `eventName` when it names a feature; otherwise tracking-only."""
    if cmd.feature_key is not None:
        return cmd.feature_key
    if cmd.entitlement_id is not None:
        key = _entitlement_feature(state, cmd.entitlement_id, ctx)
        if key is not None:
            return key
    return cmd.event_name if cmd.event_name in ctx.catalog.features else None


def _attribute(
    state: CustomerState, cmd: RecordUsage, feature_key: str | None, ctx: TurnContext
) -> tuple[Subscription | None, FeatureLink | None]:
    """EVT-24: the pinned subscription, else the governing one for the feature."""
    if feature_key is None:
        return None, None
    if cmd.subscription_id is not None:
        sub = state.subscriptions[cmd.subscription_id]
        plan = ctx.catalog.plans.get(sub.plan_id)
        return sub, plan.link(feature_key) if plan else None
    governing = governing_subscription(state, ctx.catalog, feature_key)
    if governing is None:
        return None, None
    return governing[0], governing[2]


def _debit_credits(
    state: CustomerState,
    link: FeatureLink,
    cmd: RecordUsage,
    subscription_id: uuid.UUID,
    ctx: TurnContext,
) -> tuple[list[Fact], Decimal | None, str | None]:
    """CRD-30..CRD-33. Returns the debit facts, the units left uncovered (None when the feature
    is not credit-backed) and the denomination when a hard-limited pool could not cover it."""
    if link.credit_model_key is None:
        return [], None, None
    model = ctx.catalog.credit_models.get(link.credit_model_key)
    if model is None:
        return [], None, None
    requested = round_credits(cmd.units * link.credits_per_unit)
    pool = state.pools.get(model.denomination)
    draws = plan_debit(pool, requested, ctx.now) if pool is not None else []
    covered = sum((amount for _, amount in draws), ZERO)
    facts = (
        debit_facts(pool, [(g.id, a) for g, a in draws], ctx, cmd.idempotency_key, subscription_id)
        if pool is not None
        else []
    )
    uncovered_credits = requested - covered
    hard = bool(pool.hard_limit) if pool is not None else model.hard_limit
    depleted = model.denomination if hard and uncovered_credits > 0 else None
    if uncovered_credits <= 0:
        return facts, ZERO, depleted
    if covered == 0:
        return facts, cmd.units, depleted
    return facts, round_usage(uncovered_credits / link.credits_per_unit), depleted


def _invalid(message: str) -> Rejected:
    return Rejected(kind=RejectionKind.INVALID, message=message)
