"""Recording one usage event (EVT-20..EVT-46, CRD-30..CRD-33)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from allotment.domain.catalog import FeatureLink, ResetMode
from allotment.domain.commands import RecordUsage
from allotment.domain.context import Outcome, TurnContext
from allotment.domain.cost import cost_known, event_cost
from allotment.domain.credits import CreditPool, plan_debit
from allotment.domain.entitlement import governing_subscription
from allotment.domain.facts import Fact, UsageRecorded
from allotment.domain.grants import debit_facts
from allotment.domain.money import CREDIT_QUANTUM, ZERO, round_credits, round_usage
from allotment.domain.notify_levels import threshold_notices
from allotment.domain.om_usage import entitlement_usage_facts
from allotment.domain.replies import Rejected, RejectionKind, UsageAccepted
from allotment.domain.reservation_state import HeldItem
from allotment.domain.state import AccessState, CustomerState, Subscription
from allotment.domain.subscriptions import entitlement_id
from allotment.domain.usage import before_start, bucket_for, used_units

__all__ = ("record_usage",)


class _Counted(NamedTuple):
    """An event counted against an active subscription (EVT-40..EVT-43, CRD-30..CRD-33)."""

    facts: list[Fact]
    billable: Decimal
    over_limit: bool
    message: str | None
    credit_pool: str | None  # set with `credit_remainder` when MNY-B3's remainder changed
    credit_remainder: Decimal | None
    notices: tuple[Fact, ...] = ()  # WHK-E1: the usage thresholds this event reached


_UNCOUNTED = _Counted([], ZERO, False, None, None, None)


def record_usage(
    state: CustomerState, cmd: RecordUsage, ctx: TurnContext, own: HeldItem | None = None
) -> Outcome:
    """ingestEvent for a resolved customer. Never denies: over-limit events are stored and
    flagged (EVT-43, EVT-45). Units and credits held by open reservations count as used and
    are not spendable (RSV-10), except `own`: the HELD item a commit settles (RSV-12)."""
    rejection = _check_references(state, cmd, ctx)
    if rejection is not None:
        return Outcome(rejection)
    feature_key = _resolve_feature(state, cmd, ctx)
    sub, link = _attribute(state, cmd, feature_key, ctx)
    counted = _UNCOUNTED
    bucket = None
    if (
        sub is not None
        and link is not None
        and feature_key is not None
        and (
            sub.access is AccessState.ACTIVE  # EVT-24, EVT-46: otherwise stored, never counted
        )
    ):
        bucket = bucket_for(sub, cmd.occurred_at)
        counted = _count(state, cmd, sub, link, bucket, ctx, own)
    recorded = _recorded(cmd, ctx, feature_key, sub, bucket, counted)
    facts = [*counted.facts, recorded, *counted.notices]
    if state.entitlements and feature_key is not None:  # OM-90..OM-93
        at = len(counted.facts)  # before the usage fact, as a grant's debit is
        facts[at:at] = entitlement_usage_facts(
            state, feature_key, cmd.occurred_at, cmd.units, cmd.idempotency_key, ctx
        )
    unknown = None
    if not cost_known(recorded.cost_amount, recorded.model):  # OPS-D5
        unknown = (
            f"Cost unknown: the model price table (as of {ctx.prices.as_of}) has no price for "
            f"model '{recorded.model}'; the event is recorded without a cost."
        )
    reply = UsageAccepted(
        over_limit=counted.over_limit, message=counted.message, cost_unknown=unknown
    )
    return Outcome(reply, facts)


def _count(
    state: CustomerState,
    cmd: RecordUsage,
    sub: Subscription,
    link: FeatureLink,
    bucket: datetime,
    ctx: TurnContext,
    own: HeldItem | None,
) -> _Counted:
    """An event counted against an active subscription: its credit debits, billable units,
    and whether it went over the limit (EVT-43) or depleted a pool (CRD-31), with the message."""
    over_limit, message = False, None
    billable = ZERO
    feature_key = link.feature_key
    used_after = used_units(state, sub, feature_key, link.reset_mode)
    counts = not before_start(sub, cmd.occurred_at) and _counts_now(bucket, sub, link)
    if counts:
        used_after += cmd.units
    committed_after = used_after  # thresholds notify on `used` alone (WHK-E1, RSV-11)
    if state.held_units:  # RSV-10: for the limit, what others hold counts as used
        used_after += state.held_units.get(feature_key, ZERO) - (own.units if own else ZERO)
    if link.max_usage is not None and used_after >= link.max_usage:
        over_limit, message = True, f"Usage limit exceeded for feature '{feature_key}'."
    debit = _debit_credits(state, link, cmd, sub.id, ctx, own)
    if link.metered:
        billable = cmd.units if debit.uncovered is None else debit.uncovered
    if debit.depleted is not None and not over_limit:
        over_limit, message = True, f"Credit pool depleted for '{debit.depleted}'."
    pool = None
    if debit.remainder is not None:
        model = ctx.catalog.credit_models[link.credit_model_key or ""]
        pool = model.denomination
    # WHK-E1: decided here, where the limit and the usage are at hand (the hot path)
    notices = threshold_notices(state, sub, link, committed_after, ctx) if counts else ()
    return _Counted(debit.facts, billable, over_limit, message, pool, debit.remainder, notices)


def _recorded(
    cmd: RecordUsage,
    ctx: TurnContext,
    feature_key: str | None,
    sub: Subscription | None,
    bucket: datetime | None,
    counted: _Counted,
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
        billable_units=counted.billable if bucket is not None else ZERO,
        over_limit=counted.over_limit,
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
        before_start=sub is not None and bucket is not None and before_start(sub, cmd.occurred_at),
        credit_pool=counted.credit_pool,
        credit_remainder=counted.credit_remainder,
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


class _Debit(NamedTuple):
    """What a credit-backed event does to its pool (CRD-30..CRD-33, MNY-B3)."""

    facts: list[Fact]
    uncovered: Decimal | None  # units left to bill; None when the feature is not credit-backed
    depleted: str | None  # the denomination, when a hard-limited pool fell short (EVT-41)
    remainder: Decimal | None = None  # the pool-and-feature's new remainder, when it changed


_NOT_CREDIT_BACKED = _Debit([], None, None)


def _debit_credits(
    state: CustomerState,
    link: FeatureLink,
    cmd: RecordUsage,
    subscription_id: uuid.UUID,
    ctx: TurnContext,
    own: HeldItem | None = None,
) -> _Debit:
    """CRD-30..CRD-33 with MNY-B3's carried remainder: an event owes its exact credits plus
    what the pool-and-feature carried; the pool is debited that sum rounded half-up to the
    quantum, and the difference is carried to the feature's next event. So N events debit
    exactly what one event of their sum would, and a sub-quantum event is never free."""
    model = ctx.catalog.credit_models.get(link.credit_model_key or "")
    if model is None:
        return _NOT_CREDIT_BACKED
    exact = cmd.units * link.credits_per_unit
    if exact <= 0:  # an event of no units owes nothing, even to an empty hard-limited pool
        return _Debit([], ZERO, None)
    pool = state.pools.get(model.denomination)
    if pool is None:  # nothing to draw from or carry in: every unit is uncovered (CRD-32)
        return _Debit([], cmd.units, model.denomination if model.hard_limit else None)
    carried = pool.remainders.get(link.feature_key, ZERO)
    owed = carried + exact
    requested = round_credits(owed)
    spendable = _spendable(state, pool, own)
    draws = plan_debit(pool, min(requested, spendable), ctx.now) if requested > 0 else []
    covered = sum((amount for _, amount in draws), ZERO)
    facts = debit_facts(
        pool, [(g.id, a) for g, a in draws], ctx, cmd.idempotency_key, subscription_id
    )
    if owed <= 0 or (covered == requested and (requested > 0 or _can_draw(pool, ctx))):
        # covered: by the pool, or below the quantum by a pool that can pay it later
        return _Debit(facts, ZERO, None, _changed(carried, owed - covered))
    depleted = model.denomination if pool.hard_limit else None
    if covered == 0 and carried >= 0:  # nothing drawn: the event's own units stay uncovered
        return _Debit(facts, cmd.units, depleted)
    # what the draws and any credits paid ahead did not cover, in units (at most cmd.units,
    # since a carried remainder is under one quantum and any draw is at least one)
    uncovered = round_usage((owed - covered) / link.credits_per_unit)
    return _Debit(facts, uncovered, depleted, _changed(carried, ZERO))


def _spendable(state: CustomerState, pool: CreditPool, own: HeldItem | None) -> Decimal:
    """RSV-10: what an event may draw of a pool; a hard-limited pool's credits held by other
    reservations are not there to spend (a soft pool's are: it never denies)."""
    held = state.held_credits.get(pool.denomination, ZERO) if state.held_credits else ZERO
    if own is not None and own.credits is not None and own.denomination == pool.denomination:
        held -= own.credits
    if not held or not pool.hard_limit:
        return pool.balance
    return max(ZERO, pool.balance - held)


def _can_draw(pool: CreditPool, ctx: TurnContext) -> bool:
    """Whether the pool could cover at least one quantum now (live, not frozen, CRD-33)."""
    return bool(plan_debit(pool, CREDIT_QUANTUM, ctx.now))


def _changed(carried: Decimal, remainder: Decimal) -> Decimal | None:
    """The new remainder for the fact, or None when it did not change (the usual case for
    whole-quantum burn rates, which then add nothing to the journal)."""
    return None if remainder == carried else remainder


def _invalid(message: str) -> Rejected:
    return Rejected(kind=RejectionKind.INVALID, message=message)
