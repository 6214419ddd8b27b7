"""The words and numbers a document prints: money, quantities, dates and labels (CN-D2)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from allotment.domain.money import minor_unit_exponent

__all__ = ("label", "money", "money_with_code", "quantity", "when")


def money(amount: Decimal, currency: str) -> str:
    """`amount` with thousands separators and at least the currency's minor-unit places
    (2 for USD, 0 for JPY, 3 for KWD), never fewer digits than it has: a document shows the
    amount it was given, exactly. Decimal formatting throughout; a float would misprint."""
    places = minor_unit_exponent(currency)
    # 0.001500 per unit prints 0.0015; a zero of any sign or scale prints 0.00.
    exact = amount.normalize() if amount else Decimal(0)
    if -_exponent(exact) < places:
        exact = exact.quantize(Decimal(1).scaleb(-places))  # adds zeros only: exact
    return f"{exact:,f}"


def money_with_code(amount: Decimal, currency: str) -> str:
    return f"{money(amount, currency)} {currency}"


def quantity(value: Decimal) -> str:
    """A quantity without trailing zeros: 1500 calls, 2.5 hours."""
    return f"{value.normalize() if value else Decimal(0):,f}"


def when(day: date | None) -> str:
    """ISO dates: unambiguous in every locale a customer may read them in."""
    return day.isoformat() if day is not None else "–"


def label(code: str) -> str:
    """An enum value as words: BILLING_ERROR is printed "Billing error"."""
    return code.replace("_", " ").capitalize()


def _exponent(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    return exponent
