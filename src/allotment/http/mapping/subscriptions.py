"""Subscriptions on the wire, with their pending scheduled change."""

from __future__ import annotations

from allotment.domain.catalog import Catalog
from allotment.domain.state import AccessState, ScheduledChange, Subscription
from allotment.http.mapping.plans import plan_dto
from allotment.http.schemas import CustomerDto, SubscriptionDto, SubscriptionScheduledChangeDto

__all__ = ("subscription_dto",)


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
