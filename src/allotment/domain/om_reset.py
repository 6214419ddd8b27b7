"""Resets of metered entitlements (OM-94..OM-97): automatic at each usage-period boundary (a due
transition, SCH-1) and manual. A reset rolls every grant over, clamping what it has left
between its min and max rollover (OM-95), carries overage when asked (OM-97), and starts a new
period with usage 0.
"""

from __future__ import annotations

import bisect
from datetime import datetime
from decimal import Decimal

import msgspec

from allotment.domain.context import Outcome, TurnContext
from allotment.domain.credits import (
    CreditGrant,
    CreditPool,
    CreditTransaction,
    GrantSource,
    TransactionType,
    burn_order_key,
    plan_debit,
)
from allotment.domain.facts import CreditsExpired, Fact
from allotment.domain.grants import debit_facts
from allotment.domain.money import ZERO
from allotment.domain.om_commands import ResetEntitlement
from allotment.domain.om_facts import CreditsRestored, EntitlementReset
from allotment.domain.om_periods import period_containing
from allotment.domain.om_state import (
    GrantDefinition,
    OmEntitlement,
    current_period,
    pool_denomination,
)
from allotment.domain.replies import Done, Rejected, RejectionKind
from allotment.domain.state import CustomerState

__all__ = ("manual_reset", "next_reset", "reset_facts", "scratch_pool", "set_remaining")


def next_reset(state: CustomerState) -> tuple[datetime, OmEntitlement] | None:
    """OM-94: the earliest period end among live metered entitlements."""
    found: tuple[datetime, OmEntitlement] | None = None
    for ent in state.entitlements.values():
        period = current_period(ent) if ent.live else None
        if period is not None and (found is None or period[1] < found[0]):
            found = (period[1], ent)
    return found


def manual_reset(
    state: CustomerState, ent: OmEntitlement, cmd: ResetEntitlement, ctx: TurnContext
) -> Outcome:
    """OM-96: journalled now; the new period starts at `effectiveAt` (not after now, not
    before the current period). Usage counted between `effectiveAt` and now stays in the
    closed period: the ledger never rewrites what an earlier instant answered (OM-100)."""
    effective = cmd.effective_at or ctx.now
    period = current_period(ent)
    interval = ent.definition.interval
    if period is None or interval is None or ent.anchor is None:
        return Outcome(_bad("entitlement", "only metered entitlements are reset."))
    if effective > ctx.now:
        return Outcome(_bad("effective_at", "a reset cannot be in the future."))
    if effective < period[0]:
        return Outcome(_bad("effective_at", "before the current usage period."))
    anchor = ent.anchor if cmd.retain_anchor else effective
    if period_containing(anchor, interval, effective)[1] <= ctx.now:
        return Outcome(_bad("effective_at", "the period it starts has already ended."))
    preserve = cmd.preserve_overage
    if preserve is None:
        preserve = ent.definition.preserve_overage_at_reset
    facts = reset_facts(state, ent, ctx, ctx.now, effective, anchor, preserve, automatic=False)
    return Outcome(Done(), facts)


def reset_facts(
    state: CustomerState,
    ent: OmEntitlement,
    ctx: TurnContext,
    at: datetime,
    period_start: datetime,
    anchor: datetime,
    preserve: bool,
    *,
    automatic: bool,
) -> list[Fact]:
    """Rollover (OM-95), carried overage (OM-97), then the new period (OM-94), at `at`."""
    pool = state.pools[pool_denomination(ent.id)]
    scratch = scratch_pool(pool)
    facts: list[Fact] = []
    for grant in ent.grants.values():
        if not grant.active or grant.voided_at is not None:
            continue
        if grant.expires_at is not None and grant.expires_at <= at:
            continue  # expired grants do not roll over
        live = scratch.grant(grant.id)
        before = live.remaining if live is not None else ZERO
        target = min(grant.max_rollover, max(before, grant.min_rollover))
        fact = set_remaining(ctx, scratch, grant, at, target, "OpenMeter rollover")
        if fact is not None:
            facts.append(fact)
    carried = ent.overage if preserve else ZERO
    covered = ZERO
    if carried > 0:
        draws = plan_debit(scratch, carried, at)
        covered = sum((take for _, take in draws), ZERO)
        draws_at = [(g.id, take) for g, take in draws]
        # stamped at the reset's instant, which a due reset has already passed (SCH-1)
        at_reset = msgspec.structs.replace(ctx, now=at)
        facts += debit_facts(scratch, draws_at, at_reset, "overage", None)
    facts.append(
        EntitlementReset(
            at=at,
            entitlement_id=ent.id,
            period_start=period_start,
            anchor=anchor,
            overage=carried - covered,
            consumed=covered,
            automatic=automatic,
        )
    )
    return facts


def set_remaining(
    ctx: TurnContext,
    scratch: CreditPool,
    grant: GrantDefinition,
    at: datetime,
    target: Decimal,
    description: str,
) -> Fact | None:
    """The fact that brings one grant's remaining credits to `target` (rollover, OM-95:
    `MIN(maxRollover, MAX(balance_before, minRollover))`; recurrence, OM-85: its amount),
    applied to `scratch` as the fact will apply it to the pool; None when nothing changes."""
    live = scratch.grant(grant.id)
    before = live.remaining if live is not None else ZERO
    delta = target - before
    if delta == 0:
        return None
    transaction = CreditTransaction(
        id=ctx.new_id(),
        pool_id=scratch.id,
        type=TransactionType.GRANT if delta > 0 else TransactionType.EXPIRATION,
        amount=delta,
        balance_before=scratch.balance,
        balance_after=scratch.balance + delta,
        created_at=at,
        description=description,
        grant_id=grant.id,
    )
    scratch.balance += delta
    granted_at = grant.activated_at or grant.effective_at
    if live is None:
        restored = CreditGrant(
            id=grant.id,
            amount=delta,
            remaining=delta,
            source=GrantSource.MANUAL,
            granted_at=granted_at,
            expires_at=grant.expires_at,
            priority=grant.priority,
        )
        bisect.insort(scratch.grants, restored, key=burn_order_key)
    else:
        live.remaining += delta
        if live.remaining <= 0:
            scratch.grants.remove(live)
    if delta < 0:
        return CreditsExpired(
            at=at, denomination=scratch.denomination, grant_id=grant.id, transaction=transaction
        )
    return CreditsRestored(
        at=at,
        denomination=scratch.denomination,
        grant_id=grant.id,
        priority=grant.priority,
        granted_at=granted_at,
        expires_at=grant.expires_at,
        transaction=transaction,
    )


def scratch_pool(pool: CreditPool) -> CreditPool:
    """A copy of the pool whose grants rollover may change without touching the state."""
    grants = [
        CreditGrant(
            id=g.id,
            amount=g.amount,
            remaining=g.remaining,
            source=g.source,
            granted_at=g.granted_at,
            expires_at=g.expires_at,
            priority=g.priority,
        )
        for g in pool.grants
    ]
    return CreditPool(
        id=pool.id,
        customer_id=pool.customer_id,
        denomination=pool.denomination,
        name=pool.name,
        currency=pool.currency,
        hard_limit=pool.hard_limit,
        rollover_policy=pool.rollover_policy,
        rollover_cap=pool.rollover_cap,
        status=pool.status,
        created_at=pool.created_at,
        modified_at=pool.modified_at,
        grants=grants,
        balance=pool.balance,
    )


def _bad(field: str, message: str) -> Rejected:
    return Rejected(kind=RejectionKind.INVALID, message=f"{field}: {message}", field=field)
