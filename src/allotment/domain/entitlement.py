"""The entitlement decision and usage simulation (ENT-10..ENT-24, SIM-1..SIM-8).

The checks run in the fixed order of BEHAVIOUR.md section 8.2; the first failure decides.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from allotment.domain.catalog import Catalog, FeatureLink, Plan
from allotment.domain.credits import CreditPool, PoolStatus
from allotment.domain.money import ZERO, round_credits
from allotment.domain.replies import CreditBlock, Decision, DenialReason, Simulation, UsageBlock
from allotment.domain.state import AccessState, CustomerState, Subscription
from allotment.domain.usage import used_units

__all__ = (
    "Pending",
    "evaluate",
    "evaluate_governed",
    "governing_subscription",
    "unknown_customer_decision",
)


def governing_subscription(
    state: CustomerState, catalog: Catalog, feature_key: str
) -> tuple[Subscription, Plan, FeatureLink] | None:
    """ENT-18: the oldest ACTIVE subscription whose plan includes the feature."""
    for sub in state.subscriptions.values():
        if sub.access is not AccessState.ACTIVE:
            continue
        plan = catalog.plans.get(sub.plan_id)
        link = plan.link(feature_key) if plan is not None else None
        if plan is not None and link is not None:
            return sub, plan, link
    return None


def unknown_customer_decision(requested: Decimal | None) -> Decision:
    """ENT-5/ENT-10: an unknown customer is a denial, and a simulation still reports (SIM-1)."""
    return Decision(
        allowed=False,
        reason=DenialReason.CUSTOMER_NOT_FOUND,
        simulation=None if requested is None else _simulate(requested, ZERO, None, None, None),
    )


class Pending(msgspec.Struct, kw_only=True):
    """Units and credits that earlier items of the same request would hold (RSV-4), on top of
    what the customer's open reservations hold."""

    units: dict[str, Decimal] = msgspec.field(default_factory=dict)  # by feature key
    credits: dict[str, Decimal] = msgspec.field(default_factory=dict)  # by denomination


def evaluate(
    state: CustomerState,
    catalog: Catalog,
    feature_key: str,
    requested: Decimal | None,
    pending: Pending | None = None,
) -> Decision:
    """Decide whether the customer may use `feature_key`, optionally simulating `requested` units.

    Args:
        state: the customer, with every transition due by now already applied.
        catalog: the environment's catalog.
        feature_key: the feature asked about.
        requested: units to simulate (POST with `track`), or None for a plain check.
        pending: what earlier items of the same request hold (RSV-4), if any.
    """
    return evaluate_governed(
        state,
        catalog,
        feature_key,
        requested,
        pending,
        governing_subscription(state, catalog, feature_key),
    )


def evaluate_governed(
    state: CustomerState,
    catalog: Catalog,
    feature_key: str,
    requested: Decimal | None,
    pending: Pending | None,
    governing: tuple[Subscription, Plan, FeatureLink] | None,
) -> Decision:
    """`evaluate`, given `governing_subscription(state, catalog, feature_key)` already found:
    a reserve needs the governing link for its own checks too, and finding it walks every
    subscription, so it is found once per item (the order of the checks is unchanged)."""
    structural = _structural_denial(state, catalog, feature_key)
    if structural is not None:
        return _deny(structural, requested)
    if governing is None:
        return _deny(DenialReason.NOT_INCLUDED, requested)
    sub, _, link = governing
    used = used_units(state, sub, feature_key, link.reset_mode) if link.metered else ZERO
    held = _held(state.held_units, pending.units if pending else None, feature_key)  # RSV-7
    usage = _usage_block(used, held, link.max_usage) if link.metered else None
    pool, model_hard_limit, burn_rate = _credit_source(state, catalog, link)
    held_credits = (
        _held(state.held_credits, pending.credits if pending else None, pool.denomination)
        if pool is not None
        else ZERO
    )
    credit = _credit_block(pool, model_hard_limit, held_credits)
    simulation = None
    if requested is not None:
        simulation = _simulate(
            requested,
            used + held,
            link.max_usage,
            pool if link.credit_model_key else None,
            burn_rate if _hard(pool, model_hard_limit) else None,
            held_credits,
        )
    reason = _limit_denial(link, used + held, pool, model_hard_limit, simulation, held_credits)
    return Decision(
        allowed=reason is None, reason=reason, usage=usage, credit=credit, simulation=simulation
    )


def _held(tally: dict[str, Decimal], pending: dict[str, Decimal] | None, key: str) -> Decimal:
    """What is held of `key`: open reservations' tally, plus the request's earlier items."""
    held = tally.get(key, ZERO) if tally else ZERO  # most customers hold nothing: no hashing
    if pending:
        held += pending.get(key, ZERO)
    return held


