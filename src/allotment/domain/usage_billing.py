"""Usage lines of a finalisation, priced period by period (INV-30..INV-34, AMB-23).

Usage is bucketed by the period containing each event's `occurredAt`. A finalisation bills
every unbilled bucket that starts before the closing period's end: the closing period's own
bucket, and late usage of periods already finalised (AMB-23). Periods whose tier ladder resets
are never merged: late units of period P are priced on P's ladder, on top of what P already
billed, on a line of their own that names P (MNY-B1). Lines are rounded so that everything a
period ever bills sums to the rounded charge of its whole quantity (MNY-B2).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from allotment.domain.catalog import Catalog, FeatureLink, Plan, PricingType, ResetMode
from allotment.domain.invoicing import NewId, line
from allotment.domain.money import ZERO, allocate_money, round_money
from allotment.domain.periods import period_containing
from allotment.domain.pricing import graduated_charge
from allotment.domain.state import (
    ChangeStatus,
    CustomerState,
    InvoiceItem,
    Subscription,
    UsageCounter,
)

__all__ = ("BucketCharge", "feature_charges", "plan_for_period", "usage_lines")

Period = tuple[datetime, datetime]


class BucketCharge(NamedTuple):
    """What a finalisation bills for one usage bucket of one feature: the bucket's start, its
    unbilled quantity and the rounded charge of its line (0: no line)."""

    start: datetime
    quantity: Decimal
    charge: Decimal


def usage_lines(
    state: CustomerState,
    sub: Subscription,
    plan: Plan,
    closing: Period,
    catalog: Catalog,
    new_id: NewId,
    at: datetime,
) -> tuple[list[InvoiceItem], list[str]]:
    """The usage lines of the finalisation of `sub`'s period `closing`, priced with `plan` (the
    plan in force at its end) for the closing period. Returns the lines, oldest period first
    within each feature, and the features whose buckets they bill (each event is billed
    exactly once, INV-30)."""
    items: list[InvoiceItem] = []
    billed: list[str] = []
    for link in plan.features:
        charges = feature_charges(state, sub, plan, link, closing, catalog)
        if charges is None:
            continue
        billed.append(link.feature_key)
        for start, quantity, charge in charges:
            if charge != 0:
                text = _description(link, sub, start, closing, quantity)
                items.append(line(new_id, charge, text, at))
    return items, billed


def feature_charges(
    state: CustomerState,
    sub: Subscription,
    plan: Plan,
    link: FeatureLink,
    closing: Period,
    catalog: Catalog,
) -> list[BucketCharge] | None:
    """What the finalisation of `closing` bills for one feature of `plan`, bucket by bucket,
    oldest first; None when it bills none of the feature's buckets. The invoice's lines and
    the pre-flight's estimate (RSV-31) both price through here, so they cannot disagree."""
    counter = state.usage.get(sub.id, {}).get(link.feature_key)
    if counter is None:
        return None
    buckets = sorted((s, q) for s, q in counter.unbilled.items() if s < closing[1] and q > 0)
    if not buckets:
        return None
    if link.pricing_type is PricingType.INCLUDED:
        return []  # never a charge (INV-30), but its buckets are billed
    if link.reset_mode is ResetMode.ACCUMULATE and link.pricing_type is PricingType.GRADUATED:
        charges = _accumulated_charges(link, counter, buckets, closing[1], plan.currency)
    else:
        link_of = _period_links(sub, catalog, link, closing)
        charges = [
            _period_charge(link_of(start), counter.billed.get(start, ZERO), late, plan.currency)
            for start, late in buckets
        ]
    return [
        BucketCharge(start, quantity, charge)
        for (start, quantity), charge in zip(buckets, charges, strict=True)
    ]


def _period_charge(link: FeatureLink, billed: Decimal, late: Decimal, currency: str) -> Decimal:
    """MNY-B1/MNY-B2: `late` units on top of the `billed` units of a period whose ladder
    resets: round(C(billed + late)) − round(C(billed)), so the period's lines always add up to
    round(C(everything it billed)) however its usage arrived."""
    before = round_money(_charge(link, billed), currency)
    return round_money(_charge(link, billed + late), currency) - before


def _charge(link: FeatureLink, quantity: Decimal) -> Decimal:
    """C(Q) of one period (INV-32, INV-33); unrounded."""
    match link.pricing_type:
        case PricingType.INCLUDED:
            return ZERO
        case PricingType.USAGE_BASED:
            assert link.price_per_unit is not None
            return quantity * link.price_per_unit
        case PricingType.GRADUATED:
            return graduated_charge(link.tiers, quantity)


def _accumulated_charges(
    link: FeatureLink,
    counter: UsageCounter,
    buckets: list[tuple[datetime, Decimal]],
    through: datetime,
    currency: str,
) -> list[Decimal]:
    """INV-34: an accumulating ladder never resets, so the unbilled units of every period take
    the top of the lifetime ladder, oldest period lowest: G(L) − G(L − Q) in all, split into
    one part per period and allocated to sum to its rounding (MNY-B2, MNY-B4)."""
    lifetime = sum((v for start, v in counter.used.items() if start < through), ZERO)
    lifetime += counter.early  # units before the start count on the ladder, not in `used`
    position = lifetime - sum((q for _, q in buckets), ZERO)
    exact: list[Decimal] = []
    for _, quantity in buckets:
        exact.append(
            graduated_charge(link.tiers, position + quantity)
            - graduated_charge(link.tiers, position)
        )
        position += quantity
    return allocate_money(exact, currency)


def _period_links(
    sub: Subscription, catalog: Catalog, closing_link: FeatureLink, closing: Period
) -> Callable[[datetime], FeatureLink]:
    """The link that prices the bucket starting at a given instant: the closing plan's for the
    closing period; for a late bucket, the link of the plan that was in force at the end of
    that period, when the catalog still has it and it prices the feature (AMB-18, INV-31)."""

    def link_of(start: datetime) -> FeatureLink:
        if start == closing[0]:
            return closing_link
        plan = catalog.plans.get(plan_for_period(sub, _period_of(sub, start)[1]))
        link = plan.link(closing_link.feature_key) if plan is not None else None
        return link if link is not None else closing_link

    return link_of


def plan_for_period(sub: Subscription, period_end: datetime) -> uuid.UUID:
    """The id of the plan in force at the end of the period ending at `period_end`: the plan the
    subscription started on, switched by every completed change effective before that end (a
    downgrade effective at the end itself prices the next period, INV-31)."""
    plan_id = sub.changes[0].from_plan_id if sub.changes else sub.plan_id
    for change in sub.changes:
        if change.status is ChangeStatus.COMPLETED and change.effective_at < period_end:
            plan_id = change.to_plan_id
    return plan_id


def _period_of(sub: Subscription, start: datetime) -> Period:
    return period_containing(start, sub.first_period_start, sub.interval_months,
                             sub.billing_anchor_day)  # fmt: skip


def _description(
    link: FeatureLink, sub: Subscription, start: datetime, closing: Period, quantity: Decimal
) -> str:
    """INV-30's description for the closing period; a late bucket's line names its period."""
    label = link.unit_label or "units"
    amount = f"{quantity.normalize():f} {label}"
    if start == closing[0]:
        return f"Usage for {link.feature_key}: {amount}"
    first, end = _period_of(sub, start)
    period = f"{first.date().isoformat()} to {end.date().isoformat()}"
    return f"Late usage for {link.feature_key} (period {period}): {amount}"
