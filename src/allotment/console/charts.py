"""Charts as server-rendered inline SVG (CON-16): no script, no library, readable without
JavaScript, and cheap to test (the numbers are in the markup). Every chart is an `img` role
with a text alternative that states what it shows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from markupsafe import Markup, escape

__all__ = ("balance_chart", "percent")

WIDTH, HEIGHT = 560, 180
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 12, 12, 28


def percent(used: Decimal, limit: Decimal | None) -> int:
    """How full a bar is, 0..100 (a limit of 0 is full as soon as anything is used)."""
    if limit is None:
        return 0
    if limit <= 0:
        return 100 if used > 0 else 0
    return int(min(Decimal(100), used * 100 / limit))


def _x(at: datetime, start: datetime, end: datetime) -> float:
    span = (end - start).total_seconds() or 1.0
    return _LEFT + (WIDTH - _LEFT - _RIGHT) * (at - start).total_seconds() / span


def _y(value: Decimal, top: Decimal) -> float:
    height = HEIGHT - _TOP - _BOTTOM
    return _TOP + height * (1 - float(value / top)) if top > 0 else float(HEIGHT - _BOTTOM)


def balance_chart(points: Sequence[tuple[datetime, Decimal]], now: datetime, label: str) -> Markup:
    """A step line of a balance over time, from its first point to `now`: the credit
    burn-down. `points` are (time, balance after), oldest first."""
    if not points:
        return Markup('<p class="muted">No ledger entries yet.</p>')
    start, end = points[0][0], max(now, points[-1][0])
    top = max(balance for _, balance in points) or Decimal(1)
    path: list[str] = []
    previous_y: float | None = None
    for at, balance in points:
        x, y = _x(at, start, end), _y(balance, top)
        path.append(f"M{x:.1f},{y:.1f}" if previous_y is None else f"H{x:.1f}V{y:.1f}")
        previous_y = y
    path.append(f"H{_x(end, start, end):.1f}")
    last = points[-1][1]
    summary = (
        f"{label}: from {points[0][1]} on {start:%Y-%m-%d} to {last} on {end:%Y-%m-%d}, "
        f"{len(points)} ledger entries"
    )
    return Markup(
        '<svg class="chart" role="img" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
        'aria-label="{summary}" data-last="{last}" data-points="{n}">'
        "<title>{summary}</title>"
        '<line x1="{l}" y1="{base}" x2="{r}" y2="{base}" stroke="#6b7480"/>'
        '<line x1="{l}" y1="{t}" x2="{l}" y2="{base}" stroke="#6b7480"/>'
        '<text x="4" y="{ty}">{top}</text><text x="4" y="{base}">0</text>'
        '<text x="{l}" y="{h}">{start:%Y-%m-%d}</text>'
        '<text x="{r}" y="{h}" text-anchor="end">{end:%Y-%m-%d}</text>'
        '<path d="{d}" fill="none" stroke="#0b57d0" stroke-width="2"/></svg>'
    ).format(
        w=WIDTH, h=HEIGHT - 4, l=_LEFT, r=WIDTH - _RIGHT, t=_TOP, base=HEIGHT - _BOTTOM,
        ty=_TOP + 10, top=top, start=start, end=end, d=" ".join(path),
        summary=escape(summary), last=last, n=len(points),
    )  # fmt: skip