def _structural_denial(
    state: CustomerState, catalog: Catalog, feature_key: str
) -> DenialReason | None:
    """ENT-11..ENT-13."""
    if feature_key not in catalog.features:
        return DenialReason.FEATURE_NOT_FOUND
    # One pass, no lists: every check and reserve asks this. A live ACTIVE subscription is
    # paid up (ACTIVE is not PENDING_PAYMENT), so it answers at once.
    live = paid_up = False
    for sub in state.subscriptions.values():
        if not sub.live:
            continue
        if sub.access is AccessState.ACTIVE:
            return None
        live = True
        paid_up = paid_up or sub.access is not AccessState.PENDING_PAYMENT
    if not paid_up:
        return DenialReason.AWAITING_PAYMENT if live else DenialReason.NO_ACTIVE_SUBSCRIPTION
    return DenialReason.PAST_DUE


def _limit_denial(
    link: FeatureLink,
    used: Decimal,
    pool: CreditPool | None,
    model_hard_limit: bool,
    simulation: Simulation | None,
    held_credits: Decimal,
) -> DenialReason | None:
    """ENT-15..ENT-17; `used` counts held units and a pool's held credits are not there to
    spend (RSV-7)."""
    if link.max_usage is not None and used >= link.max_usage:
        return DenialReason.LIMIT_EXCEEDED
    if link.credit_model_key is not None and _hard(pool, model_hard_limit):
        if pool is not None and pool.status is PoolStatus.FROZEN:
            return DenialReason.POOL_FROZEN
        if pool is None or pool.balance - held_credits <= 0:
            return DenialReason.INSUFFICIENT_CREDITS
    if simulation is not None and simulation.would_exceed_limit:
        return DenialReason.WOULD_EXCEED
    return None


def _credit_source(
    state: CustomerState, catalog: Catalog, link: FeatureLink
) -> tuple[CreditPool | None, bool, Decimal]:
    """The pool a credit-backed link draws from, the model's default hard limit, the burn rate."""
    if link.credit_model_key is None:
        return None, False, ZERO
    model = catalog.credit_models.get(link.credit_model_key)
    if model is None:
        return None, False, ZERO
    return state.pools.get(model.denomination), model.hard_limit, link.credits_per_unit


def _hard(pool: CreditPool | None, model_hard_limit: bool) -> bool:
    """CRD-32: the pool's own hardLimit, or the model's default when there is no pool."""
    return bool(pool.hard_limit) if pool is not None else model_hard_limit


def _usage_block(used: Decimal, held: Decimal, limit: Decimal | None) -> UsageBlock:
    """RSV-8: `remaining` excludes what is held."""
    if limit is None:
        return UsageBlock(used=used, reserved=held)
    return UsageBlock(
        used=used, limit=limit, remaining=max(ZERO, limit - used - held), reserved=held
    )


def _credit_block(
    pool: CreditPool | None, model_hard_limit: bool, held_credits: Decimal
) -> CreditBlock | None:
    if pool is None:
        return None
    return CreditBlock(
        denomination=pool.denomination,
        balance=pool.balance,
        total_granted=pool.total_granted,
        total_consumed=pool.total_consumed,
        hard_limit=_hard(pool, model_hard_limit),
        reserved=held_credits,  # RSV-9
        available=pool.balance - held_credits,
    )


def _simulate(
    requested: Decimal,
    used: Decimal,
    limit: Decimal | None,
    pool: CreditPool | None,
    hard_burn_rate: Decimal | None,
    held_credits: Decimal = ZERO,
) -> Simulation:
    """SIM-2..SIM-5. `hard_burn_rate` is set only for a credit-backed, hard-limited feature;
    `used` counts held units, and held credits are not there to spend (RSV-7)."""
    projected = used + requested
    exceeds = limit is not None and projected > limit
    if hard_burn_rate is not None:
        balance = (
            pool.balance if pool is not None and pool.status is not PoolStatus.FROZEN else ZERO
        )
        exceeds = exceeds or round_credits(requested * hard_burn_rate) > balance - held_credits
    return Simulation(
        requested_usage=requested,
        projected_usage=projected,
        would_exceed_limit=exceeds,
        projected_remaining=None if limit is None else max(ZERO, limit - projected),
    )


def _deny(reason: DenialReason, requested: Decimal | None) -> Decision:
    simulation = None if requested is None else _simulate(requested, ZERO, None, None, None)
    return Decision(allowed=False, reason=reason, simulation=simulation)
