"""Exact money and quantity arithmetic (INV-40..INV-44, AMB-25).

Amounts are `Decimal` in major units, as on the wire. Every rounding is named here so that
no caller divides or quantizes ad hoc.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

__all__ = (
    "CREDIT_QUANTUM",
    "USAGE_QUANTUM",
    "ZERO",
    "allocate_money",
    "minor_unit_exponent",
    "round_credits",
    "round_money",
    "round_ratio",
    "round_usage",
    "to_minor_units",
)

ZERO = Decimal(0)
USAGE_QUANTUM = Decimal("0.000001")  # INV-43: usage keeps 6 decimal places
CREDIT_QUANTUM = Decimal("0.0001")  # INV-43: credits keep 4 decimal places
RATIO_QUANTUM = Decimal("0.00000001")  # INV-50: proration ratios keep 8 decimal places
COST_QUANTUM = Decimal("0.000001")  # EVT-30: model costs keep 6 decimal places

# ISO 4217 currencies whose minor unit is not 2 digits. Everything else has cents.
_EXPONENTS: dict[str, int] = {
    "BIF": 0,
    "CLP": 0,
    "DJF": 0,
    "GNF": 0,
    "ISK": 0,
    "JPY": 0,
    "KMF": 0,
    "KRW": 0,
    "PYG": 0,
    "RWF": 0,
    "UGX": 0,
    "UYI": 0,
    "VND": 0,
    "VUV": 0,
    "XAF": 0,
    "XOF": 0,
    "XPF": 0,
    "BHD": 3,
    "IQD": 3,
    "JOD": 3,
    "KWD": 3,
    "LYD": 3,
    "OMR": 3,
    "TND": 3,
}


def minor_unit_exponent(currency: str) -> int:
    """Number of decimal places of `currency`'s minor unit (2 for USD, 0 for JPY)."""
    return _EXPONENTS.get(currency, 2)


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Round once, half-up (away from zero at .5), to the currency's minor unit (INV-41)."""
    return amount.quantize(Decimal(1).scaleb(-minor_unit_exponent(currency)), ROUND_HALF_UP)


def to_minor_units(amount: Decimal, currency: str) -> int:
    """Whole minor units of an amount already rounded to the currency (Stripe's unit_amount)."""
    return int(round_money(amount, currency).scaleb(minor_unit_exponent(currency)))


def round_usage(units: Decimal) -> Decimal:
    """Usage quantities keep 6 decimal places, half-up (INV-43)."""
    return units.quantize(USAGE_QUANTUM, ROUND_HALF_UP)


def round_credits(credits: Decimal) -> Decimal:
    """Credit amounts keep 4 decimal places, half-up when derived (INV-43, CRD-30)."""
    return credits.quantize(CREDIT_QUANTUM, ROUND_HALF_UP)


def round_ratio(ratio: Decimal) -> Decimal:
    """Proration ratios: 8 decimal places, half-up, clamped to [0, 1] (INV-50)."""
    return min(Decimal(1), max(ZERO, ratio.quantize(RATIO_QUANTUM, ROUND_HALF_UP)))


def allocate_money(parts: Sequence[Decimal], currency: str) -> list[Decimal]:
    """Round the exact `parts` of one amount so that they sum to the rounded whole (MNY-B4).

    Largest remainder: each part is first rounded down (toward -inf) to the minor unit; the
    units still missing to reach `round_money(sum(parts))` go one each to the parts with the
    largest dropped remainders, ties to the earlier part. Rounding each part on its own
    (INV-41) could leave the lines a cent off their own total.

    Args:
        parts: exact, unrounded amounts in major units; any sign.
        currency: the currency whose minor unit the parts are rounded to.

    Returns:
        The rounded parts, in the order given.
    """
    unit = Decimal(1).scaleb(-minor_unit_exponent(currency))
    whole = round_money(sum(parts, ZERO), currency)
    floors = [part.quantize(unit, ROUND_FLOOR) for part in parts]
    missing = int((whole - sum(floors, ZERO)) / unit)  # in [0, len(parts)]: see the docstring
    by_remainder = sorted(range(len(parts)), key=lambda i: (floors[i] - parts[i], i))
    for i in by_remainder[:missing]:
        floors[i] += unit
    return floors
