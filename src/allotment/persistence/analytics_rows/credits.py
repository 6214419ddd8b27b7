"""The `credit_pools` and `credit_grants` tables."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

from allotment.domain.state import CustomerState
from allotment.persistence.analytics_rows.table import Row

__all__ = ("CreditGrantRow", "CreditPoolRow", "credit_rows")


class CreditPoolRow(Row, frozen=True, gc=False):
    table = "credit_pools"
    pool_id: str
    customer_id: str
    denomination: str
    status: str
    balance: Decimal
    total_granted: Decimal
    total_consumed: Decimal
    total_expired: Decimal
    total_reversed: Decimal
    hard_limit: bool | None
    rollover_policy: str
    rollover_cap: Decimal | None
    created_at: datetime


class CreditGrantRow(Row, frozen=True, gc=False):
    table = "credit_grants"
    grant_id: str
    pool_id: str
    customer_id: str
    source: str
    amount: Decimal
    remaining: Decimal
    subscription_id: str | None
    granted_at: datetime
    expires_at: datetime | None


def credit_rows(state: CustomerState) -> Iterator[Row]:
    """Each of the customer's pools, followed by its grants in burn order."""
    cid = str(state.id)
    for pool in state.pools.values():
        yield CreditPoolRow(
            pool_id=str(pool.id),
            customer_id=cid,
            denomination=pool.denomination,
            status=pool.status.value,
            balance=pool.balance,
            total_granted=pool.total_granted,
            total_consumed=pool.total_consumed,
            total_expired=pool.total_expired,
            total_reversed=pool.total_reversed,
            hard_limit=pool.hard_limit,
            rollover_policy=pool.rollover_policy.value,
            rollover_cap=pool.rollover_cap,
            created_at=pool.created_at,
        )
        for grant in pool.grants:
            yield CreditGrantRow(
                grant_id=str(grant.id),
                pool_id=str(pool.id),
                customer_id=cid,
                source=grant.source.value,
                amount=grant.amount,
                remaining=grant.remaining,
                subscription_id=str(grant.subscription_id) if grant.subscription_id else None,
                granted_at=grant.granted_at,
                expires_at=grant.expires_at,
            )
