"""Bar charts drawn on the server as inline SVG (CON-16, CON-45), as `charts.py` draws the
burn-down line: a chart
is a few rectangles and labels, so drawing it here costs microseconds, needs no script and no
vendored library, and reads the same with JavaScript off. Each chart keeps its numbers, which
the template also lists in a table for screen readers and for anyone who wants the figures.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

__all__ = ("Bar", "BarChart", "bar_chart")

WIDTH = 640
HEIGHT = 180
_LEFT = 48  # room for the scale's labels
_BOTTOM = 22  # room for the first and last bucket's labels
_TOP = 8


class Bar(msgspec.Struct, frozen=True, kw_only=True):
    label: str  # the bucket, as the table lists it
    value: Decimal
    x: float
    y: float
    width: float
    height: float


class BarChart(msgspec.Struct, frozen=True, kw_only=True):
    title: str
    unit: str
    bars: tuple[Bar, ...]
    peak: Decimal  # the scale's top
    width: int = WIDTH
    height: int = HEIGHT
    left: int = _LEFT
    base: int = HEIGHT - _BOTTOM  # the y of the zero line

    @property
    def total(self) -> Decimal:
        return sum((bar.value for bar in self.bars), Decimal(0))


def _scale_top(peak: Decimal) -> Decimal:
    """A round number at or above `peak` (1, 2 or 5 times a power of ten), so the scale's
    label reads well; 1 for an empty chart."""
    if peak <= 0:
        return Decimal(1)
    power = Decimal(10) ** (peak.adjusted())
    for step in (1, 2, 5, 10):
        if peak <= power * step:
            return power * step
    raise AssertionError(peak)


def bar_chart(title: str, unit: str, points: list[tuple[str, Decimal]]) -> BarChart:
    """One bar per (label, value), in order, scaled to the largest value."""
    peak = _scale_top(max((value for _, value in points), default=Decimal(0)))
    plot_height = HEIGHT - _BOTTOM - _TOP
    slot = (WIDTH - _LEFT) / max(len(points), 1)
    gap = min(2.0, slot * 0.2)
    bars = []
    for index, (label, value) in enumerate(points):
        height = float(max(value, Decimal(0)) / peak) * plot_height
        bars.append(
            Bar(
                label=label, value=value, x=_LEFT + index * slot + gap / 2,
                y=HEIGHT - _BOTTOM - height, width=slot - gap, height=height,
            )
        )  # fmt: skip
    return BarChart(title=title, unit=unit, bars=tuple(bars), peak=peak)
