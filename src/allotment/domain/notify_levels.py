"""The threshold notifications: usage against max_usage (WHK-E1..WHK-E5) and a pool's balance
against its low-balance threshold (WHK-E10..WHK-E14). Both run on the ingest hot path, so the
common case (nothing near a threshold) costs a comparison or two per fact."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import TypedDict

from allotment.domain.catalog import Catalog, FeatureLink
from allotment.domain.context import TurnContext
from allotment.domain.credits import CreditPool
from allotment.domain.facts import (
    CreditsDebited,
    CreditsExpired,
    CreditsGranted,
    CreditsReversed,
    Fact,
    NotificationRaised,
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

__all__ = (
    "CREDIT_MOVES",
    "DEFAULT_LOW_BALANCE_PERCENT",
    "DEFAULT_USAGE_PERCENTS",
    "CreditMove",
    "Positioned",
    "balance_level",
    "low_balance_threshold",
    "pool_notices",
    "threshold_notices",
)

DEFAULT_USAGE_PERCENTS = (80, 100)  # WHK-E3
DEFAULT_LOW_BALANCE_PERCENT = Decimal(20)  # WHK-E10: of the last period's allocation
_LOW_BALANCE_SHARE = DEFAULT_LOW_BALANCE_PERCENT / 100

Positioned = tuple[int, Notification]
"""A notice and the position, among the turn's facts, of the fact after which it is raised."""

CreditMove = CreditsDebited | CreditsExpired | CreditsGranted | CreditsReversed
CREDIT_MOVES = (CreditsDebited, CreditsExpired, CreditsGranted, CreditsReversed)
"""The facts that move a pool's balance, each with its ledger transaction."""

_RANK = {BalanceLevel.DEPLETED: 0, BalanceLevel.LOW: 1, BalanceLevel.OK: 2}


def threshold_notices(
    state: CustomerState, sub: Subscription, link: FeatureLink, used: Decimal, ctx: TurnContext
) -> tuple[Fact, ...]:
    """WHK-E1..WHK-E5: the thresholds of `link` that an event counted in `sub`'s current
    period reached, `used` being the period's usage with the event: each once per
    (subscription, feature, period), in ascending order. Decided with the event, in
    `record_usage`, where the limit and the usage are already at hand."""
    limit = link.max_usage
    percents = DEFAULT_USAGE_PERCENTS if link.notify_at_percent is None else link.notify_at_percent
    if limit is None or not percents or used * 100 < limit * percents[0]:
        return ()  # the common case: below every threshold
    period = sub.current_period_start
    fired = state.notices.usage_thresholds.get(threshold_key(sub.id, link.feature_key, period))
    plan = ctx.catalog.plans.get(sub.plan_id)
    return tuple(
        NotificationRaised(
            at=ctx.now,
            notification_id=ctx.new_id(),
            payload=UsageThresholdCrossed(
                subscription_id=sub.id,
                plan_key=plan.key if plan is not None else None,
                feature_key=link.feature_key,
                percent=percent,
                period_start=period,
                period_end=sub.current_period_end,
                used=used,
                limit=limit,
            ),
        )
        for percent in percents
        if (fired is None or percent not in fired) and used * 100 >= limit * percent
    )


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
    return newest[1] * _LOW_BALANCE_SHARE


def balance_level(balance: Decimal, threshold: Decimal | None) -> BalanceLevel:
    if balance <= 0:
        return BalanceLevel.DEPLETED
    if threshold is not None and balance < threshold:
        return BalanceLevel.LOW
    return BalanceLevel.OK


def pool_notices(
    state: CustomerState, catalog: Catalog, touched: dict[str, int]
) -> list[Positioned]:
    """WHK-E10..WHK-E14: for each pool the turn's credit facts touched (by denomination, with
    the position of the last of them), the crossings of its level since it was last notified.
    A pool never notified is at `ok` (a new pool has crossed nothing)."""
    raised: list[Positioned] = []
    for denomination, position in touched.items():
        pool = state.pools.get(denomination)
        if pool is None:
            continue
        was = state.notices.pool_levels.get(denomination, BalanceLevel.OK)
        threshold = low_balance_threshold(state, catalog, pool)
        now = balance_level(pool.balance, threshold)
        if now is not was:
            raised += [(position, notice) for notice in _level_notices(pool, threshold, was, now)]
    return raised


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
