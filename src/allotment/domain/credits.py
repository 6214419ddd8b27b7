"""Credit pools, grants and the ledger (CRD-1..CRD-44).

A pool's balance is the sum of its live grants' `remaining`. Every change is one immutable
`CreditTransaction`; the pool keeps running totals so that, at every instant,
`balance = totalGranted - totalConsumed - totalExpired - totalReversed` (CRD-3).
Fully spent grants leave the pool: the ledger still holds them.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal

import msgspec

from allotment.domain.catalog import RolloverPolicy
from allotment.domain.money import ZERO

__all__ = (
    "CreditGrant",
    "CreditPool",
    "CreditTransaction",
    "GrantSource",
    "PoolStatus",
    "TransactionType",
    "burn_order_key",
    "plan_debit",
)

RECENT_TRANSACTIONS_MAX = 50  # the pool keeps its newest ledger entries; history keeps all


class PoolStatus(enum.StrEnum):
    ACTIVE = "ACTIVE"
    FROZEN = "FROZEN"
    DEPLETED = "DEPLETED"
    ARCHIVED = "ARCHIVED"


class GrantSource(enum.StrEnum):
    SUBSCRIPTION = "SUBSCRIPTION"
    PURCHASE = "PURCHASE"
    PROMOTION = "PROMOTION"
    MANUAL = "MANUAL"


class TransactionType(enum.StrEnum):
    GRANT = "GRANT"
    DEBIT = "DEBIT"
    EXPIRATION = "EXPIRATION"
    REVERSAL = "REVERSAL"


class CreditGrant(msgspec.Struct, kw_only=True):
    """One allocation of credits. `remaining` is the only field that ever changes."""

    id: uuid.UUID
    amount: Decimal
    remaining: Decimal
    source: GrantSource
    subscription_id: uuid.UUID | None = None
    granted_at: datetime
    expires_at: datetime | None = None
    # OpenMeter grants (OM-84): lower burns first. Tanso grants keep 0, so every Tanso pool
    # (all of whose grants share it) burns in exactly the order it always has.
    priority: int = 0


class CreditTransaction(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """One immutable ledger entry (CRD-20). `amount` is signed: + adds to the balance."""

    id: uuid.UUID
    pool_id: uuid.UUID
    type: TransactionType
    amount: Decimal
    balance_before: Decimal
    balance_after: Decimal
    created_at: datetime
    description: str
    grant_id: uuid.UUID | None = None
    event_key: str | None = None
    subscription_id: uuid.UUID | None = None
    reverses_debit: bool = False  # a + REVERSAL of a debit reduces totalConsumed (CRD-21)


class CreditPool(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    customer_id: uuid.UUID
    denomination: str
    name: str
    currency: str
    hard_limit: bool | None
    rollover_policy: RolloverPolicy
    rollover_cap: Decimal | None
    status: PoolStatus
    created_at: datetime
    modified_at: datetime
    grants: list[CreditGrant] = msgspec.field(default_factory=list)  # kept in burn order
    balance: Decimal = ZERO
    total_granted: Decimal = ZERO
    total_consumed: Decimal = ZERO
    total_expired: Decimal = ZERO
    total_reversed: Decimal = ZERO
    recent_transactions: list[CreditTransaction] = msgspec.field(default_factory=list)
    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    # MNY-B3: per feature, the credits its events owe (+) or have paid ahead (−) below the
    # 4-decimal quantum; kept outside the balance, which moves in whole quanta only
    remainders: dict[str, Decimal] = msgspec.field(default_factory=dict)

    def grant(self, grant_id: uuid.UUID) -> CreditGrant | None:
        return next((g for g in self.grants if g.id == grant_id), None)

    @property
    def blocks_access(self) -> bool:
        """ENT-16 / CRD-32: a hard-limited pool denies when frozen or empty."""
        return bool(self.hard_limit) and (self.status is PoolStatus.FROZEN or self.balance <= 0)


def burn_order_key(grant: CreditGrant) -> tuple[int, bool, datetime, datetime]:
    """CRD-31: soonest `expiresAt` first, non-expiring last, ties by oldest `grantedAt`;
    OM-84 puts the grant's priority (lower first) before all of these."""
    never = grant.expires_at is None
    return (grant.priority, never, grant.expires_at or grant.granted_at, grant.granted_at)


def plan_debit(
    pool: CreditPool, requested: Decimal, now: datetime
) -> list[tuple[CreditGrant, Decimal]]:
    """Which grants a debit of `requested` credits draws from, and how much from each (CRD-31).

    The amount covered is min(requested, live balance); a FROZEN or ARCHIVED pool covers
    nothing (CRD-33). Grants already past `expiresAt` are skipped: their expiry is due.
    """
    if pool.status in (PoolStatus.FROZEN, PoolStatus.ARCHIVED):
        return []
    draws: list[tuple[CreditGrant, Decimal]] = []
    left = requested
    for grant in pool.grants:  # already in burn order
        if left <= 0:
            break
        if grant.remaining <= 0 or (grant.expires_at is not None and grant.expires_at <= now):
            continue
        take = min(left, grant.remaining)
        draws.append((grant, take))
        left -= take
    return draws
