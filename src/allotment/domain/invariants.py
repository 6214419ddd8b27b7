"""Invariants of a customer state, checked after every step by property tests.

`check(state)` raises AssertionError naming the first broken invariant.
"""

from __future__ import annotations

from decimal import Decimal

from allotment.domain.credit_note_invariants import check_credit_notes
from allotment.domain.credits import CreditPool, PoolStatus
from allotment.domain.money import ZERO
from allotment.domain.reservation_state import SETTLED_KEPT, HoldStatus
from allotment.domain.schedule import next_due
from allotment.domain.state import CustomerState
from allotment.domain.subscriptions import derive_access

__all__ = ("check", "check_holds", "check_pool")


def check_pool(pool: CreditPool) -> None:
    """CRD-2, CRD-3, CRD-4: conservation, no negative balance, live grants add up."""
    conserved = pool.total_granted - pool.total_consumed - pool.total_expired - pool.total_reversed
    assert pool.balance == conserved, f"pool {pool.denomination}: {pool.balance} != {conserved}"
    assert pool.balance >= 0, f"pool {pool.denomination} is negative"
    live = sum((g.remaining for g in pool.grants), ZERO)
    assert pool.balance == live, (
        f"pool {pool.denomination}: balance {pool.balance} != grants {live}"
    )
    assert all(g.remaining > 0 for g in pool.grants), "a spent grant is still live"
    if pool.status is PoolStatus.DEPLETED:
        assert pool.balance == 0, "DEPLETED pool with a balance"


def check(state: CustomerState) -> None:
    """Every invariant of one customer."""
    for pool in state.pools.values():
        check_pool(pool)
    for sub in state.subscriptions.values():
        assert sub.access is derive_access(sub, state.invoices.values()), (
            f"stale access on {sub.id}"
        )
        assert sub.current_period_start < sub.current_period_end, "empty period"
    for invoice in state.invoices.values():
        total = sum((item.charge_amount for item in invoice.items), ZERO)
        assert invoice.amount == total, f"invoice {invoice.id}: {invoice.amount} != items {total}"
        assert invoice.subscription_id in state.subscriptions, "invoice of an unknown subscription"
    for counters in state.usage.values():
        for counter in counters.values():
            assert all(v >= 0 for v in counter.used.values()), "negative usage"
            assert all(v >= 0 for v in counter.unbilled.values()), "negative unbilled usage"
    assert state.next_due_at == next_due(state), "stale next_due_at"
    live_plans = [s.plan_id for s in state.live_subscriptions()]
    assert len(live_plans) == len(set(live_plans)), "two live subscriptions to one plan (SUB-4)"
    check_holds(state)
    check_credit_notes(state)  # issue 18


def check_holds(state: CustomerState) -> None:
    """RSV-6, RSV-23, RSV-27: the tallies and indexes of reservations equal their derivation
    from the HELD items, and what is kept stays bounded."""
    units: dict[str, Decimal] = {}
    credits: dict[str, Decimal] = {}
    for reservation in state.reservations.values():
        for item in reservation.items:
            if item.status is not HoldStatus.HELD:
                continue
            units[item.feature_key] = units.get(item.feature_key, ZERO) + item.units
            if item.denomination is not None and item.credits is not None:
                credits[item.denomination] = credits.get(item.denomination, ZERO) + item.credits
    assert state.held_units == {k: v for k, v in units.items() if v}, "stale held_units"
    assert state.held_credits == {k: v for k, v in credits.items() if v}, "stale held_credits"
    held = {r.id: r.expires_at for r in state.reservations.values() if r.status is HoldStatus.HELD}
    assert state.hold_expiries == held, "stale hold_expiries"
    settled = [r for r in state.reservations if r not in held]
    assert sorted(settled) == sorted(state.settled_order), "stale settled_order"
    assert len(settled) <= SETTLED_KEPT, "settled reservations kept past the bound (RSV-27)"
