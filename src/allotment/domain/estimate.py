"""Estimated charges of a pre-flight: what its units would add to the next invoice (RSV-30..RSV-35).

The estimate is not a second pricing engine. It records the items, in order, as usage events
at `now` on a scratch copy of the customer (the same `record_usage` decision and the same
`evolve` that a real event goes through: credits first with the feature's credits-per-unit and
the pool's carried remainder, then billable units), and prices the subscription's next
invoice with the invoice's own `feature_charges` before and after each item. An item's
estimate is the growth of its feature's usage lines on that invoice (RSV-31), so the items of
one feature add up to exactly what the invoice bills for them, roundings included (RSV-32).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Protocol

import msgspec

from allotment.domain.catalog import BillingTiming, Catalog
from allotment.domain.commands import RecordUsage
from allotment.domain.context import TurnContext
from allotment.domain.credits import CreditPool
from allotment.domain.evolve import evolve
from allotment.domain.facts import CreditsDebited, NotificationRaised, UsageRecorded
from allotment.domain.metering import record_usage
from allotment.domain.money import ZERO, round_money
from allotment.domain.preflight_replies import ChargeEstimate, ItemCharge
from allotment.domain.state import CancelMode, CustomerState, Subscription, UsageCounter
from allotment.domain.usage_billing import feature_charges

__all__ = ("ChargeEstimate", "EstimateItem", "ItemCharge", "estimate_charges")


class EstimateItem(Protocol):
    """`units` of `feature_key`, used now; `units` > 0, already rounded like an event's
    (RSV-38). `holds.HoldItem` is one."""

    @property
    def feature_key(self) -> str: ...

    @property
    def units(self) -> Decimal: ...


def estimate_charges(
    state: CustomerState, items: Sequence[EstimateItem], ctx: TurnContext
) -> ChargeEstimate:
    """Each item's estimated charge, the items cumulative in order: a later item of the same
    feature is priced on top of the earlier ones (graduated tiers), and credits an earlier item
    draws are gone for the later ones (RSV-32). Pure: `state` is not changed (RSV-30)."""
    scratch = _scratch(state)
    ids = itertools.count(1)
    # its own ids: the scratch facts are thrown away, and must not consume the turn's ids
    sim = TurnContext(
        now=ctx.now,
        catalog=ctx.catalog,
        prices=ctx.prices,
        new_id=lambda: uuid.UUID(int=next(ids)),
        payment_terms_days=ctx.payment_terms_days,
    )
    charges = [_item_charge(scratch, item, index, sim) for index, item in enumerate(items)]
    totals: dict[str, Decimal] = {}
    for charge in charges:
        if charge.currency is not None:
            totals[charge.currency] = totals.get(charge.currency, ZERO) + charge.charge
    return ChargeEstimate(items=tuple(charges), totals=tuple(totals.items()))


def _item_charge(
    scratch: CustomerState, item: EstimateItem, index: int, ctx: TurnContext
) -> ItemCharge:
    """Record the item on `scratch` as an event at `now` and measure the invoice's growth."""
    command = RecordUsage(
        idempotency_key=f"preflight-item-{index}",
        event_name=item.feature_key,
        feature_key=item.feature_key,
        occurred_at=ctx.now,
        units=item.units,
    )
    outcome = record_usage(scratch, command, ctx)
    # the event's own fact; usage-threshold notices (WHK-E1) may follow it
    [recorded] = [fact for fact in outcome.facts if type(fact) is UsageRecorded]
    sub = scratch.subscriptions.get(recorded.subscription_id) if recorded.subscription_id else None
    billing = sub is not None and recorded.period_start is not None
    before = _next_invoice_usage(scratch, sub, item.feature_key, ctx.catalog) if billing else None
    credits = ZERO
    for fact in outcome.facts:
        if isinstance(fact, NotificationRaised):
            continue  # a threshold notice changes no charge, and `_scratch` shares the marks
        # only these two kinds: `_scratch` copies exactly what they change
        assert isinstance(fact, UsageRecorded | CreditsDebited)
        if isinstance(fact, CreditsDebited):
            credits -= fact.transaction.amount
        evolve(scratch, fact)
    if sub is None or before is None:
        return ItemCharge(
            feature_key=item.feature_key,
            units=item.units,
            credits=credits,
            billable_units=recorded.billable_units,
            charge=ZERO,
            currency=None,
        )
    after = _next_invoice_usage(scratch, sub, item.feature_key, ctx.catalog)
    assert after is not None
    currency = ctx.catalog.plans[sub.plan_id].currency
    return ItemCharge(
        feature_key=item.feature_key,
        units=item.units,
        credits=credits,
        billable_units=recorded.billable_units,
        # both sides are rounded lines: this only writes 0 as 0.00 (RSV-33)
        charge=round_money(after - before, currency),
        currency=currency,
    )


def _next_invoice_usage(
    state: CustomerState, sub: Subscription | None, feature_key: str, catalog: Catalog
) -> Decimal | None:
    """What the invoice that finalises `sub`'s current period bills for `feature_key` (all its
    buckets, late ones included, each rounded as the invoice rounds it), priced with the plan
    in force at the period end as `period_end.end_period` prices it; None when no invoice will
    bill the current period's usage (RSV-34)."""
    if sub is None:
        return None
    plan = catalog.plans[sub.plan_id]
    if sub.cancel_mode is CancelMode.END_OF_PERIOD and (
        plan.billing_timing is not BillingTiming.IN_ARREARS
    ):
        return None  # SUB-44: an ending IN_ADVANCE period is not finalised; no renewal follows
    link = plan.link(feature_key)
    if link is None:
        return ZERO
    closing = (sub.current_period_start, sub.current_period_end)
    charges = feature_charges(state, sub, plan, link, closing, catalog) or []
    return sum((bucket.charge for bucket in charges), ZERO)


def _scratch(state: CustomerState) -> CustomerState:
    """A copy of `state` that usage and debit facts can be applied to without touching the
    original: the pools (grants, remainders and ledger tail change) and the usage counters are
    copied; everything else is shared and only read."""
    return msgspec.structs.replace(
        state,
        pools={key: _copy_pool(pool) for key, pool in state.pools.items()},
        usage={
            sub_id: {key: _copy_counter(counter) for key, counter in counters.items()}
            for sub_id, counters in state.usage.items()
        },
    )


def _copy_pool(pool: CreditPool) -> CreditPool:
    return msgspec.structs.replace(
        pool,
        grants=[msgspec.structs.replace(grant) for grant in pool.grants],
        recent_transactions=list(pool.recent_transactions),
        remainders=dict(pool.remainders),
    )


def _copy_counter(counter: UsageCounter) -> UsageCounter:
    return UsageCounter(
        used=dict(counter.used),
        unbilled=dict(counter.unbilled),
        billed=dict(counter.billed),
        early=counter.early,
    )
