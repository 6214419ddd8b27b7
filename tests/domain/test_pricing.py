"""Usage charges: INV-32, INV-33 (graduated tiers and flat fees), INV-34 (accumulate)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from allotment.domain.catalog import FeatureLink, PriceTier, PricingType, ResetMode
from allotment.domain.money import round_money
from allotment.domain.pricing import graduated_charge, usage_charge

D = Decimal
GUIDE_TIERS = (
    PriceTier(up_to=D(100), price_per_unit=D("0.5"), flat_fee=D(5)),
    PriceTier(up_to=None, price_per_unit=D("0.1")),
)


@pytest.mark.parametrize(
    ("quantity", "charge"),
    [("0", "0"), ("1", "5.5"), ("100", "55"), ("101", "55.1"), ("150", "60"), ("100.5", "55.05")],
)
def test_inv33_graduated_table_from_the_spec(quantity: str, charge: str) -> None:
    """INV-33 example and checklist item 27: Q = 0, 100, 101, 150 -> 0, 55.00, 55.10, 60.00."""
    assert graduated_charge(GUIDE_TIERS, D(quantity)) == D(charge)


THREE_TIERS = (
    PriceTier(up_to=D(10), price_per_unit=D(1)),
    PriceTier(up_to=D(20), price_per_unit=D("0.5"), flat_fee=D(3)),
    PriceTier(up_to=None, price_per_unit=D("0.25"), flat_fee=D(7)),
)


@pytest.mark.parametrize(
    ("quantity", "charge"),
    [
        ("10", "10"),  # the top of tier 1 is inclusive: no unit reaches tier 2, no fee
        ("10.000001", "13.0000005"),  # one millionth of a unit reaches tier 2: its fee applies
        ("20", "18"),
        ("21", "25.25"),  # tier 3's fee on its first unit
    ],
)
def test_inv33_tier_boundaries_are_inclusive_and_fees_charge_once(
    quantity: str, charge: str
) -> None:
    assert graduated_charge(THREE_TIERS, D(quantity)) == D(charge)


quantities = st.decimals(
    min_value=0, max_value=10**7, places=6, allow_nan=False, allow_infinity=False
)


@given(quantities, quantities)
def test_inv33_graduated_charge_is_monotonic(a: Decimal, b: Decimal) -> None:
    low, high = sorted((a, b))
    assert graduated_charge(THREE_TIERS, low) <= graduated_charge(THREE_TIERS, high)


@given(quantities)
def test_inv33_graduated_charge_equals_sum_over_slabs(q: Decimal) -> None:
    """Graduated (slab) pricing: every unit is priced by the tier it falls in."""
    expected = min(q, D(10)) * 1
    expected += max(D(0), min(q, D(20)) - 10) * D("0.5") + (3 if q > 10 else 0)
    expected += max(D(0), q - 20) * D("0.25") + (7 if q > 20 else 0)
    assert graduated_charge(THREE_TIERS, q) == expected


def test_inv32_usage_based_charges_every_unit() -> None:
    link = FeatureLink(
        feature_key="api",
        pricing_type=PricingType.USAGE_BASED,
        price_per_unit=D("0.05"),
        max_usage=D(10),
    )
    assert round_money(usage_charge(link, D(1234), D(1234)), "USD") == D("61.70")


def test_inv41_line_rounds_once_not_per_event() -> None:
    """Checklist 28: 1,000 events of 1 unit at 0.004 bill 4.00, not 0."""
    link = FeatureLink(
        feature_key="api", pricing_type=PricingType.USAGE_BASED, price_per_unit=D("0.004")
    )
    assert round_money(usage_charge(link, D(1000), D(1000)), "USD") == D("4.00")


def test_included_features_never_charge() -> None:
    link = FeatureLink(feature_key="seats", pricing_type=PricingType.INCLUDED)
    assert usage_charge(link, D(10**6), D(10**6)) == 0


@given(st.lists(quantities, min_size=1, max_size=8))
def test_inv34_accumulate_period_charges_sum_to_the_lifetime_charge(periods: list[Decimal]) -> None:
    """INV-34: positioned by cumulative usage, the periods' charges add up to G(lifetime)."""
    link = FeatureLink(
        feature_key="storage",
        pricing_type=PricingType.GRADUATED,
        tiers=THREE_TIERS,
        reset_mode=ResetMode.ACCUMULATE,
    )
    cumulative = D(0)
    total = D(0)
    for q in periods:
        cumulative += q
        total += usage_charge(link, q, cumulative)
    assert total == graduated_charge(THREE_TIERS, cumulative)


def test_round_money_is_half_up_per_currency() -> None:
    """INV-41: half-up to the minor unit: 2 places for USD, 0 for JPY, 3 for KWD."""
    assert round_money(D("0.125"), "USD") == D("0.13")
    assert round_money(D("-0.125"), "USD") == D("-0.13")
    assert round_money(D("10.5"), "JPY") == D(11)
    assert round_money(D("1.0005"), "KWD") == D("1.001")
