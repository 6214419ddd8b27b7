"""Customers: search by reference id or email, one page at a time (CON-20).

The search goes through `Shard.find_customers`: an index lookup, or a slice of the creation
order for an empty search, so a page costs the same with 100 customers or 100,000 and turns
no customer's actor (a listing shows the profile, which time does not change)."""

from __future__ import annotations

from datetime import datetime

import msgspec
from litestar import get
from litestar.params import FromQuery
from litestar.response import Template

from allotment.console.context import ConsoleArg
from allotment.domain.catalog import Catalog
from allotment.domain.state import CustomerState
from allotment.runtime.ports import CustomerSearch

__all__ = ("PAGES", "PAGE_SIZE", "CustomerRow", "customers")

PAGE_SIZE = 25


class CustomerRow(msgspec.Struct, frozen=True, kw_only=True):
    reference: str
    name: str
    email: str
    created_at: datetime
    subscriptions: int


def _row(state: CustomerState, _: Catalog, __: datetime) -> CustomerRow:
    profile = state.profile
    name = " ".join(part for part in (profile.first_name, profile.last_name) if part)
    return CustomerRow(
        reference=state.external_id or str(state.id),
        name=name,
        email=profile.email or "",
        created_at=state.created_at,
        subscriptions=len(state.subscriptions),
    )


@get("/customers", name="console.customers")
async def customers(
    console: ConsoleArg,
    q: FromQuery[str] = "",
    page: FromQuery[int] = 1,
    after: FromQuery[str] = "",
) -> Template:
    """The customer list, or the customers a search names. "Next" carries the page's cursor
    (`after`), so a deep page over shards costs what the first does (SCL-100); `page` alone
    (a link back) is found by its offset."""
    page = max(page, 1)
    text = q.strip()
    search = CustomerSearch(
        text=text, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE, after=after[:200]
    )
    found = await console.shard.find_customers(search, _row)
    pages = max(1, -(-found.total // PAGE_SIZE))
    return console.render(
        "customers.html",
        title="Customers",
        q=text,
        rows=found.items,
        total=found.total,
        page=min(page, pages),
        pages=pages,
        after=found.next,
    )


PAGES = [customers]
