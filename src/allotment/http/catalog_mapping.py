"""Mapping the catalog document (`catalog_document.py`) to domain values and back.

`to_catalog_update` turns a document into the `CatalogUpdated` the domain checks and journals;
`from_catalog` writes a catalog as a document that PUT accepts unchanged (GET). Defaults the
document leaves out are the domain's: `resetMode` reset (PLN-7), `creditsPerUnit` 1, a name
equal to the key.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from allotment.domain.catalog import (
    Catalog,
    CreditAllocation,
    CreditModel,
    Feature,
    FeatureLink,
    Plan,
    PriceTier,
    ResetMode,
    stable_id,
)
from allotment.domain.catalog_facts import CatalogUpdated
from allotment.domain.catalog_rules import CatalogProblem, Step
from allotment.http.catalog_document import (
    UNBOUNDED,
    AllocationDoc,
    CatalogDocument,
    CatalogDocumentInvalid,
    ClientPriceTierDto,
    CreditModelDoc,
    FeatureDoc,
    FeatureLinkDoc,
    PlanDoc,
    describe,
)

__all__ = ("from_catalog", "tier_dto", "to_catalog_update")


def to_catalog_update(document: CatalogDocument, at: datetime) -> CatalogUpdated:
    """The change `document` asks for at `at`. New plans and allocations are created at `at`;
    existing ones keep their `created_at` when the domain applies the change.

    Raises:
        CatalogDocumentInvalid: an id differs from the one its key derives, or an `upTo` is
            neither a number nor "inf". The domain's own rules are checked when the change is
            applied (`update_catalog`).
    """
    problems: list[CatalogProblem] = []
    features = tuple(_feature(problems, doc) for doc in document.features or ())
    models = tuple(_credit_model(problems, doc) for doc in document.creditModels or ())
    plans = tuple(_plan(problems, doc, at) for doc in document.plans or ())
    if problems:
        raise CatalogDocumentInvalid([describe(p) for p in problems])
    return CatalogUpdated(at=at, features=features, credit_models=models, plans=plans)


def _check_id(
    problems: list[CatalogProblem],
    where: tuple[Step, ...],
    given: uuid.UUID | None,
    expected: uuid.UUID,
) -> None:
    if given is not None and given != expected:
        problems.append(
            CatalogProblem(
                (*where, ("id", None)), f"ids are derived from keys; expected {expected}"
            )
        )


def _feature(problems: list[CatalogProblem], doc: FeatureDoc) -> Feature:
    feature_id = stable_id("feature", doc.key)
    _check_id(problems, (("features", doc.key),), doc.id, feature_id)
    return Feature(
        id=feature_id,
        key=doc.key,
        name=doc.name or doc.key,
        description=doc.description,
        cost_per_unit=doc.costPerUnit,
        auto_created=bool(doc.autoCreated),
        meter_slug=doc.meterSlug,
        meter_group_by_filters=doc.meterGroupByFilters,
    )


def _credit_model(problems: list[CatalogProblem], doc: CreditModelDoc) -> CreditModel:
    model_id = stable_id("credit_model", doc.key)
    _check_id(problems, (("credit_models", doc.key),), doc.id, model_id)
    return CreditModel(
        id=model_id,
        key=doc.key,
        name=doc.name or doc.key,
        denomination=doc.denomination,
        currency=doc.currency,
        hard_limit=doc.hardLimit,
        rollover_policy=doc.rolloverPolicy,
        rollover_cap=doc.rolloverCap,
        low_balance_threshold=doc.lowBalanceThreshold,
    )


def _plan(problems: list[CatalogProblem], doc: PlanDoc, at: datetime) -> Plan:
    plan_id = stable_id("plan", doc.key)
    where: tuple[Step, ...] = (("plans", doc.key),)
    _check_id(problems, where, doc.id, plan_id)
    return Plan(
        id=plan_id,
        key=doc.key,
        name=doc.name,
        description=doc.description,
        price_amount=doc.priceAmount,
        currency=doc.currency,
        interval_months=doc.intervalMonths,
        billing_timing=doc.billingTiming,
        status=doc.status,
        metadata=doc.metadata or {},
        features=tuple(
            _link(problems, (*where, ("features", link.featureKey)), link)
            for link in doc.features or ()
        ),
        credit_allocations=tuple(
            _allocation(problems, doc.key, a, at) for a in doc.creditAllocations or ()
        ),
        created_at=at,
        modified_at=at,
    )


def _link(
    problems: list[CatalogProblem], where: tuple[Step, ...], doc: FeatureLinkDoc
) -> FeatureLink:
    return FeatureLink(
        feature_key=doc.featureKey,
        pricing_type=doc.pricingType,
        price_per_unit=doc.pricePerUnit,
        unit_label=doc.unitLabel,
        max_usage=doc.maxUsage,
        reset_mode=doc.resetMode or ResetMode.RESET,
        tiers=tuple(
            _tier(problems, (*where, ("tiers", i)), t) for i, t in enumerate(doc.tiers or ())
        ),
        credit_model_key=doc.creditModelKey,
        credits_per_unit=doc.creditsPerUnit if doc.creditsPerUnit is not None else Decimal(1),
        notify_at_percent=None if doc.notifyAtPercent is None else tuple(doc.notifyAtPercent),
    )


def _tier(
    problems: list[CatalogProblem], where: tuple[Step, ...], doc: ClientPriceTierDto
) -> PriceTier:
    up_to: Decimal | None = doc.upTo
    if doc.upTo == UNBOUNDED:
        up_to = None
    elif not doc.upTo.is_finite():  # "-inf" or "nan" also decode as decimals
        problems.append(CatalogProblem((*where, ("up_to", None)), 'must be a number or "inf"'))
    return PriceTier(
        up_to=up_to, price_per_unit=doc.pricePerUnit, flat_fee=doc.flatFee or Decimal(0)
    )


def _allocation(
    problems: list[CatalogProblem], plan_key: str, doc: AllocationDoc, at: datetime
) -> CreditAllocation:
    allocation_id = stable_id("allocation", f"{plan_key}/{doc.creditModelKey}")
    where: tuple[Step, ...] = (("plans", plan_key), ("credit_allocations", doc.creditModelKey))
    _check_id(problems, where, doc.id, allocation_id)
    return CreditAllocation(
        id=allocation_id,
        credit_model_key=doc.creditModelKey,
        credit_amount=doc.creditAmount,
        grant_expires_months=doc.grantExpiresMonths,
        hard_limit=doc.hardLimit,
        created_at=at,
    )


def from_catalog(catalog: Catalog) -> CatalogDocument:
    """The whole catalog as a document, with ids and timestamps (GET)."""
    return CatalogDocument(
        features=[
            FeatureDoc(
                id=f.id,
                key=f.key,
                name=f.name,
                description=f.description,
                costPerUnit=f.cost_per_unit,
                autoCreated=f.auto_created or None,
                meterSlug=f.meter_slug,
                meterGroupByFilters=f.meter_group_by_filters,
            )
            for f in catalog.features.values()
        ],
        creditModels=[
            CreditModelDoc(
                id=m.id,
                key=m.key,
                name=m.name,
                denomination=m.denomination,
                currency=m.currency,
                hardLimit=m.hard_limit,
                rolloverPolicy=m.rollover_policy,
                rolloverCap=m.rollover_cap,
                lowBalanceThreshold=m.low_balance_threshold,
            )
            for m in catalog.credit_models.values()
        ],
        plans=[_plan_doc(p) for p in catalog.plans.values()],
    )


def _plan_doc(plan: Plan) -> PlanDoc:
    return PlanDoc(
        id=plan.id,
        key=plan.key,
        name=plan.name,
        description=plan.description,
        priceAmount=plan.price_amount,
        currency=plan.currency,
        intervalMonths=plan.interval_months,
        billingTiming=plan.billing_timing,
        status=plan.status,
        metadata=plan.metadata,
        features=[_link_doc(link) for link in plan.features],
        creditAllocations=[
            AllocationDoc(
                id=a.id,
                creditModelKey=a.credit_model_key,
                creditAmount=a.credit_amount,
                grantExpiresMonths=a.grant_expires_months,
                hardLimit=a.hard_limit,
                createdAt=a.created_at,
            )
            for a in plan.credit_allocations
        ],
        createdAt=plan.created_at,
        modifiedAt=plan.modified_at,
    )


def _link_doc(link: FeatureLink) -> FeatureLinkDoc:
    return FeatureLinkDoc(
        featureKey=link.feature_key,
        pricingType=link.pricing_type,
        pricePerUnit=link.price_per_unit,
        unitLabel=link.unit_label,
        maxUsage=link.max_usage,
        resetMode=link.reset_mode,
        tiers=[tier_dto(t) for t in link.tiers] or None,
        creditModelKey=link.credit_model_key,
        creditsPerUnit=link.credits_per_unit if link.credit_model_key else None,
        notifyAtPercent=None if link.notify_at_percent is None else list(link.notify_at_percent),
    )


def tier_dto(tier: PriceTier) -> ClientPriceTierDto:
    """One tier on the wire (PLN-8): the unbounded one's `upTo` is "inf"; `flatFee` is omitted
    when zero. Encode with `CATALOG_ENCODER`."""
    return ClientPriceTierDto(
        upTo=UNBOUNDED if tier.up_to is None else tier.up_to,
        pricePerUnit=tier.price_per_unit,
        flatFee=tier.flat_fee or None,
    )
