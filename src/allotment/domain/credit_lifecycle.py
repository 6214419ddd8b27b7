"""Credits leaving grants without being used (CRD-40..CRD-44): expiry, rollover at a period end,
and clawback when a subscription ends.

Each builder returns facts without applying them; a grant's credits leave through one
transaction (`CreditsExpired` or `CreditsReversed`) with its ledger entry.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from allotment.domain.catalog import Plan, RolloverPolicy
from allotment.domain.context import TurnContext
from allotment.domain.credits import (
    CreditGrant,
    CreditPool,
    CreditTransaction,
    GrantSource,
    TransactionType,
)
from allotment.domain.facts import CreditsExpired, CreditsReversed, Fact
from allotment.domain.money import ZERO
from allotment.domain.state import CustomerState, Subscription

__all__ = ("clawback_facts", "expiry_facts", "rollover_facts")


def expiry_facts(state: CustomerState, ctx: TurnContext, until: datetime) -> list[Fact]:
    """CRD-42: every grant whose `expiresAt` <= `until` expires, stamped at its own instant."""
    facts: list[Fact] = []
    for pool in state.pools.values():
        balance = pool.balance
        for grant in sorted(pool.grants, key=lambda g: (g.expires_at is None, g.expires_at)):
            if grant.expires_at is None or grant.expires_at > until:
                break
            facts.append(
                _take(
                    ctx,
                    pool,
                    grant,
                    TransactionType.EXPIRATION,
                    grant.remaining,
                    balance,
                    grant.expires_at,
                    "Grant expired",
                )
            )
            balance -= grant.remaining
    facts.sort(key=lambda fact: fact.at)  # stable: keeps each pool's expiry order
    return facts


def rollover_facts(
    state: CustomerState, sub: Subscription, plan: Plan, ctx: TurnContext, at: datetime
) -> list[Fact]:
    """CRD-40: apply each fed pool's policy to this subscription's remaining plan credits;
    CAPPED expires the excess over the cap, oldest grants first."""
    facts: list[Fact] = []
    for allocation in plan.credit_allocations:
        model = ctx.catalog.credit_models[allocation.credit_model_key]
        pool = state.pools.get(model.denomination)
        if pool is None or pool.rollover_policy is RolloverPolicy.FULL:
            continue
        grants = sorted(
            (
                g
                for g in pool.grants
                if g.source is GrantSource.SUBSCRIPTION and g.subscription_id == sub.id
            ),
            key=lambda g: g.granted_at,
        )
        capped = pool.rollover_policy is RolloverPolicy.CAPPED
        cap = (pool.rollover_cap or ZERO) if capped else ZERO  # NONE keeps nothing (CRD-41)
        excess = sum((g.remaining for g in grants), ZERO) - cap
        balance = pool.balance
        for grant in grants:
            if excess <= 0:
                break
            amount = min(excess, grant.remaining)
            facts.append(
                _take(
                    ctx,
                    pool,
                    grant,
                    TransactionType.EXPIRATION,
                    amount,
                    balance,
                    at,
                    f"Rollover ({pool.rollover_policy.value})",
                )
            )
            balance -= amount
            excess -= amount
    return facts


def clawback_facts(
    state: CustomerState, subscription_id: uuid.UUID, ctx: TurnContext, at: datetime
) -> list[Fact]:
    """CRD-43: the subscription's plan grants with credits left are zeroed by REVERSALs."""
    facts: list[Fact] = []
    for pool in state.pools.values():
        balance = pool.balance
        for grant in pool.grants:
            if (
                grant.source is not GrantSource.SUBSCRIPTION
                or grant.subscription_id != subscription_id
            ):
                continue
            facts.append(
                _take(
                    ctx,
                    pool,
                    grant,
                    TransactionType.REVERSAL,
                    grant.remaining,
                    balance,
                    at,
                    "Plan credits clawed back",
                )
            )
            balance -= grant.remaining
    return facts


def _take(
    ctx: TurnContext,
    pool: CreditPool,
    grant: CreditGrant,
    type_: TransactionType,
    amount: Decimal,
    balance: Decimal,
    at: datetime,
    description: str,
) -> Fact:
    """Credits leaving one grant: an EXPIRATION or a REVERSAL (clawback), with its ledger entry."""
    transaction = CreditTransaction(
        id=ctx.new_id(),
        pool_id=pool.id,
        type=type_,
        amount=-amount,
        balance_before=balance,
        balance_after=balance - amount,
        created_at=at,
        description=description,
        grant_id=grant.id,
        subscription_id=grant.subscription_id,
    )
    kind = CreditsReversed if type_ is TransactionType.REVERSAL else CreditsExpired
    return kind(at=at, denomination=pool.denomination, grant_id=grant.id, transaction=transaction)
