"""Windows of meter queries in a time zone, with integer arithmetic in DuckDB (OM-42, OM-43).

Converting every event's instant to local time through ICU costs more than the rest of a
query over millions of events, so the zone's UTC offsets over the query's range are looked up
here once (`zoneinfo`), and the SQL adds the right one to each event's epoch microseconds
(`CASE` over the few transitions in the range). Events are grouped by their local window key;
the few windows of the result are turned back into instants here:

- MINUTE and HOUR: the local minute or hour, cut at the event's own offset, so the repeated
  hour of a DST fall-back is two windows; the window is [key - offset, + size).
- DAY and MONTH: the local calendar day or month; its bounds are its local midnights as
  instants (a DAY across a DST change lasts 23 or 25 hours). A midnight that does not exist
  or happens twice is read with `fold=0`, as `zoneinfo` does.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Final
from zoneinfo import ZoneInfo

from allotment.domain.meter_queries import WindowSize

__all__ = ("EPOCH", "bounds", "key_sql", "offset_sql", "offsets")

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH: Final = EPOCH.replace(tzinfo=None)  # local wall times count from here
_US: Final = timedelta(microseconds=1)
_SIZES: Final = {WindowSize.MINUTE: 60_000_000, WindowSize.HOUR: 3_600_000_000,
                 WindowSize.DAY: 86_400_000_000}  # fmt: skip


def _micros(at: datetime) -> int:
    return (at - EPOCH) // _US


def _offset(zone: ZoneInfo, at: datetime) -> int:
    offset = at.astimezone(zone).utcoffset()
    assert offset is not None
    return offset // _US


def offsets(zone_name: str, low: datetime, high: datetime) -> list[tuple[int | None, int]]:
    """The zone's offsets (microseconds) over [low, high]: (from, offset) pairs, the first
    from None (since ever). Transitions are found by daily steps and bisection to the second;
    zones change offset at most a few times a year."""
    zone = ZoneInfo(zone_name)
    result: list[tuple[int | None, int]] = [(None, _offset(zone, low))]
    at = low
    while at < high:
        following = min(at + timedelta(days=1), high)
        if _offset(zone, following) != result[-1][1]:
            before, after = at, following
            while after - before > timedelta(seconds=1):
                middle = before + (after - before) / 2
                before, after = (
                    (middle, after) if _offset(zone, middle) == result[-1][1] else (before, middle)
                )
            result.append((_micros(after), _offset(zone, after)))
        at = following
    return result


def offset_sql(pairs: list[tuple[int | None, int]]) -> str:
    """The offset of the event whose epoch microseconds are `t`, as SQL (our integers only)."""
    if len(pairs) == 1:
        return str(pairs[0][1])
    cases = " ".join(f"WHEN t < {start} THEN {previous[1]}"
                     for previous, (start, _) in pairwise(pairs))  # fmt: skip
    return f"(CASE {cases} ELSE {pairs[-1][1]} END)"


def key_sql(size: WindowSize, offset: str) -> tuple[str, str]:
    """(the window key, the offset grouped by) as SQL: local microseconds of the window's
    start; the offset only for MINUTE and HOUR (DAY and MONTH windows span offsets)."""
    local = f"(t + {offset})"
    if size is WindowSize.MONTH:
        return f"epoch_us(date_trunc('month', make_timestamp({local})))", "0"
    n = _SIZES[size]
    key = f"({local} - ((({local} % {n}) + {n}) % {n}))"  # floor, also before 1970
    return key, offset if size in (WindowSize.MINUTE, WindowSize.HOUR) else "0"


def bounds(size: WindowSize, zone_name: str, key: int, offset: int) -> tuple[datetime, datetime]:
    """The window of a key as instants (UTC)."""
    if size in (WindowSize.MINUTE, WindowSize.HOUR):
        start = EPOCH + (key - offset) * _US
        return start, start + _SIZES[size] * _US
    zone = ZoneInfo(zone_name)
    local = _NAIVE_EPOCH + key * _US
    if size is WindowSize.DAY:
        following = local + timedelta(days=1)
    else:
        following = (local + timedelta(days=32)).replace(day=1)
    return (local.replace(tzinfo=zone).astimezone(UTC),
            following.replace(tzinfo=zone).astimezone(UTC))  # fmt: skip
