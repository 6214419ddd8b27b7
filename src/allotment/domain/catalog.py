"""The catalog: features, credit models and plans, as immutable values.

A `Catalog` is replaced whole on every change (admin upsert, feature auto-creation), so a turn
that captured one sees a consistent catalog for its whole duration.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from allotment.domain.meters import Meter
from allotment.domain.om_notify_rules import NotificationRule

__all__ = (
    "BillingTiming",
    "Catalog",
    "CreditAllocation",
    "CreditModel",
    "Feature",
    "FeatureLink",
    "Plan",
    "PlanStatus",
    "PriceTier",
    "PricingType",
    "ResetMode",
    "RolloverPolicy",
    "feature_id",
    "stable_id",
)

# Ids are derived from keys, so a plan or feature keeps its id across restarts and reloads.
_NAMESPACE = uuid.UUID("6f1c1f55-2b7c-4d0e-9b1a-0a11070e0e11")


def stable_id(kind: str, key: str) -> uuid.UUID:
    """The UUID of a catalog entity of `kind` with `key`: the same on every load."""
    return uuid.uuid5(_NAMESPACE, f"{kind}:{key}")


def feature_id(key: str) -> uuid.UUID:
    """The UUID of the feature with `key`."""
    return stable_id("feature", key)


class PricingType(enum.StrEnum):
    INCLUDED = "included"
    USAGE_BASED = "usage_based"
    GRADUATED = "graduated"


class ResetMode(enum.StrEnum):
    RESET = "reset"
    ACCUMULATE = "accumulate"


class BillingTiming(enum.StrEnum):
    IN_ADVANCE = "IN_ADVANCE"
    IN_ARREARS = "IN_ARREARS"


class PlanStatus(enum.StrEnum):
    DRAFT = "DRAFT"
    ACTIVE = "ACTIVE"
    ARCHIVED = "ARCHIVED"


class RolloverPolicy(enum.StrEnum):
    NONE = "NONE"
    FULL = "FULL"
    CAPPED = "CAPPED"


class Feature(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    key: str
    name: str
    description: str | None = None
    cost_per_unit: Decimal | None = None  # EVT-30 (c): the feature's cost model
    auto_created: bool = False  # EVT-21
    # OpenMeter (issue 16, OM-30..OM-33): the meter whose events count toward the feature,
    # the group-by values they must carry, when the feature was archived, and its ULID-like
    # public id there. Older catalogs decode with the defaults.
    meter_slug: str | None = None
    meter_group_by_filters: dict[str, str] | None = None
    metadata: dict[str, str] | None = None
    created_at: datetime | None = None
    archived_at: datetime | None = None


class PriceTier(msgspec.Struct, frozen=True, kw_only=True):
    up_to: Decimal | None  # None is the final "inf" tier
    price_per_unit: Decimal
    flat_fee: Decimal = Decimal(0)


class FeatureLink(msgspec.Struct, frozen=True, kw_only=True):
    """How one plan prices and limits one feature."""

    feature_key: str
    pricing_type: PricingType
    price_per_unit: Decimal | None = None
    unit_label: str | None = None
    max_usage: Decimal | None = None  # an access cap per period, never a free allowance
    reset_mode: ResetMode = ResetMode.RESET
    tiers: tuple[PriceTier, ...] = ()
    credit_model_key: str | None = None  # CRD-30: usage draws from this model's pool
    credits_per_unit: Decimal = Decimal(1)
    # WHK-E3: percents of max_usage that notify, ascending; None takes the default (80, 100)
    notify_at_percent: tuple[int, ...] | None = None

    @property
    def metered(self) -> bool:
        return self.pricing_type is not PricingType.INCLUDED


class CreditModel(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    key: str
    name: str
    denomination: str
    currency: str
    hard_limit: bool = False
    rollover_policy: RolloverPolicy = RolloverPolicy.NONE
    rollover_cap: Decimal | None = None
    # WHK-E10: credits.balance.low below this; None takes 20% of the last period's allocation
    low_balance_threshold: Decimal | None = None


class CreditAllocation(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    credit_model_key: str
    credit_amount: Decimal
    grant_expires_months: int | None = None
    hard_limit: bool | None = None
    created_at: datetime


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    key: str
    name: str
    description: str | None = None
    price_amount: Decimal
    currency: str
    interval_months: int
    billing_timing: BillingTiming
    status: PlanStatus
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    features: tuple[FeatureLink, ...] = ()
    credit_allocations: tuple[CreditAllocation, ...] = ()
    created_at: datetime
    modified_at: datetime

    @property
    def is_free(self) -> bool:
        return self.price_amount == 0

    def link(self, feature_key: str) -> FeatureLink | None:
        """The plan's link for `feature_key`, if the plan includes that feature."""
        for link in self.features:
            if link.feature_key == feature_key:
                return link
        return None


class Catalog(msgspec.Struct, frozen=True, kw_only=True, weakref=True):
    """Every feature, credit model and plan of one environment. Plans keep declaration order."""

    features: dict[str, Feature]
    credit_models: dict[str, CreditModel]
    plans: dict[uuid.UUID, Plan]
    # OpenMeter meters by id, deleted ones included (issue 16, OM-10..OM-16).
    meters: dict[str, Meter] = msgspec.field(default_factory=dict)
    # OpenMeter notification rules by id, deleted ones included (issue 17, OM-140): the
    # thresholds a turn decides against travel with the catalog in its context.
    notification_rules: dict[str, NotificationRule] = msgspec.field(default_factory=dict)

    def plan_by_key(self, key: str) -> Plan | None:
        return self.plans.get(stable_id("plan", key))

    def feature_by_id(self, id_: uuid.UUID) -> Feature | None:
        for feature in self.features.values():
            if feature.id == id_:
                return feature
        return None

    def model_for_denomination(self, denomination: str) -> CreditModel | None:
        for model in self.credit_models.values():
            if model.denomination == denomination:
                return model
        return None

    def meter(self, id_or_slug: str) -> Meter | None:
        """The meter with this id, else the live meter with this slug (OM-15)."""
        meter = self.meters.get(id_or_slug)
        if meter is not None:
            return meter
        for candidate in self.meters.values():
            if candidate.slug == id_or_slug and not candidate.deleted:
                return candidate
        return None

    def with_meter(self, meter: Meter) -> Catalog:
        return msgspec.structs.replace(self, meters={**self.meters, meter.id: meter})

    def with_rule(self, rule: NotificationRule) -> Catalog:
        rules = {**self.notification_rules, rule.id: rule}
        return msgspec.structs.replace(self, notification_rules=rules)

    def with_feature(self, feature: Feature) -> Catalog:
        """A new catalog that also holds `feature` (EVT-21 auto-creation)."""
        return msgspec.structs.replace(self, features={**self.features, feature.key: feature})

    def active_plans(self) -> list[Plan]:
        """ACTIVE plans by `createdAt`, then `id` (PLN-2, PLN-3)."""
        plans = [p for p in self.plans.values() if p.status is PlanStatus.ACTIVE]
        return sorted(plans, key=lambda p: (p.created_at, p.id))
