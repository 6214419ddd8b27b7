"""Rows for the analytics database, as column lists ready for Arrow.

`StateRows` collects the current state of customers (one call per customer, so the caller can
yield to the event loop between slices); `audit_rows` turns drained audit records into rows.
The journal-derived histories have their rows in `history_rows`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec

from allotment.domain.catalog import Catalog
from allotment.domain.money import ZERO
from allotment.domain.state import CustomerState

__all__ = ("Columns", "StateRows", "audit_rows", "catalog_rows")

Columns = dict[str, list[Any]]


def _columns(*names: str) -> Columns:
    return {name: [] for name in names}


def _add(table: Columns, *values: Any) -> None:
    for column, value in zip(table.values(), values, strict=True):
        column.append(value)


def _json(value: Any) -> str | None:
    return None if value is None else msgspec.json.encode(value).decode()


def catalog_rows(catalog: Catalog) -> dict[str, Columns]:
    plans = _columns(
        "plan_id",
        "key",
        "name",
        "price_amount",
        "currency",
        "interval_months",
        "billing_timing",
        "status",
        "created_at",
    )
    features = _columns("feature_id", "key", "name", "cost_per_unit", "auto_created")
    links = _columns(
        "plan_id",
        "plan_key",
        "feature_key",
        "pricing_type",
        "price_per_unit",
        "max_usage",
        "reset_mode",
        "credit_model_key",
        "credits_per_unit",
    )
    models = _columns(
        "credit_model_id",
        "key",
        "denomination",
        "currency",
        "hard_limit",
        "rollover_policy",
        "rollover_cap",
    )
    for p in catalog.plans.values():
        _add(
            plans,
            str(p.id),
            p.key,
            p.name,
            p.price_amount,
            p.currency,
            p.interval_months,
            p.billing_timing.value,
            p.status.value,
            p.created_at,
        )
        for link in p.features:
            _add(
                links,
                str(p.id),
                p.key,
                link.feature_key,
                link.pricing_type.value,
                link.price_per_unit,
                link.max_usage,
                link.reset_mode.value,
                link.credit_model_key,
                link.credits_per_unit,
            )
    for f in catalog.features.values():
        _add(features, str(f.id), f.key, f.name, f.cost_per_unit, f.auto_created)
    for m in catalog.credit_models.values():
        _add(
            models,
            str(m.id),
            m.key,
            m.denomination,
            m.currency,
            m.hard_limit,
            m.rollover_policy.value,
            m.rollover_cap,
        )
    return {"plans": plans, "features": features, "plan_features": links, "credit_models": models}


class StateRows:
    """The customer-state tables of one analytics snapshot."""

    def __init__(self) -> None:
        self.tables: dict[str, Columns] = {
            "customers": _columns(
                "customer_id",
                "external_id",
                "source",
                "first_name",
                "last_name",
                "email",
                "created_at",
                "modified_at",
            ),
            "subscriptions": _columns(
                "subscription_id",
                "customer_id",
                "plan_id",
                "access",
                "is_active",
                "current_period_start",
                "current_period_end",
                "cancel_mode",
                "cancel_effective_at",
                "ended_at",
                "created_at",
            ),
            "invoices": _columns(
                "invoice_id",
                "customer_id",
                "subscription_id",
                "invoice_type",
                "status",
                "amount",
                "currency",
                "due_date",
                "period_start",
                "period_end",
                "created_at",
                "modified_at",
            ),
            "invoice_items": _columns(
                "item_id", "invoice_id", "charge_amount", "description", "created_at"
            ),
            "usage_counters": _columns(
                "customer_id",
                "subscription_id",
                "feature_key",
                "period_start",
                "used",
                "unbilled",
                "limit_units",
                "is_current_period",
            ),
            "credit_pools": _columns(
                "pool_id",
                "customer_id",
                "denomination",
                "status",
                "balance",
                "total_granted",
                "total_consumed",
                "total_expired",
                "total_reversed",
                "hard_limit",
                "rollover_policy",
                "rollover_cap",
                "created_at",
            ),
            "credit_grants": _columns(
                "grant_id",
                "pool_id",
                "customer_id",
                "source",
                "amount",
                "remaining",
                "subscription_id",
                "granted_at",
                "expires_at",
            ),
        }

    def add(self, state: CustomerState, catalog: Catalog) -> None:
        t = self.tables
        cid = str(state.id)
        p = state.profile
        _add(
            t["customers"],
            cid,
            state.external_id,
            state.source.value,
            p.first_name,
            p.last_name,
            p.email,
            state.created_at,
            state.modified_at,
        )
        for sub in state.subscriptions.values():
            _add(
                t["subscriptions"],
                str(sub.id),
                cid,
                str(sub.plan_id),
                sub.access.value,
                sub.access == "ACTIVE",
                sub.current_period_start,
                sub.current_period_end,
                sub.cancel_mode,
                sub.cancel_effective_at,
                sub.ended_at,
                sub.created_at,
            )
            plan = catalog.plans.get(sub.plan_id)
            for feature_key, counter in state.usage.get(sub.id, {}).items():
                link = plan.link(feature_key) if plan else None
                for start, used in counter.used.items():
                    _add(
                        t["usage_counters"],
                        cid,
                        str(sub.id),
                        feature_key,
                        start,
                        used,
                        counter.unbilled.get(start, ZERO),
                        link.max_usage if link else None,
                        start == sub.current_period_start,
                    )
        for inv in state.invoices.values():
            _add(
                t["invoices"],
                str(inv.id),
                cid,
                str(inv.subscription_id),
                inv.type.value,
                inv.status.value,
                inv.amount,
                inv.currency,
                inv.due_date,
                inv.period_start,
                inv.period_end,
                inv.created_at,
                inv.modified_at,
            )
            for item in inv.items:
                _add(
                    t["invoice_items"],
                    str(item.id),
                    str(inv.id),
                    item.charge_amount,
                    item.description,
                    item.created_at,
                )
        for pool in state.pools.values():
            _add(
                t["credit_pools"],
                str(pool.id),
                cid,
                pool.denomination,
                pool.status.value,
                pool.balance,
                pool.total_granted,
                pool.total_consumed,
                pool.total_expired,
                pool.total_reversed,
                pool.hard_limit,
                pool.rollover_policy.value,
                pool.rollover_cap,
                pool.created_at,
            )
            for grant in pool.grants:
                _add(
                    t["credit_grants"],
                    str(grant.id),
                    str(pool.id),
                    cid,
                    grant.source.value,
                    grant.amount,
                    grant.remaining,
                    str(grant.subscription_id) if grant.subscription_id else None,
                    grant.granted_at,
                    grant.expires_at,
                )


def _day(at: datetime) -> str:
    return at.date().isoformat()


def audit_rows(audits: Sequence[Any]) -> Columns:
    """Entitlement audit records (runtime.records.AuditRecord), ENT-30."""
    t = _columns(
        "day",
        "checked_at",
        "customer_id",
        "external_id",
        "feature_key",
        "allowed",
        "reason",
        "method",
        "requested_units",
        "would_exceed_limit",
        "event_name",
        "flow_id",
        "idempotency_key",
        "meta",
    )
    for a in audits:
        _add(
            t,
            _day(a.at),
            a.at,
            str(a.customer_id),
            a.external_id,
            a.feature_key,
            a.allowed,
            a.reason,
            a.method,
            a.requested_units,
            a.would_exceed_limit,
            a.event_name,
            a.flow_id,
            a.idempotency_key,
            _json(a.meta),
        )
    return t
