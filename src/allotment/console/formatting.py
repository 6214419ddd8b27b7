"""The templates' number filters: `number` (thousands separated, exact: a Decimal keeps its
digits, trailing zeros dropped) and `money` (two places, rounded half-even as a display)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

__all__ = ("FILTERS", "money", "number")

_CENT = Decimal("0.01")


def number(value: Any) -> str:
    if isinstance(value, Decimal):
        normal = value.normalize()
        if normal == normal.to_integral_value():
            return f"{int(normal):,}"
        return f"{normal:,f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def money(value: Any) -> str:
    return f"{Decimal(value).quantize(_CENT, rounding=ROUND_HALF_EVEN):,}"


FILTERS: dict[str, Callable[[Any], str]] = {"number": number, "money": money}
