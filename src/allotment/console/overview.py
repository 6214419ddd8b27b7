"""The overview page (CON-40..CON-46): customers, active subscriptions by plan, MRR by
currency, receivables by age, and two charts: events per minute over the last hour and the
credit burn per denomination over 30 days. Where each figure comes from, and what it costs:
`overview_data.py`."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from litestar import get, post
from litestar.params import FromQuery
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

from allotment.console.bar_charts import BarChart, bar_chart
from allotment.console.context import ConsoleArg
from allotment.console.guard import ConsoleRefused
from allotment.console.overview_data import AGE_BUCKETS, figures_of, forget

__all__ = ("PAGES", "burn_charts", "events_chart", "overview", "take_snapshot")

MINUTES = 60
DAYS = 30


def events_chart(per_minute: dict[datetime, int], now: datetime) -> BarChart:
    """One bar per minute of the hour before `now`'s minute ends, oldest first."""
    last = now.astimezone(UTC).replace(second=0, microsecond=0)
    minutes = [last - timedelta(minutes=MINUTES - 1 - i) for i in range(MINUTES)]
    points = [(m.strftime("%H:%M"), Decimal(per_minute.get(m, 0))) for m in minutes]
    return bar_chart("Events per minute, last hour", "events", points)


def burn_charts(per_day: dict[str, dict[date, Decimal]], now: datetime) -> list[BarChart]:
    """One chart per denomination: a bar per UTC day of the last 30, oldest first."""
    today = now.astimezone(UTC).date()
    days = [today - timedelta(days=DAYS - 1 - i) for i in range(DAYS)]
    return [
        bar_chart(
            f"{denomination} burned per day, last 30 days", denomination,
            [(d.isoformat(), amounts.get(d, Decimal(0))) for d in days],
        )
        for denomination, amounts in sorted(per_day.items())
    ]  # fmt: skip


@get("/", name="console.overview")
async def overview(console: ConsoleArg, snapshot: FromQuery[str] = "") -> Template:
    """The environment at a glance; `snapshot=taken` after a snapshot was asked for."""
    figures = await figures_of(console.system, console.environment)
    now = console.system.clock.now()
    return console.render(
        "overview.html",
        title="Overview",
        customers=console.shard.customer_count(),
        figures=figures,
        buckets=[label for label, _, _ in AGE_BUCKETS],
        events=(
            events_chart(figures.events_per_minute, now)
            if figures.events_per_minute is not None
            else None
        ),
        burns=burn_charts(figures.burn_per_day, now) if figures.burn_per_day is not None else [],
        can_snapshot=console.system.analytics_reads is not None,
        snapshot_taken=snapshot == "taken",
    )


@post("/snapshots", name="console.snapshot", status_code=303)
async def take_snapshot(console: ConsoleArg, back: FromQuery[str] = "") -> Redirect:
    """Take an analytics snapshot now, as `POST /api/v1/admin/snapshots` does (the same
    runtime call), and show the overview from it."""
    if console.system.analytics_reads is None:
        raise ConsoleRefused(400, "This server keeps no data directory, so it takes no snapshots.")
    await console.system.snapshot_analytics()
    forget(console.system, console.environment)  # the next render reads the new snapshot
    target = "/console/invoices" if back == "invoices" else "/console/?snapshot=taken"
    return Redirect(target, status_code=HTTP_303_SEE_OTHER)


PAGES = [overview, take_snapshot]
