"""Journal records of catalog changes as written before issue 11: a historical file format.

Until then a catalog change was journaled as `catalog_upserted`, holding the admin API's
catalog document exactly as received (camelCase, the Tanso DTO names). Those records stay in
journals until a snapshot covers them, so they must stay readable. The structs below are a
frozen copy of that document's shape, and `to_catalog_updated` converts one record into the
domain fact that replaces it (`CatalogUpdated`).

This file describes bytes already on disk: never change it, whatever the admin API becomes.
It deliberately does not share the HTTP layer's definitions, which may change.
(Fixture and test: tests/persistence/fixtures/journal-catalog-v1, test_journal_catalog_v1.py.)
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from allotment.domain.catalog import (
    BillingTiming,
    CreditAllocation,
    CreditModel,
    Feature,
    FeatureLink,
    Plan,
    PlanStatus,
    PriceTier,
    PricingType,
    ResetMode,
    RolloverPolicy,
    stable_id,
)
from allotment.domain.catalog_facts import CatalogUpdated

__all__ = ("CatalogUpsertedV0", "to_catalog_updated")


class _Doc(msgspec.Struct, kw_only=True, frozen=True):
    """Enum fields are plain strings here, so the domain's enums may evolve."""


class _Tier(_Doc, kw_only=True, frozen=True):
    upTo: Decimal  # Decimal("Infinity") for the last tier
    pricePerUnit: Decimal
    flatFee: Decimal | None = None


class _Link(_Doc, kw_only=True, frozen=True):
    featureKey: str
    pricingType: str
    pricePerUnit: Decimal | None = None
    unitLabel: str | None = None
    maxUsage: Decimal | None = None
    resetMode: str | None = None
    tiers: list[_Tier] | None = None
    creditModelKey: str | None = None
    creditsPerUnit: Decimal | None = None


class _Allocation(_Doc, kw_only=True, frozen=True):
    creditModelKey: str
    creditAmount: Decimal
    grantExpiresMonths: int | None = None
    hardLimit: bool | None = None
    id: uuid.UUID | None = None
    createdAt: datetime | None = None


class _Plan(_Doc, kw_only=True, frozen=True):
    key: str
    name: str
    description: str | None = None
    priceAmount: Decimal
    currency: str
    intervalMonths: int
    billingTiming: str
    status: str = "ACTIVE"
    metadata: dict[str, Any] | None = None
    features: list[_Link] = msgspec.field(default_factory=list)
    creditAllocations: list[_Allocation] = msgspec.field(default_factory=list)
    id: uuid.UUID | None = None
    createdAt: datetime | None = None
    modifiedAt: datetime | None = None


class _Feature(_Doc, kw_only=True, frozen=True):
    key: str
    name: str | None = None
    description: str | None = None
    costPerUnit: Decimal | None = None
    id: uuid.UUID | None = None
    autoCreated: bool | None = None


class _CreditModel(_Doc, kw_only=True, frozen=True):
    key: str
    name: str | None = None
    denomination: str
    currency: str = "USD"
    hardLimit: bool = False
    rolloverPolicy: str = "NONE"
    rolloverCap: Decimal | None = None
    id: uuid.UUID | None = None


class _Document(_Doc, kw_only=True, frozen=True):
    features: list[_Feature] = msgspec.field(default_factory=list)
    creditModels: list[_CreditModel] = msgspec.field(default_factory=list)
    plans: list[_Plan] = msgspec.field(default_factory=list)


class CatalogUpsertedV0(msgspec.Struct, frozen=True, kw_only=True, tag="catalog_upserted"):
    """The pre-issue-11 catalog fact (its tag and fields exactly as written then)."""

    at: datetime
    document: _Document


def to_catalog_updated(old: CatalogUpsertedV0) -> CatalogUpdated:
    """The domain fact `old` stands for. It was checked when it was accepted, as the old code
    replayed it: every plan and allocation carries `at` as its `created_at`, and
    `apply_update` keeps the `created_at` of those that already existed, as that code did."""
    doc = old.document
    return CatalogUpdated(
        at=old.at,
        features=tuple(_feature(f) for f in doc.features),
        credit_models=tuple(_credit_model(m) for m in doc.creditModels),
        plans=tuple(_plan(p, old.at) for p in doc.plans),
    )


def _feature(doc: _Feature) -> Feature:
    return Feature(
        id=stable_id("feature", doc.key),
        key=doc.key,
        name=doc.name or doc.key,
        description=doc.description,
        cost_per_unit=doc.costPerUnit,
        auto_created=bool(doc.autoCreated),
    )


def _credit_model(doc: _CreditModel) -> CreditModel:
    return CreditModel(
        id=stable_id("credit_model", doc.key),
        key=doc.key,
        name=doc.name or doc.key,
        denomination=doc.denomination,
        currency=doc.currency,
        hard_limit=doc.hardLimit,
        rollover_policy=RolloverPolicy(doc.rolloverPolicy),
        rollover_cap=doc.rolloverCap,
    )


def _plan(doc: _Plan, at: datetime) -> Plan:
    return Plan(
        id=stable_id("plan", doc.key),
        key=doc.key,
        name=doc.name,
        description=doc.description,
        price_amount=doc.priceAmount,
        currency=doc.currency,
        interval_months=doc.intervalMonths,
        billing_timing=BillingTiming(doc.billingTiming),
        status=PlanStatus(doc.status),
        metadata=doc.metadata or {},
        features=tuple(_link(link) for link in doc.features),
        credit_allocations=tuple(
            CreditAllocation(
                id=stable_id("allocation", f"{doc.key}/{a.creditModelKey}"),
                credit_model_key=a.creditModelKey,
                credit_amount=a.creditAmount,
                grant_expires_months=a.grantExpiresMonths,
                hard_limit=a.hardLimit,
                created_at=at,
            )
            for a in doc.creditAllocations
        ),
        created_at=at,
        modified_at=at,
    )


def _link(doc: _Link) -> FeatureLink:
    return FeatureLink(
        feature_key=doc.featureKey,
        pricing_type=PricingType(doc.pricingType),
        price_per_unit=doc.pricePerUnit,
        unit_label=doc.unitLabel,
        max_usage=doc.maxUsage,
        reset_mode=ResetMode(doc.resetMode or "reset"),
        tiers=tuple(
            PriceTier(
                up_to=None if t.upTo.is_infinite() else t.upTo,
                price_per_unit=t.pricePerUnit,
                flat_fee=t.flatFee or Decimal(0),
            )
            for t in doc.tiers or ()
        ),
        credit_model_key=doc.creditModelKey,
        credits_per_unit=doc.creditsPerUnit if doc.creditsPerUnit is not None else Decimal(1),
    )
