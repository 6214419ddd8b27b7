"""Period arithmetic (SUB-13): calendar months on an anchor day, clamped at month end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from allotment.domain.periods import add_months, period_containing, start_of_day


def utc(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "months", "anchor", "expected"),
    [
        (utc(2025, 1, 15), 1, 15, utc(2025, 2, 15)),  # the spec's example
        (utc(2025, 1, 31), 1, 31, utc(2025, 2, 28)),
        (utc(2024, 1, 31), 1, 31, utc(2024, 2, 29)),  # leap year
        (utc(2025, 2, 28), 1, 31, utc(2025, 3, 31)),  # back to the anchor, no drift
        (utc(2025, 1, 30), 1, 30, utc(2025, 2, 28)),
        (utc(2025, 1, 29), 1, 29, utc(2025, 2, 28)),
        (utc(2024, 1, 29), 1, 29, utc(2024, 2, 29)),
        (utc(2025, 1, 28), 1, 28, utc(2025, 2, 28)),
        (utc(2025, 11, 30), 3, 30, utc(2026, 2, 28)),  # quarterly across a year end
        (utc(2024, 2, 29), 12, 29, utc(2025, 2, 28)),  # annual from a leap day
        (utc(2025, 2, 28), 12, 29, utc(2026, 2, 28)),
        (utc(2027, 2, 28), 12, 29, utc(2028, 2, 29)),
        (utc(2025, 8, 31), -6, 31, utc(2025, 2, 28)),
    ],
)
def test_sub13_add_months_clamps_to_month_end(
    start: datetime, months: int, anchor: int, expected: datetime
) -> None:
    assert add_months(start, months, anchor) == expected


def test_sub13_anchor_31_never_drifts_over_a_year() -> None:
    ends = [add_months(utc(2025, 1, 31), k, 31) for k in range(1, 13)]
    assert [e.day for e in ends] == [28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31, 31]


def test_start_of_day_truncates_to_utc_midnight() -> None:
    """SUB-13: a period starts at 00:00:00Z of the creation day, whatever the input offset."""
    local = datetime(2025, 1, 15, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert start_of_day(local) == utc(2025, 1, 16)


instants = st.datetimes(  # hypothesis wants naive bounds; timezones= makes the values aware
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)


@given(instants, st.integers(min_value=1, max_value=31), st.sampled_from([1, 3, 12]), instants)
def test_sub13_period_containing_is_half_open_and_on_the_grid(
    origin: datetime, anchor_day: int, interval: int, instant: datetime
) -> None:
    first = add_months(start_of_day(origin).replace(day=1), 0, anchor_day)
    start, end = period_containing(instant, first, interval, anchor_day)
    assert start <= instant < end
    assert add_months(start, interval, anchor_day) == end
    # start lies on the grid first + k * interval
    months = (start.year - first.year) * 12 + start.month - first.month
    assert months % interval == 0
    assert add_months(first, months, anchor_day) == start
