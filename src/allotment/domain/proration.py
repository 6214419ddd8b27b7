"""Time-based proration (INV-50..INV-52, AMB-18): milliseconds, 8 decimals, clamped."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from allotment.domain.money import round_ratio

__all__ = ("unused_ratio",)


def _ms(start: datetime, end: datetime) -> int:
    delta = end - start
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def unused_ratio(period_start: datetime, period_end: datetime, at: datetime) -> Decimal:
    """r = (periodEnd − at) / (periodEnd − periodStart), half-up to 8 places, in [0, 1]."""
    whole = _ms(period_start, period_end)
    if whole <= 0:
        return Decimal(0)
    return round_ratio(Decimal(_ms(at, period_end)) / Decimal(whole))
