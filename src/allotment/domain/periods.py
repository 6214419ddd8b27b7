"""Billing periods: calendar months on an anchor day, half-open `[start, end)` (SUB-13).

All instants are timezone-aware UTC datetimes. Periods start at 00:00:00Z.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime

__all__ = ("add_months", "period_containing", "start_of_day")


def start_of_day(instant: datetime) -> datetime:
    """00:00:00Z of the UTC day containing `instant`."""
    utc = instant.astimezone(UTC)
    return datetime(utc.year, utc.month, utc.day, tzinfo=UTC)


def add_months(start: datetime, months: int, anchor_day: int) -> datetime:
    """The instant `months` calendar months after `start`, on `anchor_day` clamped to month end.

    Clamping never drifts: anchor 31 gives Jan 31 -> Feb 28/29 -> Mar 31, because every step
    goes back to the anchor rather than to the previous (clamped) day.
    """
    month_index = start.year * 12 + (start.month - 1) + months
    year, month = divmod(month_index, 12)
    month += 1
    day = min(anchor_day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day)


def period_containing(
    instant: datetime, first_start: datetime, interval_months: int, anchor_day: int
) -> tuple[datetime, datetime]:
    """The period `[start, end)` of a subscription's period grid that contains `instant`.

    The grid is `first_start + k * interval_months` for every integer k, negative included, so an
    instant before the first period maps to a period before it.
    """
    months = (instant.year - first_start.year) * 12 + (instant.month - first_start.month)
    k = months // interval_months
    start = add_months(first_start, k * interval_months, anchor_day)
    # The month estimate is off by at most one period either way (days within the month).
    while start > instant:
        k -= 1
        start = add_months(first_start, k * interval_months, anchor_day)
    end = add_months(first_start, (k + 1) * interval_months, anchor_day)
    while end <= instant:
        k += 1
        start, end = end, add_months(first_start, (k + 1) * interval_months, anchor_day)
    return start, end
