"""Plans on the wire: the plan inside a subscription, and listPlans (PLN-1..PLN-9)."""

from __future__ import annotations

from allotment.domain.catalog import Catalog, CreditAllocation, FeatureLink, Plan, PricingType
from allotment.http.catalog_mapping import tier_dto
from allotment.http.schemas import (
    ClientFeatureDto,
    ClientFeaturePricingDto,
    ClientPlanDto,
    ClientPlanFeatureLinkedDto,
    PlanCreditAllocationDto,
    PlanDto,
)

__all__ = ("client_plans", "plan_dto")


def plan_dto(plan: Plan) -> PlanDto:
    return PlanDto(
        id=plan.id,
        key=plan.key,
        name=plan.name,
        description=plan.description,
        priceAmount=plan.price_amount,
        intervalMonths=str(plan.interval_months),
        billingTiming=plan.billing_timing.value,
        status=plan.status.value,
        metadata=plan.metadata or None,
        createdAt=plan.created_at,
        modifiedAt=plan.modified_at,
    )


def client_plans(catalog: Catalog) -> list[ClientPlanFeatureLinkedDto]:
    """listPlans (PLN-1..PLN-9)."""
    result = []
    for plan in catalog.active_plans():
        allocations = [_allocation_dto(a, catalog) for a in plan.credit_allocations]
        result.append(
            ClientPlanFeatureLinkedDto(
                plan=ClientPlanDto(
                    id=plan.id,
                    key=plan.key,
                    name=plan.name,
                    description=plan.description,
                    priceAmount=plan.price_amount,
                    currency=plan.currency,
                    intervalMonths=plan.interval_months,
                    billingTiming=plan.billing_timing.value,
                    metadata=plan.metadata or None,
                ),
                features=[_feature_dto(link, catalog) for link in plan.features],
                creditAllocations=allocations or None,
            )
        )
    return result


def _feature_dto(link: FeatureLink, catalog: Catalog) -> ClientFeatureDto:
    feature = catalog.features[link.feature_key]
    return ClientFeatureDto(
        id=feature.id,
        name=feature.name,
        key=feature.key,
        description=feature.description,
        pricingType=link.pricing_type.value,
        pricing=_pricing_dto(link),
    )


def _pricing_dto(link: FeatureLink) -> ClientFeaturePricingDto | None:
    if link.pricing_type is PricingType.INCLUDED:
        return None  # PLN-6
    graduated = link.pricing_type is PricingType.GRADUATED
    return ClientFeaturePricingDto(
        model="graduated" if graduated else "usage",
        pricePerUnit=None if graduated else link.price_per_unit,
        unitLabel=link.unit_label,
        maxUsage=link.max_usage,
        resetMode=link.reset_mode.value,
        tiers=[tier_dto(t) for t in link.tiers] if graduated else None,
    )


def _allocation_dto(allocation: CreditAllocation, catalog: Catalog) -> PlanCreditAllocationDto:
    model = catalog.credit_models[allocation.credit_model_key]
    return PlanCreditAllocationDto(
        id=allocation.id,
        creditModelId=model.id,
        creditModelName=model.name,
        denomination=model.denomination,
        creditAmount=allocation.credit_amount,
        grantExpiresMonths=allocation.grant_expires_months,
        hardLimit=allocation.hard_limit,
        createdAt=allocation.created_at,
    )
