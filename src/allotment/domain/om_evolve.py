"""Applying OpenMeter entitlement facts (OM-80..OM-119). Called by `evolve` only."""

from __future__ import annotations

import bisect
from datetime import datetime
from typing import assert_never

import msgspec

from allotment.domain.credits import (
    RECENT_TRANSACTIONS_MAX,
    CreditGrant,
    GrantSource,
    PoolStatus,
    burn_order_key,
)
from allotment.domain.money import ZERO
from allotment.domain.om_facts import (
    CreditsRestored,
    EntitlementCreated,
    EntitlementDeleted,
    EntitlementReset,
    EntitlementUsed,
    GrantActivated,
    GrantIssued,
    GrantRecurred,
    GrantVoided,
    OpenMeterFact,
)
from allotment.domain.om_periods import period_containing
from allotment.domain.om_state import (
    ActivationMark,
    GrantDefinition,
    OmEntitlement,
    RecurMark,
    ResetMark,
    UsageMark,
    VoidMark,
    pool_denomination,
)
from allotment.domain.state import CustomerState

__all__ = ("evolve_openmeter", "record_entitlement_usage")


def record_entitlement_usage(state: CustomerState, fact: EntitlementUsed) -> None:
    """The per-event part (OM-92): counters in place, one mark in the log."""
    ent = state.entitlements[fact.entitlement_id]
    ent.usage += fact.units
    ent.consumed += fact.covered
    ent.overage += fact.units - fact.covered
    ent.log.append(UsageMark(at=fact.at, units=fact.units))


def evolve_openmeter(state: CustomerState, fact: OpenMeterFact) -> None:
    match fact:
        case EntitlementUsed():
            record_entitlement_usage(state, fact)
        case EntitlementCreated():
            ent = OmEntitlement(
                definition=fact.definition, period_start=fact.period_start, anchor=fact.anchor
            )
            state.entitlements[ent.id] = ent
            if fact.period_start is not None:  # metered: the replay starts here (OM-100)
                _mark_reset(ent, ResetMark(fact.at, fact.period_start, (), ZERO, ZERO))
        case EntitlementDeleted():
            state.entitlements[fact.entitlement_id].deleted_at = fact.at
        case EntitlementReset():
            _reset(state, fact)
        case GrantIssued():
            state.entitlements[fact.grant.entitlement_id].grants[fact.grant.id] = fact.grant
        case GrantActivated() | GrantVoided() | GrantRecurred():
            _evolve_grant(state.entitlements[fact.entitlement_id], fact)
        case CreditsRestored():
            _restore(state, fact)
        case _:
            assert_never(fact)


def _evolve_grant(ent: OmEntitlement, fact: GrantActivated | GrantVoided | GrantRecurred) -> None:
    """A grant's definition replaced, and the mark its replay needs (OM-100)."""
    grant = ent.grants[fact.grant_id]
    match fact:
        case GrantActivated():
            next_at = _next(grant, fact.at)
            grant = msgspec.structs.replace(
                grant, active=True, activated_at=fact.at, next_recurrence=next_at
            )
            ent.log.append(ActivationMark(fact.at, grant.id))
        case GrantVoided():
            grant = msgspec.structs.replace(grant, voided_at=fact.at)
            ent.log.append(VoidMark(fact.at, grant.id))
        case GrantRecurred():
            grant = msgspec.structs.replace(grant, next_recurrence=_next(grant, fact.at))
            ent.log.append(RecurMark(fact.at, grant.id))
        case _:
            assert_never(fact)
    ent.grants[grant.id] = grant


def _next(grant: GrantDefinition, after: datetime) -> datetime | None:
    """OM-85: the recurrence boundary after `after`, on the grid of its anchor (default the
    grant's effectiveAt)."""
    if grant.recurrence is None:
        return None
    anchor = grant.recurrence_anchor or grant.effective_at
    return period_containing(anchor, grant.recurrence, after)[1]


def _reset(state: CustomerState, fact: EntitlementReset) -> None:
    """OM-94: the period restarts; the mark records the pool as rollover left it."""
    ent = state.entitlements[fact.entitlement_id]
    ent.period_start = fact.period_start
    ent.anchor = fact.anchor
    ent.last_reset = fact.period_start
    ent.usage = ZERO  # a new period has counted nothing yet
    ent.consumed = fact.consumed
    ent.overage = fact.overage
    pool = state.pools.get(pool_denomination(ent.id))
    balances = tuple((g.id, g.remaining) for g in pool.grants) if pool is not None else ()
    _mark_reset(ent, ResetMark(fact.at, fact.period_start, balances, fact.overage, fact.consumed))


def _mark_reset(ent: OmEntitlement, mark: ResetMark) -> None:
    ent.reset_positions.append(len(ent.log))
    ent.log.append(mark)


def _restore(state: CustomerState, fact: CreditsRestored) -> None:
    """OM-95: rollover adds credits back to a grant, re-entering it in burn order if it had
    been spent; conservation holds as for any grant (`total_granted` grows)."""
    pool = state.pools[fact.denomination]
    amount = fact.transaction.amount
    grant = pool.grant(fact.grant_id)
    if grant is None:
        grant = CreditGrant(
            id=fact.grant_id,
            amount=amount,
            remaining=amount,
            source=GrantSource.MANUAL,
            granted_at=fact.granted_at,
            expires_at=fact.expires_at,
            priority=fact.priority,
        )
        bisect.insort(pool.grants, grant, key=burn_order_key)
    else:
        grant.remaining += amount
    pool.balance += amount
    pool.total_granted += amount
    if pool.status is PoolStatus.DEPLETED and pool.balance > 0:
        pool.status = PoolStatus.ACTIVE
    pool.recent_transactions.append(fact.transaction)
    if len(pool.recent_transactions) > RECENT_TRANSACTIONS_MAX:
        del pool.recent_transactions[0]
    pool.modified_at = fact.at
