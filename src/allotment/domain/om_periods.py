"""OpenMeter's recurring periods (OM-81, OM-82): an ISO-8601 duration on an anchor grid.

A usage period is `[anchor + k*interval, anchor + (k+1)*interval)` for an integer k, negative
included. Calendar parts (years, months) step from the anchor itself, clamped to month end,
so an anchor on the 31st never drifts (the rule of `periods.add_months`). Expirations
(`HOUR|DAY|WEEK|MONTH|YEAR` times a count) use the same arithmetic.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Final

import msgspec

from allotment.domain.periods import add_months

__all__ = (
    "INTERVAL_ENUM",
    "Interval",
    "boundary",
    "expiration_end",
    "parse_interval",
    "period_containing",
)

INTERVAL_ENUM: Final = {"DAY": "P1D", "WEEK": "P1W", "MONTH": "P1M", "YEAR": "P1Y"}
_EXPIRATION: Final = {"HOUR": "PT1H", "DAY": "P1D", "WEEK": "P1W", "MONTH": "P1M", "YEAR": "P1Y"}
_ISO: Final = re.compile(
    r"P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?"
)
_LOOP_MAX: Final = 64  # the estimate of k is off by at most a few steps; this bounds the fix-up


class Interval(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """A parsed duration: whole calendar months, then a fixed number of seconds. `iso` is the
    canonical ISO-8601 spelling (the wire's `intervalISO`)."""

    iso: str
    months: int = 0
    seconds: int = 0

    def after(self, start: datetime, steps: int, anchor_day: int) -> datetime:
        """`start` plus `steps` intervals, the months counted from `start` (no drift)."""
        shifted = add_months(start, self.months * steps, anchor_day) if self.months else start
        return shifted + timedelta(seconds=self.seconds * steps)

    def approx_seconds(self) -> float:
        return self.months * 30.436875 * 86400 + self.seconds


def parse_interval(text: str) -> Interval | None:
    """OM-81: `DAY|WEEK|MONTH|YEAR` or an ISO-8601 duration of whole units (`P1M`, `PT6H`,
    `P1Y2M3DT4H`); None when `text` is neither, or is a zero or fractional duration."""
    text = INTERVAL_ENUM.get(text, text)
    match = _ISO.fullmatch(text)
    if match is None or text in ("P", "PT") or text.endswith("T"):
        return None
    years, months, weeks, days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    total_months = years * 12 + months
    total_seconds = ((weeks * 7 + days) * 24 + hours) * 3600 + minutes * 60 + seconds
    if total_months == 0 and total_seconds == 0:
        return None
    return Interval(iso=text, months=total_months, seconds=total_seconds)


def boundary(anchor: datetime, interval: Interval, k: int) -> datetime:
    """The k-th boundary of the anchor grid."""
    return interval.after(anchor, k, anchor.day)


def period_containing(
    anchor: datetime, interval: Interval, instant: datetime
) -> tuple[datetime, datetime]:
    """The period `[start, end)` of the grid that contains `instant`."""
    k = int((instant - anchor).total_seconds() // interval.approx_seconds())
    for _ in range(_LOOP_MAX):
        start = boundary(anchor, interval, k)
        if start > instant:
            k -= 1
            continue
        end = boundary(anchor, interval, k + 1)
        if end <= instant:
            k += 1
            continue
        return start, end
    raise AssertionError("period search did not converge")


def expiration_end(start: datetime, duration: str, count: int) -> datetime | None:
    """OM-85: when a grant effective at `start` expires, `count` times `duration`; None for an
    unknown duration."""
    iso = _EXPIRATION.get(duration)
    if iso is None:
        return None
    interval = parse_interval(iso)
    assert interval is not None
    return interval.after(start, count, start.day)
