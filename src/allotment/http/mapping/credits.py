"""Credit pools on the wire, with their grants and ledger when asked for (CRD-51)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from allotment.domain.catalog import Catalog
from allotment.domain.credits import CreditGrant, CreditPool, CreditTransaction
from allotment.domain.state import CustomerState
from allotment.http.schemas import CreditGrantDto, CreditPoolDto, CreditTransactionDto

__all__ = ("pool_dto", "pools_projector", "visible_pools")


def pool_dto(
    pool: CreditPool,
    *,
    grants: bool = False,
    transactions: bool = False,
    reserved: Decimal = Decimal(0),
) -> CreditPoolDto:
    """A pool on the wire; `reserved` is what open reservations hold of it (RSV-9)."""
    return CreditPoolDto(
        id=pool.id,
        name=pool.name,
        denomination=pool.denomination,
        currency=pool.currency,
        balance=pool.balance,
        reserved=reserved or None,  # RSV-9, RSV-29: only when something is held
        available=pool.balance - reserved if reserved else None,
        totalGranted=pool.total_granted,
        totalConsumed=pool.total_consumed,
        totalExpired=pool.total_expired,
        totalReversed=pool.total_reversed,
        hardLimit=pool.hard_limit,
        status=pool.status.value,
        rolloverPolicy=pool.rollover_policy.value,
        rolloverCap=pool.rollover_cap,
        customerId=pool.customer_id,
        metadata=pool.metadata or None,
        createdAt=pool.created_at,
        modifiedAt=pool.modified_at,
        grants=[_grant_dto(g) for g in pool.grants] if grants else None,
        transactions=[_transaction_dto(t) for t in pool.recent_transactions]
        if transactions
        else None,
    )


def _grant_dto(grant: CreditGrant) -> CreditGrantDto:
    return CreditGrantDto(
        id=grant.id,
        amount=grant.amount,
        remaining=grant.remaining,
        source=grant.source.value,
        subscriptionId=grant.subscription_id,
        grantedAt=grant.granted_at,
        expiresAt=grant.expires_at,
    )


def _transaction_dto(transaction: CreditTransaction) -> CreditTransactionDto:
    return CreditTransactionDto(
        id=transaction.id,
        poolId=transaction.pool_id,
        type=transaction.type.value,
        amount=transaction.amount,
        balanceBefore=transaction.balance_before,
        balanceAfter=transaction.balance_after,
        createdAt=transaction.created_at,
        description=transaction.description,
        grantId=transaction.grant_id,
        eventIdempotencyKey=transaction.event_key,
        subscriptionId=transaction.subscription_id,
    )


def visible_pools(state: CustomerState) -> list[CreditPool]:
    """The pools a customer sees: all but the archived ones (CUS-13)."""
    return [p for p in state.pools.values() if p.status != "ARCHIVED"]


def pools_projector(
    *, grants: bool, transactions: bool
) -> Callable[[CustomerState, Catalog, datetime], list[CreditPoolDto]]:
    """CRD-51, with the grants (burn-down order) and ledger extensions when asked for."""

    def project(state: CustomerState, catalog: Catalog, now: datetime) -> list[CreditPoolDto]:
        del catalog, now
        held = state.held_credits
        return [
            pool_dto(
                p,
                grants=grants,
                transactions=transactions,
                reserved=held.get(p.denomination, Decimal(0)),
            )
            for p in visible_pools(state)
        ]

    return project
