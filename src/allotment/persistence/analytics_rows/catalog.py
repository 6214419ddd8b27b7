"""The catalog tables: `plans`, `features`, `plan_features`, `credit_models` and `meters`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

import msgspec

from allotment.domain.catalog import Catalog
from allotment.persistence.analytics_rows.table import Columns, Row, Table

__all__ = (
    "CreditModelRow",
    "FeatureRow",
    "MeterRow",
    "PlanFeatureRow",
    "PlanRow",
    "catalog_rows",
)


class PlanRow(Row, frozen=True, gc=False):
    table = "plans"
    plan_id: str
    key: str
    name: str
    price_amount: Decimal
    currency: str
    interval_months: int
    billing_timing: str
    status: str
    created_at: datetime


class FeatureRow(Row, frozen=True, gc=False):
    table = "features"
    feature_id: str
    key: str
    name: str
    cost_per_unit: Decimal | None
    auto_created: bool
    # OpenMeter (issue 16, OM-60): the meter counting toward the feature, and its filters
    meter_slug: str | None
    meter_group_by_filters: str | None  # JSON text
    archived_at: datetime | None


class PlanFeatureRow(Row, frozen=True, gc=False):
    table = "plan_features"
    plan_id: str
    plan_key: str
    feature_key: str
    pricing_type: str
    price_per_unit: Decimal | None
    max_usage: Decimal | None
    reset_mode: str
    credit_model_key: str | None
    credits_per_unit: Decimal


class CreditModelRow(Row, frozen=True, gc=False):
    table = "credit_models"
    credit_model_id: str
    key: str
    denomination: str
    currency: str
    hard_limit: bool
    rollover_policy: str
    rollover_cap: Decimal | None


class MeterRow(Row, frozen=True, gc=False):
    """An OpenMeter meter (OM-60), deleted ones included (`deleted_at`)."""

    table = "meters"
    meter_id: str
    slug: str
    name: str
    aggregation: str
    event_type: str
    value_property: str | None
    group_by: str  # JSON text: dimension -> JSONPath
    event_from: datetime | None
    description: str | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


_ROWS: tuple[type[Row], ...] = (PlanRow, FeatureRow, PlanFeatureRow, CreditModelRow, MeterRow)


def _json(value: dict[str, str] | None) -> str | None:
    return None if value is None else msgspec.json.encode(value).decode()


def catalog_rows(catalog: Catalog) -> dict[str, Columns]:
    """The catalog tables, by table name."""
    tables = {row.table: Table(row) for row in _ROWS}
    for row in _rows(catalog):
        tables[row.table].add(row)
    return {name: table.columns for name, table in tables.items()}


def _rows(catalog: Catalog) -> Iterator[Row]:
    for p in catalog.plans.values():
        yield PlanRow(
            plan_id=str(p.id),
            key=p.key,
            name=p.name,
            price_amount=p.price_amount,
            currency=p.currency,
            interval_months=p.interval_months,
            billing_timing=p.billing_timing.value,
            status=p.status.value,
            created_at=p.created_at,
        )
        for link in p.features:
            yield PlanFeatureRow(
                plan_id=str(p.id),
                plan_key=p.key,
                feature_key=link.feature_key,
                pricing_type=link.pricing_type.value,
                price_per_unit=link.price_per_unit,
                max_usage=link.max_usage,
                reset_mode=link.reset_mode.value,
                credit_model_key=link.credit_model_key,
                credits_per_unit=link.credits_per_unit,
            )
    for f in catalog.features.values():
        yield FeatureRow(
            feature_id=str(f.id),
            key=f.key,
            name=f.name,
            cost_per_unit=f.cost_per_unit,
            auto_created=f.auto_created,
            meter_slug=f.meter_slug,
            meter_group_by_filters=_json(f.meter_group_by_filters),
            archived_at=f.archived_at,
        )
    for meter in catalog.meters.values():
        yield MeterRow(
            meter_id=meter.id, slug=meter.slug, name=meter.name,
            aggregation=meter.aggregation.value, event_type=meter.event_type,
            value_property=meter.value_property, group_by=_json(meter.group_by) or "{}",
            event_from=meter.event_from, description=meter.description,
            created_at=meter.created_at, updated_at=meter.updated_at, deleted_at=meter.deleted_at,
        )  # fmt: skip
    for m in catalog.credit_models.values():
        yield CreditModelRow(
            credit_model_id=str(m.id),
            key=m.key,
            denomination=m.denomination,
            currency=m.currency,
            hard_limit=m.hard_limit,
            rollover_policy=m.rollover_policy.value,
            rollover_cap=m.rollover_cap,
        )
