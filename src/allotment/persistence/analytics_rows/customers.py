"""The `customers`, `subscriptions` and `usage_counters` tables."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

from allotment.domain.catalog import Catalog
from allotment.domain.money import ZERO
from allotment.domain.state import CancelMode, CustomerState, Subscription
from allotment.persistence.analytics_rows.table import Row

__all__ = ("CustomerRow", "SubscriptionRow", "UsageCounterRow", "customer_rows")


class CustomerRow(Row, frozen=True, gc=False):
    table = "customers"
    customer_id: str
    external_id: str | None
    source: str
    first_name: str | None
    last_name: str | None
    email: str | None
    created_at: datetime
    modified_at: datetime


class SubscriptionRow(Row, frozen=True, gc=False):
    table = "subscriptions"
    subscription_id: str
    customer_id: str
    plan_id: str
    access: str
    is_active: bool
    current_period_start: datetime
    current_period_end: datetime
    cancel_mode: CancelMode | None
    cancel_effective_at: datetime | None
    ended_at: datetime | None
    created_at: datetime


class UsageCounterRow(Row, frozen=True, gc=False):
    """One feature's usage in one period of one subscription."""

    table = "usage_counters"
    customer_id: str
    subscription_id: str
    feature_key: str
    period_start: datetime
    used: Decimal
    unbilled: Decimal
    limit_units: Decimal | None
    is_current_period: bool


def customer_rows(state: CustomerState, catalog: Catalog) -> Iterator[Row]:
    """The customer's row, then each subscription's row followed by its usage counters."""
    cid = str(state.id)
    p = state.profile
    yield CustomerRow(
        customer_id=cid,
        external_id=state.external_id,
        source=state.source.value,
        first_name=p.first_name,
        last_name=p.last_name,
        email=p.email,
        created_at=state.created_at,
        modified_at=state.modified_at,
    )
    for sub in state.subscriptions.values():
        yield SubscriptionRow(
            subscription_id=str(sub.id),
            customer_id=cid,
            plan_id=str(sub.plan_id),
            access=sub.access.value,
            is_active=sub.access == "ACTIVE",
            current_period_start=sub.current_period_start,
            current_period_end=sub.current_period_end,
            cancel_mode=sub.cancel_mode,
            cancel_effective_at=sub.cancel_effective_at,
            ended_at=sub.ended_at,
            created_at=sub.created_at,
        )
        yield from _usage_rows(state, sub, catalog)


def _usage_rows(
    state: CustomerState, sub: Subscription, catalog: Catalog
) -> Iterator[UsageCounterRow]:
    cid = str(state.id)
    plan = catalog.plans.get(sub.plan_id)
    for feature_key, counter in state.usage.get(sub.id, {}).items():
        link = plan.link(feature_key) if plan else None
        for start, used in counter.used.items():
            yield UsageCounterRow(
                customer_id=cid,
                subscription_id=str(sub.id),
                feature_key=feature_key,
                period_start=start,
                used=used,
                unbilled=counter.unbilled.get(start, ZERO),
                limit_units=link.max_usage if link else None,
                is_current_period=start == sub.current_period_start,
            )
