"""Usage of metered entitlements (OM-90..OM-93): what one recorded usage event, a Tanso event
or a CloudEvent counted through its meter (OM-30), does to the live metered entitlement of
its feature. Called from `metering.record_usage` only when the customer has entitlements, so
the Tanso hot path pays one dictionary truth test."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from allotment.domain.context import TurnContext
from allotment.domain.credits import plan_debit
from allotment.domain.facts import Fact
from allotment.domain.grants import debit_facts
from allotment.domain.money import ZERO
from allotment.domain.om_facts import EntitlementUsed
from allotment.domain.om_state import OmEntitlement, pool_denomination
from allotment.domain.state import CustomerState

__all__ = ("counting_entitlement", "entitlement_usage_facts")


def counting_entitlement(
    state: CustomerState, feature_key: str, occurred_at: datetime
) -> OmEntitlement | None:
    """OM-90, OM-91: the live metered entitlement of `feature_key`, if an event that occurred
    at `occurred_at` counts toward it: not before its `measureUsageFrom`, and not before its
    current period (a late event for a closed period counts toward none)."""
    for ent in state.entitlements.values():
        definition = ent.definition
        if definition.feature_key != feature_key or not ent.live or not ent.metered:
            continue
        start = ent.period_start
        if start is not None and occurred_at < start:
            return None
        measure = definition.measure_usage_from
        if measure is not None and occurred_at < measure:
            return None
        return ent
    return None


def entitlement_usage_facts(
    state: CustomerState,
    feature_key: str,
    occurred_at: datetime,
    units: Decimal,
    event_key: str,
    ctx: TurnContext,
) -> list[Fact]:
    """OM-92: the units burn the entitlement's grants down in burn order (OM-84) at the
    instant they are recorded; what the grants do not cover is overage. Never refuses: the
    event is the customer's usage whatever the balance (OM-93)."""
    if units <= 0:
        return []
    ent = counting_entitlement(state, feature_key, occurred_at)
    if ent is None:
        return []
    pool = state.pools[pool_denomination(ent.id)]
    draws = plan_debit(pool, units, ctx.now)
    covered = sum((take for _, take in draws), ZERO)
    facts = debit_facts(pool, [(g.id, take) for g, take in draws], ctx, event_key, None)
    facts.append(EntitlementUsed(at=ctx.now, entitlement_id=ent.id, units=units, covered=covered))
    return facts
