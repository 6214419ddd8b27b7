"""The manual clock (CON-67..CON-70): shown, and moved forward by a day or to a period end,
only when the server runs with `--clock manual`; refused otherwise, as the admin API refuses.

Moving it is `http.routes.admin.move_clock`, what `POST /api/v1/admin/clock/advance` does:
everything due by the new time is applied before the answer (each customer one sweep turn),
and webhook retries that fell due are woken.
"To the period end" is the end of the current period of a customer's subscriptions (one read
turn of that customer), or, with no customer named, the earliest period end of the
environment: one pass of `Shard.all_customers` (no turn), which a sandbox can afford.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from litestar import get, post
from litestar.params import FromQuery
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

from allotment.console.context import Console, ConsoleArg
from allotment.console.guard import ConsoleRefused
from allotment.domain.catalog import Catalog
from allotment.domain.state import CustomerState
from allotment.http.errors import ApiError
from allotment.http.routes.admin import move_clock
from allotment.runtime.ports import CustomerLookup

__all__ = ("PAGES", "advance", "clock")

NOT_MANUAL = "The clock can only be read or moved when the server runs with --clock manual."


def _manual(console: Console) -> None:
    if not console.system.clock.manual:
        raise ConsoleRefused(404, NOT_MANUAL)


def _period_end(state: CustomerState, _catalog: Catalog, now: datetime) -> datetime | None:
    """The earliest end of a live subscription's current period after `now`."""
    ends = [
        sub.current_period_end
        for sub in state.subscriptions.values()
        if sub.ended_at is None and sub.current_period_end > now
    ]
    return min(ends, default=None)


async def _target(console: Console, by: str, customer: str) -> datetime:
    now = console.system.clock.now()
    if by == "day":
        return now + timedelta(days=1)
    if by != "period-end":
        raise ConsoleRefused(400, "Choose one day or the period end.")
    if customer:
        found = await console.shard.read(CustomerLookup(external_id=customer), _period_end)
        if found is None:
            raise ConsoleRefused(400, "That customer has no current period to end.")
        return found
    ends = [end for end in await console.shard.all_customers(_period_end) if end is not None]
    if not ends:
        raise ConsoleRefused(400, "No subscription of this environment has a period to end.")
    return min(ends)


@get("/clock", name="console.clock")
async def clock(console: ConsoleArg, moved: FromQuery[int] = -1) -> Template:
    """The manual clock's time and the buttons that move it; `moved` after a move."""
    _manual(console)
    return console.render("clock.html", title="Clock", now=console.system.clock.now(), moved=moved)


@post("/clock/advance", name="console.clock_advance", status_code=303)
async def advance(console: ConsoleArg) -> Redirect:
    """Move the clock forward (CON-68, CON-69) and apply what fell due."""
    _manual(console)
    data = await console.form()
    target = await _target(console, data.get("by", ""), data.get("customer", "").strip())
    try:
        updated = await move_clock(console.system, target, console.webhooks)
    except ApiError as refused:  # the admin API's refusal, in its words
        raise ConsoleRefused(refused.status, refused.message) from None
    return Redirect(f"/console/clock?moved={updated}", status_code=HTTP_303_SEE_OTHER)


PAGES = [clock, advance]
