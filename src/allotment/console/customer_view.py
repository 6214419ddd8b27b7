"""What the customer detail page shows, projected from one customer's state in one read turn
(CON-21..CON-27): the same `Shard.read` the API's getCustomer, listCustomerInvoices and
listCreditPools make, and the same wire mappings for pools (grants in burn-down order)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

import msgspec
from markupsafe import Markup

from allotment.console.charts import balance_chart, percent
from allotment.domain.catalog import Catalog, PlanStatus
from allotment.domain.reservation_state import Reservation
from allotment.domain.state import CustomerState, Invoice, Subscription
from allotment.domain.usage import used_units
from allotment.http.mapping.credits import pool_dto, visible_pools
from allotment.http.schemas import CreditPoolDto, CreditTransactionDto

__all__ = ("LEDGER_PAGE", "CustomerView", "customer_view")

LEDGER_PAGE = 20
INVOICE_PAGE = 10


class SubscriptionRow(msgspec.Struct, frozen=True, kw_only=True):
    subscription: Subscription
    plan_name: str
    change_to: str | None  # the plan a pending scheduled change moves to


class UsageBar(msgspec.Struct, frozen=True, kw_only=True):
    plan_name: str
    feature_key: str
    used: Decimal
    limit: Decimal | None
    percent: int
    unit: str


class PoolView(msgspec.Struct, frozen=True, kw_only=True):
    pool: CreditPoolDto  # with its grants, in burn-down order (CRD-31)
    chart: Markup
    ledger: list[CreditTransactionDto]  # this page of it, newest first
    ledger_total: int


class CustomerView(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    reference: str
    name: str
    email: str
    phone: str
    created_at: datetime
    stripe_customer_id: str | None
    subscriptions: list[SubscriptionRow]
    usage: list[UsageBar]
    pools: list[PoolView]
    invoices: list[Invoice]  # this page, newest first
    invoice_total: int
    reservations: list[Reservation]  # newest first: open and the last settled (RSV-27)
    plans: list[tuple[uuid.UUID, str]]  # active plans, for a plan change
    now: datetime


def _subscriptions(state: CustomerState, catalog: Catalog) -> list[SubscriptionRow]:
    rows = []
    for sub in reversed(state.subscriptions.values()):
        plan = catalog.plans.get(sub.plan_id)
        change = sub.scheduled_change
        to = catalog.plans.get(change.to_plan_id) if change is not None else None
        rows.append(
            SubscriptionRow(
                subscription=sub,
                plan_name=plan.name if plan else str(sub.plan_id),
                change_to=to.name if to else None,
            )
        )
    return rows


def _usage(state: CustomerState, catalog: Catalog) -> list[UsageBar]:
    """CON-22: each metered or limited feature of each live subscription, this period."""
    bars = []
    for sub in state.live_subscriptions():
        plan = catalog.plans.get(sub.plan_id)
        if plan is None:
            continue
        for link in plan.features:
            if link.max_usage is None and not link.metered:
                continue
            used = used_units(state, sub, link.feature_key, link.reset_mode)
            bars.append(
                UsageBar(
                    plan_name=plan.name,
                    feature_key=link.feature_key,
                    used=used,
                    limit=link.max_usage,
                    percent=percent(used, link.max_usage),
                    unit=link.unit_label or "units",
                )
            )
    return bars


def _pools(state: CustomerState, now: datetime, ledger_page: int) -> list[PoolView]:
    views = []
    for pool in visible_pools(state):
        reserved = state.held_credits.get(pool.denomination, Decimal(0))
        dto = pool_dto(pool, grants=True, transactions=True, reserved=reserved)
        ledger = list(reversed(dto.transactions or []))
        start = (ledger_page - 1) * LEDGER_PAGE
        points = [(t.created_at, t.balance_after) for t in pool.recent_transactions]
        views.append(
            PoolView(
                pool=dto,
                chart=balance_chart(points, now, f"{pool.denomination} balance"),
                ledger=ledger[start : start + LEDGER_PAGE],
                ledger_total=len(ledger),
            )
        )
    return views


def customer_view(
    ledger_page: int, invoice_page: int
) -> Callable[[CustomerState, Catalog, datetime], CustomerView]:
    """The projector of the detail page; the pages of the ledger and invoices it shows."""

    def project(state: CustomerState, catalog: Catalog, now: datetime) -> CustomerView:
        profile = state.profile
        invoices = sorted(state.invoices.values(), key=lambda i: (i.created_at, str(i.id)))
        invoices.reverse()
        start = (invoice_page - 1) * INVOICE_PAGE
        return CustomerView(
            id=state.id,
            reference=state.external_id or str(state.id),
            name=" ".join(p for p in (profile.first_name, profile.last_name) if p),
            email=profile.email or "",
            phone=profile.phone_number or "",
            created_at=state.created_at,
            stripe_customer_id=state.stripe_customer_id,
            subscriptions=_subscriptions(state, catalog),
            usage=_usage(state, catalog),
            pools=_pools(state, now, ledger_page),
            invoices=invoices[start : start + INVOICE_PAGE],
            invoice_total=len(invoices),
            reservations=list(reversed(state.reservations.values())),
            plans=[(p.id, p.name) for p in catalog.plans.values() if p.status is PlanStatus.ACTIVE],
            now=now,
        )

    return project
