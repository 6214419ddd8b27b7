"""Grants on metered entitlements (OM-84..OM-89): issue, activation (a due transition for a
grant effective in the future), void. A grant's credits are a credit grant of the
entitlement's pool, so burn-down and expiry are the pool's (CRD-31 with OM-84's priority,
CRD-42)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Final

from allotment.domain.context import Outcome, TurnContext
from allotment.domain.credits import CreditTransaction, GrantSource, TransactionType
from allotment.domain.facts import CreditsGranted, CreditsReversed, Fact
from allotment.domain.meters import ulid
from allotment.domain.money import ZERO
from allotment.domain.om_commands import GrantShown, IssueGrant, VoidGrant
from allotment.domain.om_facts import GrantActivated, GrantIssued, GrantVoided
from allotment.domain.om_periods import expiration_end, parse_interval
from allotment.domain.om_state import GrantDefinition, OmEntitlement, pool_denomination
from allotment.domain.replies import Rejected, RejectionKind
from allotment.domain.state import CustomerState

__all__ = (
    "activation_facts",
    "define_grant",
    "issue_grant",
    "next_activation",
    "next_recurrence",
    "void_grant",
)

PRIORITY_MIN: Final = 1
PRIORITY_MAX: Final = 255
EXPIRATION_COUNT_MAX: Final = 1000
SHORTEST_INTERVAL_SECONDS: Final = 3600  # bounds the catch-up of re-issues (as OM-81's)


def issue_grant(
    state: CustomerState, ent: OmEntitlement, cmd: IssueGrant, ctx: TurnContext
) -> Outcome:
    """OM-84, OM-85, OM-88: validate, define, and activate at once when already effective."""
    rejection = _invalid_grant(ent, cmd)
    if rejection is not None:
        return Outcome(rejection)
    expires_at = None
    if cmd.expiration_duration is not None and cmd.expiration_count is not None:
        expires_at = expiration_end(cmd.effective_at, cmd.expiration_duration, cmd.expiration_count)
        if expires_at is not None and expires_at <= ctx.now:
            return Outcome(_bad("expiration", "the grant would already have expired."))
    grant = define_grant(cmd, ent.id, expires_at, ctx)
    facts: list[Fact] = [GrantIssued(at=ctx.now, grant=grant)]
    if cmd.effective_at <= ctx.now:  # OM-88: not retroactive; a past grant starts now
        pool = state.pools[pool_denomination(ent.id)]
        facts += activation_facts(pool.id, pool.denomination, pool.balance, grant, ctx, ctx.now)
    return Outcome(GrantShown(grant=grant), facts)


def define_grant(
    cmd: IssueGrant, entitlement_id: str, expires_at: datetime | None, ctx: TurnContext
) -> GrantDefinition:
    """The grant as `cmd` defines it, with a fresh id (its ULID on the wire)."""
    grant_id = ctx.new_id()
    return GrantDefinition(
        id=grant_id,
        public_id=ulid(ctx.now, grant_id),
        entitlement_id=entitlement_id,
        amount=cmd.amount,
        priority=cmd.priority,
        effective_at=cmd.effective_at,
        created_at=ctx.now,
        expires_at=expires_at,
        expiration_duration=cmd.expiration_duration,
        expiration_count=cmd.expiration_count,
        min_rollover=cmd.min_rollover,
        max_rollover=ZERO if cmd.max_rollover is None else cmd.max_rollover,
        recurrence=parse_interval(cmd.recurrence) if cmd.recurrence else None,
        recurrence_anchor=cmd.recurrence_anchor,
        metadata=cmd.metadata,
    )


def _invalid_grant(ent: OmEntitlement, cmd: IssueGrant) -> Rejected | None:  # noqa: PLR0911 (one return per fault)
    """OM-84, OM-85: what a grant must be; the first fault, naming its field."""
    if not ent.metered:
        return _bad("entitlement", "grants are only for metered entitlements.")
    if cmd.amount < 0:
        return _bad("amount", "must not be negative.")
    if not PRIORITY_MIN <= cmd.priority <= PRIORITY_MAX:
        return _bad("priority", "must be between 1 and 255.")
    if cmd.min_rollover < 0 or (cmd.max_rollover is not None and cmd.max_rollover < 0):
        return _bad("min_rollover_amount", "rollover amounts must not be negative.")
    if cmd.max_rollover is not None and cmd.min_rollover > cmd.max_rollover:
        return _bad("min_rollover_amount", "must not exceed the maximum rollover.")
    if (cmd.expiration_duration is None) != (cmd.expiration_count is None):
        return _bad("expiration", "needs both duration and count.")
    if cmd.expiration_count is not None and not 1 <= cmd.expiration_count <= EXPIRATION_COUNT_MAX:
        return _bad("expiration.count", "must be between 1 and 1000.")
    if cmd.expiration_duration is not None and (
        expiration_end(cmd.effective_at, cmd.expiration_duration, 1) is None
    ):
        return _bad("expiration.duration", "must be HOUR, DAY, WEEK, MONTH or YEAR.")
    if cmd.recurrence is not None:
        interval = parse_interval(cmd.recurrence)
        if interval is None:
            return _bad("recurrence.interval", "not an interval or ISO-8601 duration.")
        if interval.months == 0 and interval.seconds < SHORTEST_INTERVAL_SECONDS:
            return _bad("recurrence.interval", "at least one hour.")
    return None


def activation_facts(
    pool_id: uuid.UUID,
    denomination: str,
    balance: Decimal,
    grant: GrantDefinition,
    ctx: TurnContext,
    at: datetime,
) -> list[Fact]:
    """The grant's credits enter the pool at `at` (a GRANT transaction, CRD-10). A grant of
    nothing puts nothing in the pool (a live grant always has credits, CRD-4) but is active:
    rollover may raise it to its minimum (OM-95)."""
    activated = GrantActivated(at=at, entitlement_id=grant.entitlement_id, grant_id=grant.id)
    if grant.amount == 0:
        return [activated]
    transaction = CreditTransaction(
        id=ctx.new_id(),
        pool_id=pool_id,
        type=TransactionType.GRANT,
        amount=grant.amount,
        balance_before=balance,
        balance_after=balance + grant.amount,
        created_at=at,
        description="OpenMeter grant",
        grant_id=grant.id,
    )
    return [
        CreditsGranted(
            at=at,
            denomination=denomination,
            grant_id=grant.id,
            amount=grant.amount,
            source=GrantSource.MANUAL,
            expires_at=grant.expires_at,
            subscription_id=None,
            period_key=None,
            transaction=transaction,
            priority=grant.priority,
        ),
        activated,
    ]


def next_activation(state: CustomerState) -> tuple[datetime, OmEntitlement, GrantDefinition] | None:
    """OM-88: the earliest grant of a live metered entitlement waiting for its `effectiveAt`."""
    found: tuple[datetime, OmEntitlement, GrantDefinition] | None = None
    for ent in state.entitlements.values():
        if not ent.live:
            continue
        for grant in ent.grants.values():
            if grant.active or grant.voided_at is not None:
                continue
            if found is None or grant.effective_at < found[0]:
                found = (grant.effective_at, ent, grant)
    return found


def next_recurrence(
    state: CustomerState,
) -> tuple[datetime, OmEntitlement, GrantDefinition] | None:
    """OM-85: the earliest re-issue of an active recurring grant not voided nor expired by
    then, of a live entitlement."""
    found: tuple[datetime, OmEntitlement, GrantDefinition] | None = None
    for ent in state.entitlements.values():
        if not ent.live:
            continue
        for grant in ent.grants.values():
            at = grant.next_recurrence
            if at is None or grant.voided_at is not None:
                continue
            if grant.expires_at is not None and grant.expires_at <= at:
                continue
            if found is None or at < found[0]:
                found = (at, ent, grant)
    return found


def void_grant(state: CustomerState, cmd: VoidGrant, ctx: TurnContext) -> Outcome:
    """OM-89: not retroactive. What the grant had left leaves the pool by a REVERSAL now;
    what it covered stays covered. A voided grant cannot be voided again (409)."""
    for ent in state.entitlements.values():
        for grant in ent.grants.values():
            if grant.public_id != cmd.grant:
                continue
            if grant.voided_at is not None:
                return Outcome(
                    Rejected(
                        kind=RejectionKind.CONFLICT,
                        message="Grant already voided.",
                        field="grant_id",
                    )
                )
            return Outcome(GrantShown(grant=grant), _void_facts(state, ent, grant, ctx))
    return Outcome(
        Rejected(kind=RejectionKind.NOT_FOUND, message="Grant not found.", field="grant_id")
    )


def _void_facts(
    state: CustomerState, ent: OmEntitlement, grant: GrantDefinition, ctx: TurnContext
) -> list[Fact]:
    facts: list[Fact] = []
    pool = state.pools[pool_denomination(ent.id)]
    live = pool.grant(grant.id)
    if live is not None and live.remaining > 0:
        remaining: Decimal = live.remaining
        transaction = CreditTransaction(
            id=ctx.new_id(),
            pool_id=pool.id,
            type=TransactionType.REVERSAL,
            amount=-remaining,
            balance_before=pool.balance,
            balance_after=pool.balance - remaining,
            created_at=ctx.now,
            description="OpenMeter grant voided",
            grant_id=grant.id,
        )
        facts.append(
            CreditsReversed(
                at=ctx.now,
                denomination=pool.denomination,
                grant_id=grant.id,
                transaction=transaction,
            )
        )
    facts.append(GrantVoided(at=ctx.now, entitlement_id=ent.id, grant_id=grant.id))
    return facts


def _bad(field: str, message: str) -> Rejected:
    return Rejected(kind=RejectionKind.INVALID, message=f"{field}: {message}", field=field)
