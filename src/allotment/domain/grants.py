"""Builders for credit facts. Each returns facts that `evolve` applies in order; `balances`
threads the pool balance through facts decided in the same turn, so every transaction's
`balanceBefore`/`balanceAfter` is exact."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from allotment.domain.catalog import CreditModel, RolloverPolicy
from allotment.domain.context import TurnContext
from allotment.domain.credits import CreditPool, CreditTransaction, GrantSource, TransactionType
from allotment.domain.facts import CreditPoolOpened, CreditsDebited, CreditsGranted, Fact
from allotment.domain.money import ZERO
from allotment.domain.state import CustomerState

__all__ = ("PoolDefaults", "debit_facts", "grant_facts", "pool_id_for")


def pool_id_for(state: CustomerState, denomination: str) -> uuid.UUID:
    """Pools have stable ids per (customer, denomination): at most one live pool each (CRD-1)."""
    return uuid.uuid5(state.id, f"pool:{denomination}")


class PoolDefaults:
    """How a pool is opened on its first grant (CRD-1)."""

    __slots__ = ("currency", "hard_limit", "rollover_cap", "rollover_policy")

    def __init__(
        self,
        currency: str,
        hard_limit: bool | None,
        rollover_policy: RolloverPolicy = RolloverPolicy.NONE,
        rollover_cap: Decimal | None = None,
    ) -> None:
        self.currency = currency
        self.hard_limit = hard_limit
        self.rollover_policy = rollover_policy
        self.rollover_cap = rollover_cap

    @classmethod
    def from_model(cls, model: CreditModel, currency: str, hard_limit: bool | None) -> PoolDefaults:
        return cls(
            currency,
            model.hard_limit if hard_limit is None else hard_limit,
            model.rollover_policy,
            model.rollover_cap,
        )


def grant_facts(
    state: CustomerState,
    ctx: TurnContext,
    denomination: str,
    amount: Decimal,
    source: GrantSource,
    defaults: PoolDefaults,
    balances: dict[str, Decimal],
    *,
    expires_at: datetime | None = None,
    subscription_id: uuid.UUID | None = None,
    period_key: str | None = None,
    top_up_key: str | None = None,
) -> list[Fact]:
    """Open the pool if needed, then grant `amount` into it (CRD-10)."""
    facts: list[Fact] = []
    pool = state.pools.get(denomination)
    pool_id = pool.id if pool is not None else pool_id_for(state, denomination)
    if pool is None and denomination not in balances:
        facts.append(_pool_opened(ctx, pool_id, denomination, defaults))
    before = _balance(pool, denomination, balances)
    balances[denomination] = before + amount
    grant_id = ctx.new_id()
    description = f"{source.value.title()} grant"
    transaction = CreditTransaction(
        id=ctx.new_id(),
        pool_id=pool_id,
        type=TransactionType.GRANT,
        amount=amount,
        balance_before=before,
        balance_after=before + amount,
        created_at=ctx.now,
        description=description,
        grant_id=grant_id,
        subscription_id=subscription_id,
    )
    facts.append(
        CreditsGranted(
            at=ctx.now,
            denomination=denomination,
            grant_id=grant_id,
            amount=amount,
            source=source,
            expires_at=expires_at,
            subscription_id=subscription_id,
            period_key=period_key,
            transaction=transaction,
            top_up_key=top_up_key,
        )
    )
    return facts


def _pool_opened(
    ctx: TurnContext, pool_id: uuid.UUID, denomination: str, defaults: PoolDefaults
) -> CreditPoolOpened:
    """A new pool, named after its denomination (CRD-1)."""
    return CreditPoolOpened(
        at=ctx.now,
        pool_id=pool_id,
        denomination=denomination,
        name=denomination,
        currency=defaults.currency,
        hard_limit=defaults.hard_limit,
        rollover_policy=defaults.rollover_policy,
        rollover_cap=defaults.rollover_cap,
    )


def debit_facts(
    pool: CreditPool,
    draws: list[tuple[uuid.UUID, Decimal]],
    ctx: TurnContext,
    event_key: str,
    subscription_id: uuid.UUID | None,
) -> list[Fact]:
    """One DEBIT transaction per grant drawn from, in burn order (CRD-20, CRD-31)."""
    facts: list[Fact] = []
    balance = pool.balance
    for grant_id, amount in draws:
        transaction = CreditTransaction(
            id=ctx.new_id(),
            pool_id=pool.id,
            type=TransactionType.DEBIT,
            amount=-amount,
            balance_before=balance,
            balance_after=balance - amount,
            created_at=ctx.now,
            description=f"Usage event {event_key}",
            grant_id=grant_id,
            event_key=event_key,
            subscription_id=subscription_id,
        )
        balance -= amount
        facts.append(
            CreditsDebited(
                at=ctx.now,
                denomination=pool.denomination,
                grant_id=grant_id,
                transaction=transaction,
            )
        )
    return facts


def _balance(pool: CreditPool | None, denomination: str, balances: dict[str, Decimal]) -> Decimal:
    if denomination in balances:
        return balances[denomination]
    return pool.balance if pool is not None else ZERO
