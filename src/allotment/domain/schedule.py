"""Time-driven transitions (SCH-1..SCH-3): what is due by `now`, and when the next thing is.

`due_facts` is idempotent by construction: a transition that already happened changed the very
state it is computed from, so running it twice yields nothing the second time (SCH-2).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from allotment.domain.context import TurnContext
from allotment.domain.credits import CreditTransaction, TransactionType
from allotment.domain.facts import CreditsExpired, Fact, InvoiceStatusChanged
from allotment.domain.state import CustomerState, Invoice, InvoiceStatus

__all__ = ("due_facts", "next_due")

_GRACE_APPLIES = (InvoiceStatus.DUE, InvoiceStatus.ADJUSTMENT_OPEN)


def _grace_deadline(state: CustomerState, invoice: Invoice) -> datetime | None:
    """INV-12: an unpaid DUE/ADJUSTMENT_OPEN invoice goes PAST_DUE at dueDate + grace."""
    if invoice.status not in _GRACE_APPLIES:
        return None
    sub = state.subscriptions[invoice.subscription_id]
    return invoice.due_date + timedelta(days=sub.grace_period_days)


def next_due(state: CustomerState) -> datetime | None:
    """The earliest instant at which some transition of this customer becomes due."""
    instants = [
        deadline
        for invoice in state.invoices.values()
        if (deadline := _grace_deadline(state, invoice)) is not None
    ]
    instants += [
        grant.expires_at
        for pool in state.pools.values()
        for grant in pool.grants
        if grant.expires_at is not None and grant.remaining > 0
    ]
    return min(instants, default=None)


def due_facts(state: CustomerState, ctx: TurnContext) -> list[Fact]:
    """Every transition due at or before `ctx.now`, each with the instant it was due, in time
    order. Facts are stamped with their due instant, not with `now`, so history reads as if the
    sweep had run exactly on time."""
    due: list[Fact] = []
    for invoice in state.invoices.values():
        deadline = _grace_deadline(state, invoice)
        if deadline is not None and deadline <= ctx.now:
            due.append(
                InvoiceStatusChanged(
                    at=deadline, invoice_id=invoice.id, status=InvoiceStatus.PAST_DUE
                )
            )
    for pool in state.pools.values():
        balance = pool.balance
        for grant in sorted(pool.grants, key=lambda g: (g.expires_at is None, g.expires_at)):
            if grant.expires_at is None or grant.expires_at > ctx.now or grant.remaining <= 0:
                continue
            transaction = CreditTransaction(
                id=ctx.new_id(),
                pool_id=pool.id,
                type=TransactionType.EXPIRATION,
                amount=-grant.remaining,
                balance_before=balance,
                balance_after=balance - grant.remaining,
                created_at=grant.expires_at,
                description="Grant expired",
                grant_id=grant.id,
                subscription_id=grant.subscription_id,
            )
            balance -= grant.remaining
            due.append(
                CreditsExpired(
                    at=grant.expires_at,
                    denomination=pool.denomination,
                    grant_id=grant.id,
                    transaction=transaction,
                )
            )
    due.sort(key=lambda fact: fact.at)  # stable: keeps each pool's expiry order
    return due
