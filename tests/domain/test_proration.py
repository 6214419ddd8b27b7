"""Proration (INV-50..INV-52, AMB-18): exact cents, and parts that add up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from allotment.domain.money import round_money
from allotment.domain.proration import unused_ratio

D = Decimal
APRIL = (datetime(2025, 4, 1, tzinfo=UTC), datetime(2025, 5, 1, tzinfo=UTC))  # 30 days


@pytest.mark.parametrize(
    ("days_used", "old", "new", "ratio", "old_remaining", "new_remaining", "amount"),
    [
        (10, "49", "99", "0.66666667", "32.67", "66.00", "33.33"),  # the spec's worked example
        (0, "49", "99", "1", "49.00", "99.00", "50.00"),
        (30, "49", "99", "0", "0.00", "0.00", "0.00"),
        (15, "19", "49", "0.5", "9.50", "24.50", "15.00"),
        (29, "49", "99", "0.03333333", "1.63", "3.30", "1.67"),
    ],
)
def test_inv51_upgrade_adjustment_table(
    days_used: int,
    old: str,
    new: str,
    ratio: str,
    old_remaining: str,
    new_remaining: str,
    amount: str,
) -> None:
    r = unused_ratio(*APRIL, APRIL[0] + timedelta(days=days_used))
    assert r == D(ratio)
    assert round_money(r * D(old), "USD") == D(old_remaining)
    assert round_money(r * D(new), "USD") == D(new_remaining)
    assert round_money(r * D(new), "USD") - round_money(r * D(old), "USD") == D(amount)


def test_inv50_ratio_is_clamped_and_counts_milliseconds() -> None:
    start, end = APRIL
    assert unused_ratio(start, end, start - timedelta(days=1)) == 1
    assert unused_ratio(start, end, end + timedelta(days=1)) == 0
    assert unused_ratio(start, end, end - timedelta(milliseconds=1)) == D(
        "0.00000000"
    )  # rounds half-up
    assert unused_ratio(start, end, start + timedelta(hours=12)) == D("0.98333333")


instants = st.integers(min_value=0, max_value=30 * 86_400_000)


@given(st.lists(instants, min_size=1, max_size=6, unique=True))
def test_inv52_segment_shares_telescope_to_exactly_one(boundaries: list[int]) -> None:
    """Each segment's share is r(start) − r(end), so the shares always sum to exactly 1 and
    the elapsed share of an upgrade is exactly 1 − r (INV-52)."""
    start, end = APRIL
    points = [start, *sorted(start + timedelta(milliseconds=ms) for ms in boundaries), end]
    shares = [
        unused_ratio(start, end, a) - unused_ratio(start, end, b) for a, b in pairwise(points)
    ]
    assert sum(shares) == 1
    assert all(share >= 0 for share in shares)


@given(instants, st.decimals(min_value=0, max_value=10_000, places=2))
def test_inv50_credit_and_kept_part_sum_to_the_price(ms: int, price: Decimal) -> None:
    """The immediate-cancel credit is rounded once; the part kept is the exact remainder."""
    start, end = APRIL
    credit = round_money(
        unused_ratio(start, end, start + timedelta(milliseconds=ms)) * price, "USD"
    )
    kept = price - credit
    assert credit + kept == price
    assert D(0) <= credit <= price
    assert credit == credit.quantize(D("0.01"))
