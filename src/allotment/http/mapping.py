"""Mapping domain values to wire DTOs. Projectors run inside a customer turn, so what they
return is a consistent, immutable picture of that instant."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from allotment.domain.catalog import Catalog, FeatureLink, Plan, PricingType
from allotment.domain.credits import CreditPool
from allotment.domain.replies import Decision
from allotment.domain.state import (
    AccessState,
    CustomerState,
    Invoice,
    ScheduledChange,
    Subscription,
)
from allotment.http.catalog_mapping import tier_dto
from allotment.http.schemas import (
    ClientFeatureDto,
    ClientFeaturePricingDto,
    ClientPlanDto,
    ClientPlanFeatureLinkedDto,
    CreditDto,
    CreditGrantDto,
    CreditPoolDto,
    CreditTransactionDto,
    CustomerClientResponse,
    CustomerDto,
    DenialReasonDto,
    EntitlementMetaDto,
    EntitlementResponse,
    InvoiceDto,
    InvoiceItemDto,
    PlanCreditAllocationDto,
    PlanDto,
    SimulationDto,
    SubscriptionDto,
    SubscriptionScheduledChangeDto,
    UsageDto,
)

__all__ = (
    "client_plans",
    "customer_dto",
    "entitlement_response",
    "invoice_dto",
    "pools_projector",
    "project_customer",
    "project_invoices",
    "subscription_dto",
)


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


def customer_dto(state: CustomerState) -> CustomerDto:
    p = state.profile
    return CustomerDto(
        id=state.id,
        externalClientCustomerId=state.external_id,
        firstName=p.first_name,
        lastName=p.last_name,
        email=p.email,
        phoneNumber=p.phone_number,
        createdAt=state.created_at,
        modifiedAt=state.modified_at,
    )


def _change_dto(
    change: ScheduledChange, sub: Subscription, catalog: Catalog
) -> SubscriptionScheduledChangeDto:
    from_plan, to_plan = (
        catalog.plans.get(change.from_plan_id),
        catalog.plans.get(change.to_plan_id),
    )
    return SubscriptionScheduledChangeDto(
        id=change.id,
        type=change.type.value,
        subscriptionId=sub.id,
        fromPlan=plan_dto(from_plan) if from_plan else None,
        toPlan=plan_dto(to_plan) if to_plan else None,
        status=change.status.value,
        effectiveAt=change.effective_at,
        createdAt=change.created_at,
    )


def subscription_dto(
    sub: Subscription, catalog: Catalog, customer: CustomerDto | None = None
) -> SubscriptionDto:
    plan = catalog.plans.get(sub.plan_id)
    change = sub.scheduled_change
    return SubscriptionDto(
        id=sub.id,
        isActive=sub.access is AccessState.ACTIVE,
        intervalMonths=str(sub.interval_months),
        customer=customer,
        plan=plan_dto(plan) if plan else None,
        gracePeriodDays=sub.grace_period_days,
        currentPeriodStart=sub.current_period_start,
        currentPeriodEnd=sub.current_period_end,
        cancelMode=sub.cancel_mode.value if sub.cancel_mode else None,
        cancelEffectiveAt=sub.cancel_effective_at,
        cancelledAt=sub.cancelled_at,
        billingAnchorDay=sub.billing_anchor_day,
        metadata=sub.metadata or None,
        scheduledChange=_change_dto(change, sub, catalog)
        if change is not None and change.status == "PENDING"
        else None,
    )


def invoice_dto(
    invoice: Invoice, subscription: SubscriptionDto | None, *, items: bool = False
) -> InvoiceDto:
    return InvoiceDto(
        id=invoice.id,
        amount=invoice.amount,
        currency=invoice.currency,
        status=invoice.status.value,
        dueDate=invoice.due_date,
        subscription=subscription,
        createdAt=invoice.created_at,
        modifiedAt=invoice.modified_at,
        metadata={
            "invoiceType": invoice.type.value,
            "periodStart": invoice.period_start,
            "periodEnd": invoice.period_end,
        },
        items=[
            InvoiceItemDto(
                id=item.id,
                invoiceId=invoice.id,
                chargeAmount=item.charge_amount,
                description=item.description,
                createdAt=item.created_at,
                modifiedAt=item.created_at,
            )
            for item in invoice.items
        ]
        if items
        else None,
    )


def pool_dto(
    pool: CreditPool, *, grants: bool = False, transactions: bool = False
) -> CreditPoolDto:
    return CreditPoolDto(
        id=pool.id,
        name=pool.name,
        denomination=pool.denomination,
        currency=pool.currency,
        balance=pool.balance,
        totalGranted=pool.total_granted,
        totalConsumed=pool.total_consumed,
        totalExpired=pool.total_expired,
        totalReversed=pool.total_reversed,
        hardLimit=pool.hard_limit,
        status=pool.status.value,
        rolloverPolicy=pool.rollover_policy.value,
        rolloverCap=pool.rollover_cap,
        customerId=pool.customer_id,
        metadata=pool.metadata or None,
        createdAt=pool.created_at,
        modifiedAt=pool.modified_at,
        grants=[
            CreditGrantDto(
                id=g.id,
                amount=g.amount,
                remaining=g.remaining,
                source=g.source.value,
                subscriptionId=g.subscription_id,
                grantedAt=g.granted_at,
                expiresAt=g.expires_at,
            )
            for g in pool.grants
        ]
        if grants
        else None,
        transactions=[
            CreditTransactionDto(
                id=t.id,
                poolId=t.pool_id,
                type=t.type.value,
                amount=t.amount,
                balanceBefore=t.balance_before,
                balanceAfter=t.balance_after,
                createdAt=t.created_at,
                description=t.description,
                grantId=t.grant_id,
                eventIdempotencyKey=t.event_key,
                subscriptionId=t.subscription_id,
            )
            for t in pool.recent_transactions
        ]
        if transactions
        else None,
    )


def _visible_pools(state: CustomerState) -> list[CreditPool]:
    return [p for p in state.pools.values() if p.status != "ARCHIVED"]  # CUS-13


def project_customer(
    state: CustomerState, catalog: Catalog, now: datetime
) -> CustomerClientResponse:
    """getCustomer (CUS-11..CUS-14)."""
    del now
    pools = _visible_pools(state)
    p = state.profile
    return CustomerClientResponse(
        externalClientCustomerId=state.external_id,
        firstName=p.first_name,
        lastName=p.last_name,
        email=p.email,
        createdAt=state.created_at,
        modifiedAt=state.modified_at,
        subscriptions=[subscription_dto(s, catalog) for s in state.live_subscriptions()],
        creditPools=[pool_dto(pool) for pool in pools] or None,
    )


def project_invoices(state: CustomerState, catalog: Catalog, now: datetime) -> list[InvoiceDto]:
    """listCustomerInvoices (INV-25..INV-28): oldest first, ties by id, without items."""
    del now
    subs = {sid: subscription_dto(s, catalog) for sid, s in state.subscriptions.items()}
    ordered = sorted(state.invoices.values(), key=lambda i: (i.created_at, str(i.id)))
    return [invoice_dto(i, subs.get(i.subscription_id)) for i in ordered]


def pools_projector(
    *, grants: bool, transactions: bool
) -> Callable[[CustomerState, Catalog, datetime], list[CreditPoolDto]]:
    """CRD-51, with the grants (burn-down order) and ledger extensions when asked for."""

    def project(state: CustomerState, catalog: Catalog, now: datetime) -> list[CreditPoolDto]:
        del catalog, now
        return [
            pool_dto(p, grants=grants, transactions=transactions) for p in _visible_pools(state)
        ]

    return project


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


def client_plans(catalog: Catalog) -> list[ClientPlanFeatureLinkedDto]:
    """listPlans (PLN-1..PLN-9)."""
    result = []
    for plan in catalog.active_plans():
        features = []
        for link in plan.features:
            feature = catalog.features[link.feature_key]
            features.append(
                ClientFeatureDto(
                    id=feature.id,
                    name=feature.name,
                    key=feature.key,
                    description=feature.description,
                    pricingType=link.pricing_type.value,
                    pricing=_pricing_dto(link),
                )
            )
        allocations = [
            PlanCreditAllocationDto(
                id=a.id,
                creditModelId=catalog.credit_models[a.credit_model_key].id,
                creditModelName=catalog.credit_models[a.credit_model_key].name,
                denomination=catalog.credit_models[a.credit_model_key].denomination,
                creditAmount=a.credit_amount,
                grantExpiresMonths=a.grant_expires_months,
                hardLimit=a.hard_limit,
                createdAt=a.created_at,
            )
            for a in plan.credit_allocations
        ]
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
                features=features,
                creditAllocations=allocations or None,
            )
        )
    return result


def entitlement_response(
    decision: Decision, reference: str, feature_key: str, flow_id: str | None
) -> EntitlementResponse:
    usage, credit, sim = decision.usage, decision.credit, decision.simulation
    return EntitlementResponse(
        referenceCustomerId=reference,
        featureKey=feature_key,
        isAllowed=decision.allowed,
        flowId=flow_id,
        meta=EntitlementMetaDto(reason=DenialReasonDto(description=decision.reason.value))
        if decision.reason is not None
        else None,
        usage=UsageDto(used=usage.used, limit=usage.limit, remaining=usage.remaining)
        if usage is not None
        else None,
        simulation=SimulationDto(
            requestedUsage=sim.requested_usage,
            projectedUsage=sim.projected_usage,
            projectedRemaining=sim.projected_remaining,
            wouldExceedLimit=sim.would_exceed_limit,
        )
        if sim is not None
        else None,
        credit=CreditDto(
            denomination=credit.denomination,
            balance=credit.balance,
            totalGranted=credit.total_granted,
            totalConsumed=credit.total_consumed,
            hardLimit=credit.hard_limit,
        )
        if credit is not None
        else None,
    )
