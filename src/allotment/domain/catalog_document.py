"""The catalog document: one shape for the TOML file, the admin API and listPlans.

Field names are the camelCase names of the Tanso DTOs (ClientPlanDto, ClientFeaturePricingDto,
ClientPriceTierDto, PlanCreditAllocationDto). `build_catalog` validates a document per PLN-10
and merges it into the current catalog by key (an upsert), keeping ids and `createdAt`.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from allotment.domain.catalog import (
    BillingTiming,
    Catalog,
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
from allotment.domain.currencies import is_iso_currency

__all__ = (
    "CatalogDocument",
    "CatalogInvalid",
    "build_catalog",
    "empty_catalog",
    "to_document",
)

_KEY_PATTERN = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")


class _Doc(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    pass


class TierDoc(_Doc, kw_only=True):
    upTo: Decimal  # a number, or "inf" (which msgspec reads as Decimal infinity)
    pricePerUnit: Decimal
    flatFee: Decimal | None = None


class FeatureLinkDoc(_Doc, kw_only=True):
    featureKey: str
    pricingType: PricingType
    pricePerUnit: Decimal | None = None
    unitLabel: str | None = None
    maxUsage: Decimal | None = None
    resetMode: ResetMode | None = None
    tiers: list[TierDoc] | None = None
    creditModelKey: str | None = None
    creditsPerUnit: Decimal | None = None


class AllocationDoc(_Doc, kw_only=True):
    creditModelKey: str
    creditAmount: Decimal
    grantExpiresMonths: int | None = None
    hardLimit: bool | None = None
    id: uuid.UUID | None = None
    createdAt: datetime | None = None


class PlanDoc(_Doc, kw_only=True):
    key: str
    name: str
    description: str | None = None
    priceAmount: Decimal
    currency: str
    intervalMonths: int
    billingTiming: BillingTiming
    status: PlanStatus = PlanStatus.ACTIVE
    metadata: dict[str, Any] | None = None
    features: list[FeatureLinkDoc] = msgspec.field(default_factory=list)
    creditAllocations: list[AllocationDoc] = msgspec.field(default_factory=list)
    id: uuid.UUID | None = None
    createdAt: datetime | None = None
    modifiedAt: datetime | None = None


class FeatureDoc(_Doc, kw_only=True):
    key: str
    name: str | None = None
    description: str | None = None
    costPerUnit: Decimal | None = None
    id: uuid.UUID | None = None
    autoCreated: bool | None = None  # as `to_document` writes it, so GET output can be PUT back


class CreditModelDoc(_Doc, kw_only=True):
    key: str
    name: str | None = None
    denomination: str
    currency: str = "USD"
    hardLimit: bool = False
    rolloverPolicy: RolloverPolicy = RolloverPolicy.NONE
    rolloverCap: Decimal | None = None
    id: uuid.UUID | None = None


class CatalogDocument(_Doc, kw_only=True):
    features: list[FeatureDoc] = msgspec.field(default_factory=list)
    creditModels: list[CreditModelDoc] = msgspec.field(default_factory=list)
    plans: list[PlanDoc] = msgspec.field(default_factory=list)


class CatalogInvalid(ValueError):
    """A catalog document breaks PLN-10 or PLN-12. `errors` names each offending field and key.

    Nothing is applied: fix the document and submit it again.
    """

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def empty_catalog() -> Catalog:
    return Catalog(features={}, credit_models={}, plans={})


def build_catalog(
    document: CatalogDocument,
    current: Catalog,
    now: datetime,
    plans_in_use: frozenset[uuid.UUID] = frozenset(),
) -> Catalog:
    """Upsert `document` into `current` by key and return the new catalog.

    Raises:
        CatalogInvalid: with every error found; `current` is left as it was.
    """
    errors: list[str] = []
    features = dict(current.features)
    for fdoc in document.features:
        _check_key(errors, "features", fdoc.key)
        _check_id(errors, f"features[{fdoc.key}]", fdoc.id, stable_id("feature", fdoc.key))
        _check_non_negative(errors, f"features[{fdoc.key}].costPerUnit", fdoc.costPerUnit)
        features[fdoc.key] = Feature(
            id=stable_id("feature", fdoc.key),
            key=fdoc.key,
            name=fdoc.name or fdoc.key,
            description=fdoc.description,
            cost_per_unit=fdoc.costPerUnit,
            auto_created=bool(fdoc.autoCreated),
        )
    models = dict(current.credit_models)
    for mdoc in document.creditModels:
        models[mdoc.key] = _build_model(errors, mdoc)
    plans = dict(current.plans)
    seen: set[str] = set()
    for pdoc in document.plans:
        where = f"plans[{pdoc.key}]"
        if pdoc.key in seen:
            errors.append(f"{where}: plan key appears twice in the document")
        seen.add(pdoc.key)
        previous = plans.get(stable_id("plan", pdoc.key))
        plan = _build_plan(errors, pdoc, previous, features, models, now)
        if previous is not None and previous.id in plans_in_use:
            _check_priced_fields_unchanged(errors, where, previous, plan)
        plans[plan.id] = plan
    if errors:
        raise CatalogInvalid(errors)
    return Catalog(features=features, credit_models=models, plans=plans)


def _build_model(errors: list[str], mdoc: CreditModelDoc) -> CreditModel:
    where = f"creditModels[{mdoc.key}]"
    _check_key(errors, "creditModels", mdoc.key)
    _check_id(errors, where, mdoc.id, stable_id("credit_model", mdoc.key))
    if not mdoc.denomination:
        errors.append(f"{where}.denomination: must not be empty")
    if not is_iso_currency(mdoc.currency):
        errors.append(f"{where}.currency: '{mdoc.currency}' is not an ISO 4217 code")
    if mdoc.rolloverPolicy is RolloverPolicy.CAPPED:
        if mdoc.rolloverCap is None or mdoc.rolloverCap < 0:
            errors.append(f"{where}.rolloverCap: required and >= 0 when rolloverPolicy is CAPPED")
    elif mdoc.rolloverCap is not None:
        errors.append(f"{where}.rolloverCap: only allowed when rolloverPolicy is CAPPED")
    return CreditModel(
        id=stable_id("credit_model", mdoc.key),
        key=mdoc.key,
        name=mdoc.name or mdoc.key,
        denomination=mdoc.denomination,
        currency=mdoc.currency,
        hard_limit=mdoc.hardLimit,
        rollover_policy=mdoc.rolloverPolicy,
        rollover_cap=mdoc.rolloverCap,
    )


def _build_plan(
    errors: list[str],
    pdoc: PlanDoc,
    previous: Plan | None,
    features: dict[str, Feature],
    models: dict[str, CreditModel],
    now: datetime,
) -> Plan:
    where = f"plans[{pdoc.key}]"
    plan_id = stable_id("plan", pdoc.key)
    _check_key(errors, "plans", pdoc.key)
    _check_id(errors, where, pdoc.id, plan_id)
    if pdoc.intervalMonths < 1:
        errors.append(f"{where}.intervalMonths: must be >= 1")
    _check_non_negative(errors, f"{where}.priceAmount", pdoc.priceAmount)
    if not is_iso_currency(pdoc.currency):
        errors.append(f"{where}.currency: '{pdoc.currency}' is not an ISO 4217 code")
    links: list[FeatureLink] = []
    for ldoc in pdoc.features:
        if any(link.feature_key == ldoc.featureKey for link in links):
            errors.append(f"{where}.features[{ldoc.featureKey}]: feature linked more than once")
        links.append(
            _build_link(errors, f"{where}.features[{ldoc.featureKey}]", ldoc, features, models)
        )
    allocations = tuple(
        _build_allocation(errors, where, pdoc, adoc, previous, models, now)
        for adoc in pdoc.creditAllocations
    )
    return Plan(
        id=plan_id,
        key=pdoc.key,
        name=pdoc.name,
        description=pdoc.description,
        price_amount=pdoc.priceAmount,
        currency=pdoc.currency,
        interval_months=pdoc.intervalMonths,
        billing_timing=pdoc.billingTiming,
        status=pdoc.status,
        metadata=pdoc.metadata or {},
        features=tuple(links),
        credit_allocations=allocations,
        created_at=previous.created_at if previous else now,
        modified_at=now,
    )


def _build_link(
    errors: list[str],
    where: str,
    ldoc: FeatureLinkDoc,
    features: dict[str, Feature],
    models: dict[str, CreditModel],
) -> FeatureLink:
    if ldoc.featureKey not in features:
        errors.append(f"{where}.featureKey: unknown feature '{ldoc.featureKey}'")
    _check_non_negative(errors, f"{where}.pricePerUnit", ldoc.pricePerUnit)
    if ldoc.maxUsage is not None and ldoc.maxUsage <= 0:
        errors.append(f"{where}.maxUsage: must be null or > 0")
    if ldoc.pricingType is PricingType.USAGE_BASED and ldoc.pricePerUnit is None:
        errors.append(f"{where}.pricePerUnit: required for usage_based pricing")
    if ldoc.pricingType is PricingType.GRADUATED:
        if ldoc.pricePerUnit is not None:
            errors.append(f"{where}.pricePerUnit: not allowed for graduated pricing (use tiers)")
        if not ldoc.tiers:
            errors.append(f"{where}.tiers: required for graduated pricing")
    elif ldoc.tiers:
        errors.append(f"{where}.tiers: only allowed for graduated pricing")
    if ldoc.pricingType is PricingType.INCLUDED and (
        ldoc.pricePerUnit is not None or ldoc.maxUsage is not None
    ):
        errors.append(f"{where}.pricingType: included features carry no price and no limit")
    if ldoc.creditModelKey is not None and ldoc.creditModelKey not in models:
        errors.append(f"{where}.creditModelKey: unknown credit model '{ldoc.creditModelKey}'")
    if ldoc.creditsPerUnit is not None and ldoc.creditsPerUnit <= 0:
        errors.append(f"{where}.creditsPerUnit: must be > 0")
    return FeatureLink(
        feature_key=ldoc.featureKey,
        pricing_type=ldoc.pricingType,
        price_per_unit=ldoc.pricePerUnit,
        unit_label=ldoc.unitLabel,
        max_usage=ldoc.maxUsage,
        reset_mode=ldoc.resetMode or ResetMode.RESET,
        tiers=_build_tiers(errors, where, ldoc.tiers or []),
        credit_model_key=ldoc.creditModelKey,
        credits_per_unit=ldoc.creditsPerUnit if ldoc.creditsPerUnit is not None else Decimal(1),
    )


def _build_tiers(errors: list[str], where: str, tdocs: list[TierDoc]) -> tuple[PriceTier, ...]:
    tiers: list[PriceTier] = []
    previous_up_to = Decimal(0)
    for i, tdoc in enumerate(tdocs):
        last = i == len(tdocs) - 1
        _check_non_negative(errors, f"{where}.tiers[{i}].pricePerUnit", tdoc.pricePerUnit)
        _check_non_negative(errors, f"{where}.tiers[{i}].flatFee", tdoc.flatFee)
        if tdoc.upTo.is_infinite() and tdoc.upTo > 0:
            if not last:
                errors.append(f'{where}.tiers[{i}].upTo: only the last tier may be "inf"')
            up_to = None
        else:
            up_to = tdoc.upTo
            if not up_to.is_finite():
                errors.append(f'{where}.tiers[{i}].upTo: must be a number or "inf"')
                continue
            if last:
                errors.append(f'{where}.tiers[{i}].upTo: the last tier must be "inf"')
            if up_to <= previous_up_to:
                errors.append(f"{where}.tiers[{i}].upTo: tiers must be strictly increasing")
            previous_up_to = up_to
        tiers.append(
            PriceTier(
                up_to=up_to, price_per_unit=tdoc.pricePerUnit, flat_fee=tdoc.flatFee or Decimal(0)
            )
        )
    return tuple(tiers)


def _build_allocation(
    errors: list[str],
    where: str,
    pdoc: PlanDoc,
    adoc: AllocationDoc,
    previous: Plan | None,
    models: dict[str, CreditModel],
    now: datetime,
) -> CreditAllocation:
    here = f"{where}.creditAllocations[{adoc.creditModelKey}]"
    if adoc.creditModelKey not in models:
        errors.append(f"{here}.creditModelKey: unknown credit model '{adoc.creditModelKey}'")
    if adoc.creditAmount <= 0:
        errors.append(f"{here}.creditAmount: must be > 0")
    if adoc.grantExpiresMonths is not None and adoc.grantExpiresMonths < 1:
        errors.append(f"{here}.grantExpiresMonths: must be null or >= 1")
    if sum(1 for a in pdoc.creditAllocations if a.creditModelKey == adoc.creditModelKey) > 1:
        errors.append(f"{here}: credit model allocated more than once")
    allocation_id = stable_id("allocation", f"{pdoc.key}/{adoc.creditModelKey}")
    old = (
        next((a for a in previous.credit_allocations if a.id == allocation_id), None)
        if previous
        else None
    )
    return CreditAllocation(
        id=allocation_id,
        credit_model_key=adoc.creditModelKey,
        credit_amount=adoc.creditAmount,
        grant_expires_months=adoc.grantExpiresMonths,
        hard_limit=adoc.hardLimit,
        created_at=old.created_at if old else now,
    )


def _check_priced_fields_unchanged(errors: list[str], where: str, old: Plan, new: Plan) -> None:
    """PLN-12: a plan in use keeps its price, timing, interval and feature pricing."""
    for field, before, after in (
        ("priceAmount", old.price_amount, new.price_amount),
        ("currency", old.currency, new.currency),
        ("intervalMonths", old.interval_months, new.interval_months),
        ("billingTiming", old.billing_timing, new.billing_timing),
        ("features", old.features, new.features),
    ):
        if before != after:
            errors.append(
                f"{where}.{field}: cannot change while subscriptions use the plan; "
                "publish a new plan and archive this one"
            )


def _check_key(errors: list[str], section: str, key: str) -> None:
    if _KEY_PATTERN.fullmatch(key) is None:
        errors.append(f"{section}[{key[:128]}].key: 1-128 characters of letters, digits, _ . : -")


def _check_id(errors: list[str], where: str, given: uuid.UUID | None, expected: uuid.UUID) -> None:
    if given is not None and given != expected:
        errors.append(f"{where}.id: ids are derived from keys; expected {expected}")


def _check_non_negative(errors: list[str], where: str, value: Decimal | None) -> None:
    if value is not None and (not value.is_finite() or value < 0):
        errors.append(f"{where}: must be a finite number >= 0")


def to_document(catalog: Catalog) -> dict[str, Any]:
    """The catalog as a document with ids and timestamps, ready to encode as JSON."""
    return {
        "features": [
            _without_none(
                {
                    "id": f.id,
                    "key": f.key,
                    "name": f.name,
                    "description": f.description,
                    "costPerUnit": f.cost_per_unit,
                    "autoCreated": f.auto_created or None,
                }
            )
            for f in catalog.features.values()
        ],
        "creditModels": [
            _without_none(
                {
                    "id": m.id,
                    "key": m.key,
                    "name": m.name,
                    "denomination": m.denomination,
                    "currency": m.currency,
                    "hardLimit": m.hard_limit,
                    "rolloverPolicy": m.rollover_policy,
                    "rolloverCap": m.rollover_cap,
                }
            )
            for m in catalog.credit_models.values()
        ],
        "plans": [_plan_document(p) for p in catalog.plans.values()],
    }


def _plan_document(plan: Plan) -> dict[str, Any]:
    return _without_none(
        {
            "id": plan.id,
            "key": plan.key,
            "name": plan.name,
            "description": plan.description,
            "priceAmount": plan.price_amount,
            "currency": plan.currency,
            "intervalMonths": plan.interval_months,
            "billingTiming": plan.billing_timing,
            "status": plan.status,
            "metadata": plan.metadata,
            "features": [_link_document(link) for link in plan.features],
            "creditAllocations": [
                _without_none(
                    {
                        "id": a.id,
                        "creditModelKey": a.credit_model_key,
                        "creditAmount": a.credit_amount,
                        "grantExpiresMonths": a.grant_expires_months,
                        "hardLimit": a.hard_limit,
                        "createdAt": a.created_at,
                    }
                )
                for a in plan.credit_allocations
            ],
            "createdAt": plan.created_at,
            "modifiedAt": plan.modified_at,
        }
    )


def _link_document(link: FeatureLink) -> dict[str, Any]:
    return _without_none(
        {
            "featureKey": link.feature_key,
            "pricingType": link.pricing_type,
            "pricePerUnit": link.price_per_unit,
            "unitLabel": link.unit_label,
            "maxUsage": link.max_usage,
            "resetMode": link.reset_mode,
            "tiers": [
                _without_none(
                    {
                        "upTo": "inf" if t.up_to is None else t.up_to,
                        "pricePerUnit": t.price_per_unit,
                        "flatFee": t.flat_fee or None,
                    }
                )
                for t in link.tiers
            ]
            or None,
            "creditModelKey": link.credit_model_key,
            "creditsPerUnit": link.credits_per_unit if link.credit_model_key else None,
        }
    )


def _without_none(mapping: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if v is not None}
