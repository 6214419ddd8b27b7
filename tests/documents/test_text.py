"""Money and quantities as documents print them (docs/credit-notes.md, CN-D2)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from allotment.documents import text


@pytest.mark.parametrize(
    ("amount", "currency", "printed"),
    [
        ("49", "USD", "49.00"),
        ("1234567.5", "USD", "1,234,567.50"),
        ("-12.35", "EUR", "-12.35"),
        ("0.0015", "USD", "0.0015"),  # a unit price keeps its digits: never rounded away
        ("0.001500", "USD", "0.0015"),  # ... but not its trailing zeros
        ("-0.00", "USD", "0.00"),
        ("1E+3", "USD", "1,000.00"),
        ("4900", "JPY", "4,900"),
        ("0.0012", "JPY", "0.0012"),
        ("12.3", "KWD", "12.300"),
        ("1.1", "BHD", "1.100"),
        # Beyond a float's 15-16 significant digits: float would print ...567.88 or worse.
        ("12345678901234567.89", "USD", "12,345,678,901,234,567.89"),
    ],
)
def test_money_prints_exactly_with_the_currency_minor_units(
    amount: str, currency: str, printed: str
) -> None:
    assert text.money(Decimal(amount), currency) == printed


def test_a_sum_of_tenths_prints_as_decimal_arithmetic_gives_it() -> None:
    assert (
        text.money(Decimal("0.1") + Decimal("0.2"), "USD") == "0.30"
    )  # float: 0.30000000000000004


def test_quantities_drop_trailing_zeros() -> None:
    assert [text.quantity(Decimal(q)) for q in ("1500.000000", "2.50", "0E-6")] == [
        "1,500",
        "2.5",
        "0",
    ]


def test_labels_and_dates() -> None:
    assert text.label("SUBSCRIPTION_CANCELLATION") == "Subscription cancellation"
    assert text.when(None) == "–"
