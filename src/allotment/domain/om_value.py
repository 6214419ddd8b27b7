"""The value of an entitlement at an instant (OM-98..OM-101), now or in the past.

Now, it is read from the live pool and counters in O(1). At a past instant, `Replay` walks the
entitlement's log from the last period start before that instant, burning usage down on a
scratch copy of the pool with the pool's own `plan_debit`: the same decisions, in the same
order, from the same inputs, so the answer is the one the live state gave at that instant
(OM-100; the property test holds the two equal).
"""

from __future__ import annotations

import bisect
import uuid
from datetime import datetime, timedelta
from decimal import Decimal

from allotment.domain.catalog import RolloverPolicy
from allotment.domain.credits import (
    CreditGrant,
    CreditPool,
    GrantSource,
    PoolStatus,
    burn_order_key,
    plan_debit,
)
from allotment.domain.money import ZERO
from allotment.domain.om_commands import EntitlementValue
from allotment.domain.om_state import (
    ActivationMark,
    EntitlementKind,
    LogMark,
    OmEntitlement,
    RecurMark,
    ResetMark,
    UsageMark,
    VoidMark,
    pool_denomination,
)
from allotment.domain.state import CustomerState

__all__ = ("Replay", "live_value", "value_at")

_NO_ACCESS = EntitlementValue(has_access=False)
_TICK = timedelta(microseconds=1)


def value_at(
    state: CustomerState, ent: OmEntitlement, at: datetime, now: datetime
) -> EntitlementValue:
    """OM-98..OM-100: the value at `at`, as the state replayed to `at` answered. `now` is the
    turn's instant (due transitions applied); an instant at or after it answers as now."""
    if at >= now:
        return live_value(state, ent, now)
    definition = ent.definition
    if at < definition.created_at or (ent.deleted_at is not None and at >= ent.deleted_at):
        return _NO_ACCESS  # OM-83: deletion is not retroactive, and answers from its instant
    if definition.kind is not EntitlementKind.METERED:
        return _flat(ent)
    replay = Replay(ent, at)
    replay.advance(at)
    return replay.value(at)


def live_value(state: CustomerState, ent: OmEntitlement, now: datetime) -> EntitlementValue:
    """The value now, from the pool and the counters."""
    if not ent.live or now < ent.definition.created_at:
        return _NO_ACCESS
    if not ent.metered:
        return _flat(ent)
    pool = state.pools[pool_denomination(ent.id)]
    return _metered(ent, pool.balance)


def _flat(ent: OmEntitlement) -> EntitlementValue:
    """OM-99: boolean and static entitlements grant access while they exist."""
    return EntitlementValue(has_access=True, config=ent.definition.config)


def _metered(ent: OmEntitlement, balance: Decimal) -> EntitlementValue:
    """OM-98: hard limits deny at a zero balance; soft limits never deny."""
    return EntitlementValue(
        has_access=ent.definition.is_soft_limit or balance > 0,
        balance=max(balance, ZERO),
        usage=ent.usage,
        overage=ent.overage,
        total_available_grant_amount=balance + ent.consumed,
    )


