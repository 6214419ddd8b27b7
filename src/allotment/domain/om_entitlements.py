"""Creating, deleting and overriding OpenMeter entitlements (OM-80..OM-83, OM-87)."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from allotment.domain.catalog import RolloverPolicy
from allotment.domain.context import Outcome, TurnContext
from allotment.domain.facts import CreditPoolOpened, Fact
from allotment.domain.grants import pool_id_for
from allotment.domain.meters import ulid
from allotment.domain.money import ZERO
from allotment.domain.om_commands import (
    CreateEntitlement,
    EntitlementShown,
    IssueGrant,
    MeasureFrom,
    OverrideEntitlement,
)
from allotment.domain.om_facts import EntitlementCreated, EntitlementDeleted, GrantIssued
from allotment.domain.om_grants import PRIORITY_MAX, PRIORITY_MIN, activation_facts, define_grant
from allotment.domain.om_periods import Interval, parse_interval, period_containing
from allotment.domain.om_state import (
    EntitlementDefinition,
    EntitlementKind,
    OmEntitlement,
    pool_denomination,
)
from allotment.domain.replies import Rejected, RejectionKind
from allotment.domain.state import CustomerState

__all__ = ("create_entitlement", "live_for_feature", "override_entitlement", "resolve")

SHORTEST_PERIOD: Final = timedelta(hours=1)  # bounds catch-up of automatic resets (OM-81)


def resolve(state: CustomerState, entitlement: str) -> OmEntitlement | None:
    """An entitlement by id (live or deleted), else the live one of the feature key `entitlement`
    (OpenMeter's `entitlementIdOrFeatureKey`)."""
    found = state.entitlements.get(entitlement)
    return found if found is not None else live_for_feature(state, entitlement)


def live_for_feature(state: CustomerState, feature_key: str) -> OmEntitlement | None:
    """OM-80: at most one live entitlement per (customer, feature)."""
    for ent in state.entitlements.values():
        if ent.live and ent.definition.feature_key == feature_key:
            return ent
    return None


def create_entitlement(
    state: CustomerState,
    cmd: CreateEntitlement,
    ctx: TurnContext,
    replacing: OmEntitlement | None = None,
) -> Outcome:
    """OM-80..OM-82: validate, open the metered entitlement's pool, and issue the
    `issueAfterReset` grant (OM-85's default grant) in the same turn."""
    feature = ctx.catalog.features.get(cmd.feature_key)
    if feature is None or feature.archived_at is not None:
        return Outcome(_reject(RejectionKind.NOT_FOUND, "feature_key", "no such feature."))
    existing = live_for_feature(state, cmd.feature_key)
    if existing is not None and existing is not replacing:
        return Outcome(
            _reject(RejectionKind.CONFLICT, "feature_key", "the feature already has one.")
        )
    interval = None
    if cmd.kind is EntitlementKind.METERED:
        interval_or_rejection = _metered_interval(cmd)
        if isinstance(interval_or_rejection, Rejected):
            return Outcome(interval_or_rejection)
        interval = interval_or_rejection
    elif cmd.kind is EntitlementKind.STATIC and cmd.config is None:
        return Outcome(_reject(RejectionKind.INVALID, "config", "static entitlements need one."))
    entitlement_id = ulid(ctx.now, ctx.new_id())
    facts: list[Fact] = []
    if replacing is not None:
        facts.append(EntitlementDeleted(at=ctx.now, entitlement_id=replacing.id))
    created = _created(cmd, ctx, entitlement_id, interval)
    pool = _pool_opened(state, ctx, entitlement_id, cmd.is_soft_limit)
    if interval is not None:
        facts.append(pool)
    facts.append(created)
    period = None
    if created.period_start is not None and created.anchor is not None and interval is not None:
        period = (
            created.period_start,
            period_containing(created.anchor, interval, created.period_start)[1],
        )
    if cmd.issue_after_reset is not None and interval is not None:
        facts += _default_grant(cmd, ctx, pool, entitlement_id)
    return Outcome(EntitlementShown(definition=created.definition, current_period=period), facts)


def _metered_interval(cmd: CreateEntitlement) -> Interval | Rejected:
    if cmd.usage_period is None:
        return _reject(RejectionKind.INVALID, "usage_period", "metered entitlements need one.")
    interval = parse_interval(cmd.usage_period)
    if interval is None:
        return _reject(RejectionKind.INVALID, "usage_period.interval", "not a valid interval.")
    if interval.months == 0 and interval.seconds < SHORTEST_PERIOD.total_seconds():
        return _reject(RejectionKind.INVALID, "usage_period.interval", "at least one hour.")
    if cmd.issue_after_reset is not None and cmd.issue_after_reset < 0:
        return _reject(RejectionKind.INVALID, "issue_after_reset", "must not be negative.")
    if not PRIORITY_MIN <= cmd.issue_after_reset_priority <= PRIORITY_MAX:
        return _reject(RejectionKind.INVALID, "issue_after_reset_priority", "between 1 and 255.")
    return interval


def _created(
    cmd: CreateEntitlement, ctx: TurnContext, entitlement_id: str, interval: Interval | None
) -> EntitlementCreated:
    """The first period is the one of the anchor's grid containing now (OM-82)."""
    anchor = period_start = measure = None
    if interval is not None:
        anchor = cmd.anchor or ctx.now
        period_start = period_containing(anchor, interval, ctx.now)[0]
        measure = cmd.measure_usage_from or ctx.now
        if cmd.measure_preset is MeasureFrom.CURRENT_PERIOD_START:
            measure = period_start
    definition = EntitlementDefinition(
        id=entitlement_id,
        feature_key=cmd.feature_key,
        kind=cmd.kind,
        created_at=ctx.now,
        interval=interval,
        anchor=anchor,
        measure_usage_from=measure,
        is_soft_limit=cmd.is_soft_limit,
        issue_after_reset=cmd.issue_after_reset,
        issue_after_reset_priority=cmd.issue_after_reset_priority,
        preserve_overage_at_reset=cmd.preserve_overage_at_reset,
        config=cmd.config,
        metadata=cmd.metadata,
    )
    return EntitlementCreated(
        at=ctx.now, definition=definition, period_start=period_start, anchor=anchor
    )


def _pool_opened(
    state: CustomerState, ctx: TurnContext, entitlement_id: str, soft: bool
) -> CreditPoolOpened:
    """OM-86: the pool of the entitlement's grants; hard-limited unless the limit is soft."""
    denomination = pool_denomination(entitlement_id)
    return CreditPoolOpened(
        at=ctx.now,
        pool_id=pool_id_for(state, denomination),
        denomination=denomination,
        name=denomination,
        currency="USD",  # a pool's currency is required; an allowance has none of its own
        hard_limit=not soft,
        rollover_policy=RolloverPolicy.NONE,  # OpenMeter rolls over per grant (OM-95)
        rollover_cap=None,
    )


def _default_grant(
    cmd: CreateEntitlement, ctx: TurnContext, pool: CreditPoolOpened, entitlement_id: str
) -> list[Fact]:
    """OM-85: `issueAfterReset` is a grant whose rollover bounds both equal its amount, so
    every reset brings the balance back to it; issued and activated with the entitlement."""
    amount = cmd.issue_after_reset
    assert amount is not None
    issue = IssueGrant(
        entitlement=entitlement_id,
        amount=amount,
        effective_at=ctx.now,
        priority=cmd.issue_after_reset_priority,
        min_rollover=amount,
        max_rollover=amount,
    )
    grant = define_grant(issue, entitlement_id, None, ctx)
    return [
        GrantIssued(at=ctx.now, grant=grant),
        *activation_facts(pool.pool_id, pool.denomination, ZERO, grant, ctx, ctx.now),
    ]


def override_entitlement(
    state: CustomerState, cmd: OverrideEntitlement, ctx: TurnContext
) -> Outcome:
    """OM-83: the live entitlement is soft-deleted and the replacement created in one turn;
    its grants do not move (OpenMeter's override starts afresh)."""
    old = resolve(state, cmd.entitlement)
    if old is None or not old.live:
        return Outcome(_reject(RejectionKind.NOT_FOUND, "entitlement", "no live entitlement."))
    if cmd.replacement.feature_key != old.definition.feature_key:
        return Outcome(
            _reject(RejectionKind.INVALID, "feature_key", "an override keeps the feature.")
        )
    return create_entitlement(state, cmd.replacement, ctx, replacing=old)


def _reject(kind: RejectionKind, field: str, message: str) -> Rejected:
    return Rejected(kind=kind, message=f"{field}: {message}", field=field)
