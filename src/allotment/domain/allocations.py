"""The per-period allocation ledger a plan change tops up against (MNY-A1).

A period's plan allocation, in each denomination, is at most the largest allocation of any
plan in force during that period: a plan change grants `max(0, new allocation − accounted)`,
where `accounted` is what the period's allocation has granted so far (the period's own grant
and earlier top-ups, `Subscription.allocation_granted`) plus the period's own grant when it is
still to come (a paid in-advance period grants on payment, CRD-12). The path taken to the
plan (upgrades, cheaper "upgrades", round trips, downgrades, cancel and revert) does not
matter, and neither does whether the change produced an invoice (INV-51 may round to 0).
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from allotment.domain.catalog import Catalog
from allotment.domain.invoicing import current_period_invoice
from allotment.domain.money import ZERO
from allotment.domain.state import CustomerState, Subscription
from allotment.domain.subscriptions import allocation_key

__all__ = ("accounted",)


def _opening_plan(state: CustomerState, sub: Subscription) -> uuid.UUID:
    """The plan whose allocation is the period's own grant: the one its invoice bills."""
    invoice = current_period_invoice(state, sub)
    if invoice is not None and invoice.plan_id is not None:
        return invoice.plan_id
    return sub.plan_segments[0].plan_id if sub.plan_segments else sub.plan_id


def _allocation(catalog: Catalog, plan_id: uuid.UUID, denomination: str) -> Decimal:
    plan = catalog.plans.get(plan_id)
    if plan is None:
        return ZERO
    return sum(
        (
            a.credit_amount
            for a in plan.credit_allocations
            if catalog.credit_models[a.credit_model_key].denomination == denomination
        ),
        ZERO,
    )


def accounted(
    state: CustomerState, sub: Subscription, denomination: str, catalog: Catalog
) -> Decimal:
    """What the current period's plan allocation has granted, or is yet to grant on payment."""
    key = allocation_key(denomination, sub.current_period_start)
    opening = _allocation(catalog, _opening_plan(state, sub), denomination)
    if key not in sub.credit_periods_granted:
        return sub.allocation_granted.get(key, ZERO) + opening
    # A state recorded before the ledger existed has the CRD-12 key but no amount: the
    # period's grant was its opening plan's allocation.
    return sub.allocation_granted.get(key, opening)