class Replay:
    """The entitlement's pool and counters rebuilt forward through its log (OM-100).

    Starts at the last period start at or before `start`; `advance(t)` applies every mark
    with `at <= t` in log order. `pool.grants` is in burn order, exactly as the live pool's
    was: reset marks list the live order, and grants enter by the same `burn_order_key`.
    """

    def __init__(self, ent: OmEntitlement, start: datetime) -> None:
        self.ent = ent
        log = ent.log
        upto = bisect.bisect_right(log, start, key=lambda mark: mark.at)
        positions = ent.reset_positions
        index = bisect.bisect_left(positions, upto) - 1
        self.position = positions[max(index, 0)]
        self.pool = CreditPool(
            id=uuid.UUID(int=0),
            customer_id=uuid.UUID(int=0),
            denomination=pool_denomination(ent.id),
            name="replay",
            currency="USD",
            hard_limit=None,
            rollover_policy=RolloverPolicy.NONE,  # unused: the log says what rollover did
            rollover_cap=None,
            status=PoolStatus.ACTIVE,
            created_at=ent.definition.created_at,
            modified_at=ent.definition.created_at,
        )
        self.usage = ZERO
        self.consumed = ZERO
        self.overage = ZERO
        self.period_start = ent.definition.created_at
        self.usage_by_grant: dict[uuid.UUID, Decimal] = {}

    def next_at(self) -> datetime | None:
        """The instant of the next mark not yet applied."""
        log = self.ent.log
        return log[self.position].at if self.position < len(log) else None

    def advance(self, until: datetime) -> None:
        """Apply every mark at or before `until`."""
        log = self.ent.log
        while self.position < len(log) and log[self.position].at <= until:
            self.apply(log[self.position])
            self.position += 1

    def advance_before(self, until: datetime) -> None:
        """Apply every mark strictly before `until`: the state a window starting then opens with."""
        log = self.ent.log
        while self.position < len(log) and log[self.position].at < until:
            self.apply(log[self.position])
            self.position += 1

    @classmethod
    def opening(cls, ent: OmEntitlement, start: datetime) -> Replay:
        """A replay positioned at the first mark a range from `start` counts (OM-102): marks
        at `start` that come before a period starting at `start` belong to the closed period."""
        replay = cls(ent, start - _TICK)
        log = ent.log
        first = bisect.bisect_left(log, start, key=lambda mark: mark.at)
        for position in range(first, bisect.bisect_right(log, start, key=lambda m: m.at)):
            if isinstance(log[position], ResetMark):
                first = position
        while replay.position < first:
            replay.apply(log[replay.position])
            replay.position += 1
        replay.open_at(start)
        return replay

    def open_at(self, start: datetime) -> None:
        """The state a window opening at `start` starts with: every mark before it, and the
        grant and period changes at `start` itself up to its first usage (that usage is the
        window's own)."""
        self.advance_before(start)
        log = self.ent.log
        while (
            self.position < len(log)
            and log[self.position].at == start
            and not isinstance(log[self.position], UsageMark)
        ):
            self.apply(log[self.position])
            self.position += 1

    def apply(self, mark: LogMark) -> None:
        match mark:
            case UsageMark():
                draws = plan_debit(self.pool, mark.units, mark.at)
                for grant, take in draws:
                    self._take(grant, take)
                covered = sum((take for _, take in draws), ZERO)
                self.usage += mark.units
                self.consumed += covered
                self.overage += mark.units - covered
            case ActivationMark():
                definition = self.ent.grants[mark.grant_id]
                if definition.amount > 0:  # a grant of nothing never enters the pool
                    self._insert(definition.id, definition.amount)
            case RecurMark():  # in place, as the pool's grant keeps its place
                definition = self.ent.grants[mark.grant_id]
                live = self.pool.grant(mark.grant_id)
                if live is None and definition.amount > 0:
                    self._insert(definition.id, definition.amount)
                elif live is not None and definition.amount > 0:
                    live.remaining = definition.amount
                elif live is not None:
                    self.pool.grants.remove(live)
            case VoidMark():
                self.pool.grants = [g for g in self.pool.grants if g.id != mark.grant_id]
            case ResetMark():
                self.pool.grants = []
                for grant_id, remaining in mark.balances:
                    self.pool.grants.append(self._grant(grant_id, remaining))
                self.usage, self.consumed, self.overage = ZERO, mark.consumed, mark.overage
                self.period_start = mark.period_start

    def balance(self, at: datetime) -> Decimal:
        """The grants' remaining credits at `at`: expired ones no longer count (CRD-42)."""
        return sum(
            (g.remaining for g in self.pool.grants if g.expires_at is None or g.expires_at > at),
            ZERO,
        )

    def balances(self, at: datetime, *, closing: bool = False) -> dict[uuid.UUID, Decimal]:
        """Each live grant's remaining credits at `at`; `closing` keeps a grant expiring at
        exactly `at` (the balance a segment ending at its expiry closes with)."""
        return {
            g.id: g.remaining
            for g in self.pool.grants
            if g.expires_at is None or g.expires_at > at or (closing and g.expires_at == at)
        }

    def value(self, at: datetime) -> EntitlementValue:
        balance = self.balance(at)
        return EntitlementValue(
            has_access=self.ent.definition.is_soft_limit or balance > 0,
            balance=balance,
            usage=self.usage,
            overage=self.overage,
            total_available_grant_amount=balance + self.consumed,
        )

    def _take(self, grant: CreditGrant, amount: Decimal) -> None:
        grant.remaining -= amount
        self.usage_by_grant[grant.id] = self.usage_by_grant.get(grant.id, ZERO) + amount
        if grant.remaining <= 0:
            self.pool.grants.remove(grant)

    def _grant(self, grant_id: uuid.UUID, remaining: Decimal) -> CreditGrant:
        definition = self.ent.grants[grant_id]
        return CreditGrant(
            id=grant_id,
            amount=remaining,
            remaining=remaining,
            source=GrantSource.MANUAL,
            granted_at=definition.activated_at or definition.effective_at,
            expires_at=definition.expires_at,
            priority=definition.priority,
        )

    def _insert(self, grant_id: uuid.UUID, amount: Decimal) -> None:
        bisect.insort(self.pool.grants, self._grant(grant_id, amount), key=burn_order_key)
