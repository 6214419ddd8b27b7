"""Reading usage counters (ENT-20) and placing an event in a usage bucket (AMB-23)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from allotment.domain.catalog import ResetMode
from allotment.domain.money import ZERO
from allotment.domain.periods import period_containing
from allotment.domain.state import CustomerState, Subscription

__all__ = ("before_start", "bucket_for", "used_units")


def used_units(
    state: CustomerState, sub: Subscription, feature_key: str, mode: ResetMode
) -> Decimal:
    """`used` for one feature under one subscription.

    `reset` counts the current period's bucket; `accumulate` counts every bucket from the
    subscription's first period up to and including the current one, across plan changes.
    """
    counter = state.usage.get(sub.id, {}).get(feature_key)
    if counter is None:
        return ZERO
    if mode is ResetMode.RESET:
        return counter.used.get(sub.current_period_start, ZERO)
    current = sub.current_period_start
    return sum((v for start, v in counter.used.items() if start <= current), ZERO)


def bucket_for(sub: Subscription, occurred_at: datetime) -> datetime:
    """Start of the period of `sub`'s grid containing `occurred_at`. Usage dated before the
    subscription's first period is attributed to it (EVT-24), so INV-30 bills it with the first
    period (MNY-B6); see `before_start`."""
    if sub.current_period_start <= occurred_at < sub.current_period_end:
        return sub.current_period_start  # the common case: no calendar arithmetic
    if before_start(sub, occurred_at):
        return sub.first_period_start
    start, _ = period_containing(
        occurred_at, sub.first_period_start, sub.interval_months, sub.billing_anchor_day
    )
    return start


def before_start(sub: Subscription, occurred_at: datetime) -> bool:
    """Whether `occurred_at` precedes `sub`'s first period: such usage is billed with the first
    period but counts toward no limit, since `used` covers only the subscription's own periods
    (ENT-20, MNY-B6)."""
    return occurred_at < sub.first_period_start
