"""The `entitlements` and `grants` tables (OM-158): every OpenMeter entitlement of a customer,
deleted ones included, with its value as of the snapshot's state, and every grant; then the
read-only views of the customer's Tanso subscriptions (OM-150), flagged `is_derived`.

A native entitlement's value is read from its pool and counters as the state's last turn left
them (`om_value.live_value`), so replaying the journal from zero or from a snapshot gives the
same rows. A derived view has no grants: its balance's source is the plan's `maxUsage`,
shown as `issue_after_reset`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

from allotment.domain.catalog import Catalog
from allotment.domain.money import ZERO
from allotment.domain.om_commands import EntitlementValue
from allotment.domain.om_state import (
    EntitlementDefinition,
    GrantDefinition,
    OmEntitlement,
    current_period,
    pool_denomination,
)
from allotment.domain.om_value import live_value
from allotment.domain.om_views import derived_entitlements, derived_value
from allotment.domain.state import CustomerState
from allotment.persistence.analytics_rows.table import Row

__all__ = ("EntitlementRow", "GrantRow", "entitlement_rows")


class EntitlementRow(Row, frozen=True, gc=False):
    table = "entitlements"
    entitlement_id: str
    customer_id: str
    feature_key: str
    entitlement_type: str  # metered, static or boolean
    is_derived: bool  # a Tanso subscription's read-only view (OM-150)
    subscription_id: str | None  # a derived view's
    usage_period: str | None  # ISO-8601 duration
    usage_period_anchor: datetime | None
    measure_usage_from: datetime | None
    is_soft_limit: bool
    issue_after_reset: Decimal | None
    preserve_overage_at_reset: bool
    config: str | None  # static: JSON text
    created_at: datetime
    deleted_at: datetime | None
    current_period_start: datetime | None
    current_period_end: datetime | None
    last_reset_at: datetime | None
    has_access: bool
    balance: Decimal | None
    period_usage: Decimal | None
    period_overage: Decimal | None


class GrantRow(Row, frozen=True, gc=False):
    table = "grants"
    grant_id: str  # the wire's ULID
    entitlement_id: str
    customer_id: str
    amount: Decimal
    priority: int
    effective_at: datetime
    expires_at: datetime | None
    expiration_duration: str | None
    expiration_count: int | None
    min_rollover: Decimal
    max_rollover: Decimal
    recurrence: str | None  # ISO-8601 duration
    recurrence_anchor: datetime | None
    created_at: datetime
    activated_at: datetime | None  # its credits entered the pool (null: not yet effective)
    voided_at: datetime | None
    is_voided: bool
    remaining: Decimal | None  # in the pool now (null: not yet active)


def entitlement_rows(state: CustomerState, catalog: Catalog) -> Iterator[Row]:
    """The native entitlements in creation order, each followed by its grants, then the
    derived views."""
    cid = str(state.id)
    for ent in state.entitlements.values():
        # `now` only hides an entitlement created after it: the value is the state's own
        value = live_value(state, ent, ent.definition.created_at)
        yield _row(cid, ent.definition, value, current_period(ent), ent, None)
        pool = state.pools.get(pool_denomination(ent.id))
        for grant in ent.grants.values():
            in_pool = pool.grant(grant.id) if pool is not None else None
            # an active grant out of the pool was spent, expired or voided: nothing remains
            remaining = in_pool.remaining if in_pool is not None else ZERO if grant.active else None
            yield _grant_row(cid, grant, remaining)
    for view in derived_entitlements(state, catalog):
        value = derived_value(state, catalog, view)
        yield _row(cid, view.definition, value, view.current_period, None, view.subscription_id)


def _row(
    cid: str,
    definition: EntitlementDefinition,
    value: EntitlementValue,
    period: tuple[datetime, datetime] | None,
    ent: OmEntitlement | None,
    subscription_id: uuid.UUID | None,
) -> EntitlementRow:
    return EntitlementRow(
        entitlement_id=definition.id,
        customer_id=cid,
        feature_key=definition.feature_key,
        entitlement_type=definition.kind.value,
        is_derived=subscription_id is not None,
        subscription_id=None if subscription_id is None else str(subscription_id),
        usage_period=definition.interval.iso if definition.interval is not None else None,
        usage_period_anchor=definition.anchor,
        measure_usage_from=definition.measure_usage_from,
        is_soft_limit=definition.is_soft_limit,
        issue_after_reset=definition.issue_after_reset,
        preserve_overage_at_reset=definition.preserve_overage_at_reset,
        config=definition.config,
        created_at=definition.created_at,
        deleted_at=ent.deleted_at if ent is not None else None,
        current_period_start=period[0] if period is not None else None,
        current_period_end=period[1] if period is not None else None,
        last_reset_at=ent.last_reset if ent is not None else None,
        has_access=value.has_access,
        balance=value.balance,
        period_usage=value.usage,
        period_overage=value.overage,
    )


def _grant_row(cid: str, grant: GrantDefinition, remaining: Decimal | None) -> GrantRow:
    return GrantRow(
        grant_id=grant.public_id,
        entitlement_id=grant.entitlement_id,
        customer_id=cid,
        amount=grant.amount,
        priority=grant.priority,
        effective_at=grant.effective_at,
        expires_at=grant.expires_at,
        expiration_duration=grant.expiration_duration,
        expiration_count=grant.expiration_count,
        min_rollover=grant.min_rollover,
        max_rollover=grant.max_rollover,
        recurrence=grant.recurrence.iso if grant.recurrence is not None else None,
        recurrence_anchor=grant.recurrence_anchor,
        created_at=grant.created_at,
        activated_at=grant.activated_at,
        voided_at=grant.voided_at,
        is_voided=grant.voided_at is not None,
        remaining=remaining,
    )
