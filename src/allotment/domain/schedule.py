"""Time-driven transitions (SCH-1..SCH-3): what is due, in which order, and when next.

Transitions run one at a time, earliest first; at equal instants in the SCH-3 order: a period
end (finalisation, scheduled change, cancellation, rollover, renewal), then grant expiry, then
grace expiry, then hold expiry (RSV-23). Each is idempotent by construction: it changes the
very state that made it due, so it is never due twice (SCH-2).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from allotment.domain.context import TurnContext
from allotment.domain.credit_lifecycle import expiry_facts
from allotment.domain.facts import InvoiceStatusChanged
from allotment.domain.om_decide import due_transitions
from allotment.domain.period_end import Apply, end_period
from allotment.domain.reservation_expiry import earliest_hold_expiry, expiry_fact
from allotment.domain.state import (
    AccessState,
    CancelMode,
    CustomerState,
    Invoice,
    InvoiceStatus,
    Subscription,
)

__all__ = ("apply_due", "next_due", "next_due_after_hold")

_GRACE_APPLIES = (InvoiceStatus.DUE, InvoiceStatus.ADJUSTMENT_OPEN)
_ROUNDS_MAX = 100_000  # a bound on catch-up in one turn (about 8,000 years of monthly renewals)

Transition = Callable[[CustomerState, TurnContext, Apply], None]


def _grace_deadline(state: CustomerState, invoice: Invoice) -> datetime | None:
    """INV-12: an unpaid DUE/ADJUSTMENT_OPEN invoice goes PAST_DUE at dueDate + grace."""
    if invoice.status not in _GRACE_APPLIES:
        return None
    sub = state.subscriptions[invoice.subscription_id]
    return invoice.due_date + timedelta(days=sub.grace_period_days)


def _period_end_due(sub: Subscription) -> bool:
    """SUB-34/SUB-35: suspended and unpaid subscriptions neither renew nor advance; a scheduled
    END_OF_PERIOD cancellation still takes effect (SUB-44)."""
    return sub.live and (
        sub.cancel_mode is CancelMode.END_OF_PERIOD or sub.access is AccessState.ACTIVE
    )


def _candidates(state: CustomerState) -> list[tuple[datetime, int, Transition]]:
    found: list[tuple[datetime, int, Transition]] = []
    for sub in state.subscriptions.values():
        if _period_end_due(sub):
            found.append((sub.current_period_end, 0, _period_end(sub.id)))
    expiries = [
        grant.expires_at
        for pool in state.pools.values()
        for grant in pool.grants
        if grant.expires_at is not None
    ]
    if expiries:
        found.append((min(expiries), 1, _expire_until(min(expiries))))
    for invoice in state.invoices.values():
        deadline = _grace_deadline(state, invoice)
        if deadline is not None:
            found.append((deadline, 2, _past_due(invoice.id, deadline)))
    held = earliest_hold_expiry(state)  # RSV-23
    if held is not None:
        found.append((held[1], 3, _expire_hold(held[0])))
    if state.entitlements:  # OM-88, OM-94: grant activations and automatic resets
        found += due_transitions(state)
    return found


def next_due(state: CustomerState) -> datetime | None:
    """The earliest instant at which some transition of this customer becomes due: the
    earliest of `_candidates`, read without building their transitions (every turn that
    changes the schedule asks this; only a catch-up needs the transitions)."""
    instants = [
        sub.current_period_end for sub in state.subscriptions.values() if _period_end_due(sub)
    ]
    for pool in state.pools.values():
        for grant in pool.grants:
            if grant.expires_at is not None:
                instants.append(grant.expires_at)
    for invoice in state.invoices.values():
        deadline = _grace_deadline(state, invoice)
        if deadline is not None:
            instants.append(deadline)
    if state.hold_expiries:  # RSV-23
        instants.append(min(state.hold_expiries.values()))
    if state.entitlements:  # OM-88, OM-94: grant activations and automatic resets
        instants += [instant for instant, _, _ in due_transitions(state)]
    return min(instants, default=None)


def next_due_after_hold(
    state: CustomerState, before: datetime | None, after: datetime | None
) -> datetime | None:
    """`next_due(state)` once one reservation's expiry has moved from `before` to `after` (None:
    not held), nothing else the schedule reads having changed, given that `state.next_due_at`
    was exact before. A reserve or a settlement does this on every turn, and `next_due` walks
    every subscription, invoice, grant and hold: it is walked again only when the hold that
    moved could have been the earliest (RSV-23)."""
    current = state.next_due_at
    if before is not None and (current is None or before <= current):
        return next_due(state)
    if after is None or (current is not None and current <= after):
        return current
    return after


def apply_due(state: CustomerState, ctx: TurnContext, apply: Apply) -> None:
    """Apply every transition due at or before `ctx.now`, earliest first. Facts are stamped
    with the instant they were due, so history reads as if the sweep had run exactly on time."""
    for _ in range(_ROUNDS_MAX):
        due = [c for c in _candidates(state) if c[0] <= ctx.now]
        if not due:
            state.next_due_at = next_due(state)
            return
        _, _, transition = min(due, key=lambda c: (c[0], c[1]))
        transition(state, ctx, apply)
    raise AssertionError("catch-up did not converge")


def _period_end(subscription_id: uuid.UUID) -> Transition:
    def run(state: CustomerState, ctx: TurnContext, apply: Apply) -> None:
        end_period(state, state.subscriptions[subscription_id], ctx, apply)

    return run


def _expire_until(instant: datetime) -> Transition:
    def run(state: CustomerState, ctx: TurnContext, apply: Apply) -> None:
        for fact in expiry_facts(state, ctx, instant):
            apply(fact)

    return run


def _expire_hold(reservation_id: str) -> Transition:
    def run(state: CustomerState, ctx: TurnContext, apply: Apply) -> None:
        del ctx
        apply(expiry_fact(state, reservation_id))

    return run


def _past_due(invoice_id: uuid.UUID, deadline: datetime) -> Transition:
    def run(state: CustomerState, ctx: TurnContext, apply: Apply) -> None:
        del state, ctx
        apply(
            InvoiceStatusChanged(at=deadline, invoice_id=invoice_id, status=InvoiceStatus.PAST_DUE)
        )

    return run
