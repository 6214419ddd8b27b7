"""The threshold notifications: usage against max_usage (WHK-E1..WHK-E5) and a pool's balance
against its low-balance threshold (WHK-E10..WHK-E14). Both run on the ingest hot path, so the
common case (nothing near a threshold) costs a comparison or two per fact."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import TypedDict

from allotment.domain.catalog import Catalog, FeatureLink, ResetMode
from allotment.domain.credits import CreditPool
from allotment.domain.facts import (
    CreditPoolOpened,
    CreditsDebited,
    CreditsExpired,
    CreditsGranted,
    CreditsReversed,
    Fact,
    UsageRecorded,
)
from allotment.domain.notice_marks import BalanceLevel, threshold_key
from allotment.domain.notification_types import (
    CreditBalanceDepleted,
    CreditBalanceLow,
    CreditBalanceRecovered,
    Notification,
    UsageThresholdCrossed,
)
from allotment.domain.state import CustomerState, Subscription
from allotment.domain.usage import used_units

__all__ = (
    "CREDIT_MOVES",
    "DEFAULT_LOW_BALANCE_PERCENT",
    "DEFAULT_USAGE_PERCENTS",
    "Positioned",
    "balance_level",
    "low_balance_threshold",
    "pool_notices",
    "usage_notices",
)

DEFAULT_USAGE_PERCENTS = (80, 100)  # WHK-E3
DEFAULT_LOW_BALANCE_PERCENT = Decimal(20)  # WHK-E10: of the last period's allocation

Positioned = tuple[int, Notification]
"""A notice and the position, among the turn's facts, of the fact after which it is raised."""

CREDIT_MOVES = (CreditsDebited, CreditsExpired, CreditsGranted, CreditsReversed)
"""The facts that move a pool's balance, each with its ledger transaction."""

_RANK = {BalanceLevel.DEPLETED: 0, BalanceLevel.LOW: 1, BalanceLevel.OK: 2}


def usage_notices(
    state: CustomerState, facts: Sequence[Fact], catalog: Catalog
) -> list[Positioned]:
    """WHK-E1..WHK-E5: every threshold the turn's usage events reached, once per
    (subscription, feature, period), in the order the events reached them."""
    events: dict[tuple[uuid.UUID, str], list[tuple[int, UsageRecorded]]] = {}
    for position, fact in enumerate(facts):
        if (
            type(fact) is UsageRecorded
            and fact.subscription_id is not None
            and fact.feature_key is not None
            and fact.period_start is not None
            and not fact.before_start  # MNY-B6: counted toward no limit
        ):
            events.setdefault((fact.subscription_id, fact.feature_key), []).append((position, fact))
    raised: list[Positioned] = []
    for (subscription_id, feature_key), recorded in events.items():
        sub = state.subscriptions.get(subscription_id)
        plan = catalog.plans.get(sub.plan_id) if sub is not None else None
        link = plan.link(feature_key) if plan is not None else None
        if sub is not None and link is not None and link.max_usage is not None:
            raised += _crossings(state, sub, plan.key if plan else None, link, recorded)
    return raised


def _crossings(
    state: CustomerState,
    sub: Subscription,
    plan_key: str | None,
    link: FeatureLink,
    recorded: list[tuple[int, UsageRecorded]],
) -> list[Positioned]:
    limit = link.max_usage
    percents = DEFAULT_USAGE_PERCENTS if link.notify_at_percent is None else link.notify_at_percent
    if limit is None or limit <= 0 or not percents:
        return []
    current = sub.current_period_start
    reset = link.reset_mode is ResetMode.RESET
    # Only events that move the period's `used` (ENT-20) can reach a threshold of it.
    counted = [
        (position, fact.units)
        for position, fact in recorded
        if (fact.period_start == current if reset else fact.period_start <= current)  # type: ignore[operator]
    ]
    if not counted:
        return []
    used = used_units(state, sub, link.feature_key, link.reset_mode)
    lowest = limit * percents[0]
    if used * 100 < lowest:
        return []  # the common case: below every threshold after the whole turn
    key = threshold_key(sub.id, link.feature_key, current)
    fired = set(state.notices.usage_thresholds.get(key, ()))
    running = used - sum((units for _, units in counted), Decimal(0))
    raised: list[Positioned] = []
    for position, units in counted:
        running += units
        for percent in percents:
            if percent not in fired and running * 100 >= limit * percent:
                fired.add(percent)
                notice = UsageThresholdCrossed(
                    subscription_id=sub.id,
                    plan_key=plan_key,
                    feature_key=link.feature_key,
                    percent=percent,
                    period_start=current,
                    period_end=sub.current_period_end,
                    used=running,
                    limit=limit,
                )
                raised.append((position, notice))
    return raised


def low_balance_threshold(
    state: CustomerState, catalog: Catalog, pool: CreditPool
) -> Decimal | None:
    """WHK-E10: the model's low_balance_threshold, or 20% of the pool's last period allocation
    (the newest plan allocation of its denomination); None when neither exists."""
    model = catalog.model_for_denomination(pool.denomination)
    if model is not None and model.low_balance_threshold is not None:
        return model.low_balance_threshold
    prefix = f"{pool.denomination}@"
    newest: tuple[str, Decimal] | None = None
    for sub in state.subscriptions.values():
        for key in reversed(sub.allocation_granted):  # dicts keep grant order: newest last
            if key.startswith(prefix):
                if newest is None or key > newest[0]:
                    newest = (key, sub.allocation_granted[key])
                break
    if newest is None or newest[1] <= 0:
        return None
    return newest[1] * DEFAULT_LOW_BALANCE_PERCENT / 100


def balance_level(balance: Decimal, threshold: Decimal | None) -> BalanceLevel:
    if balance <= 0:
        return BalanceLevel.DEPLETED
    if threshold is not None and balance < threshold:
        return BalanceLevel.LOW
    return BalanceLevel.OK


def pool_notices(
    state: CustomerState, facts: Sequence[Fact], catalog: Catalog, touched: dict[str, int]
) -> list[Positioned]:
    """WHK-E10..WHK-E14: for each pool the turn's credit facts touched (by denomination, with
    the position of the last of them), the crossings of its level since it was last notified.
    A pool never notified starts at the level of its balance before the turn."""
    raised: list[Positioned] = []
    for denomination, position in touched.items():
        pool = state.pools.get(denomination)
        if pool is None:
            continue
        threshold = low_balance_threshold(state, catalog, pool)
        now = balance_level(pool.balance, threshold)
        was = state.notices.pool_levels.get(denomination)
        if was is None and _opened(facts, denomination):
            was = BalanceLevel.OK  # a new pool has crossed nothing yet
        elif was is None:
            was = balance_level(_balance_before(facts, denomination, pool), threshold)
        for notice in _level_notices(pool, threshold, was, now):
            raised.append((position, notice))
    return raised


def _opened(facts: Sequence[Fact], denomination: str) -> bool:
    return any(isinstance(f, CreditPoolOpened) and f.denomination == denomination for f in facts)


def _balance_before(facts: Sequence[Fact], denomination: str, pool: CreditPool) -> Decimal:
    for fact in facts:
        if isinstance(fact, CREDIT_MOVES) and fact.denomination == denomination:
            return fact.transaction.balance_before
    return pool.balance


def _level_notices(
    pool: CreditPool, threshold: Decimal | None, was: BalanceLevel, now: BalanceLevel
) -> list[Notification]:
    """Falling fires each level crossed, in order (low, then depleted); rising fires one
    recovered, carrying the level reached (WHK-E13)."""
    at = (pool.id, pool.denomination, pool.balance, threshold)
    if _RANK[now] > _RANK[was]:
        return [CreditBalanceRecovered(**_pool_fields(*at), level=now)]
    notices: list[Notification] = []
    if _RANK[now] < _RANK[was]:
        if was is BalanceLevel.OK and threshold is not None:
            notices.append(CreditBalanceLow(**_pool_fields(*at)))
        if now is BalanceLevel.DEPLETED:
            notices.append(CreditBalanceDepleted(**_pool_fields(*at)))
    return notices


class _PoolFields(TypedDict):
    pool_id: uuid.UUID
    denomination: str
    balance: Decimal
    low_threshold: Decimal | None


def _pool_fields(
    pool_id: uuid.UUID, denomination: str, balance: Decimal, threshold: Decimal | None
) -> _PoolFields:
    return {
        "pool_id": pool_id,
        "denomination": denomination,
        "balance": balance,
        "low_threshold": threshold,
    }
