"""The per-period allocation ledger (MNY-A1, SUB-67, CRD-12) on the demo catalog."""

from __future__ import annotations

import msgspec

from allotment.domain.commands import ChangePlan, MarkInvoicePaid, Subscribe
from allotment.domain.replies import Done, Subscribed
from allotment.domain.state import ChangeType
from tests.domain.harness import D, World, encoded, replay

DAY = 86_400


def _subscribed(world: World, plan: str) -> Subscribed:
    reply = world.run(Subscribe(plan_id=world.plan_id(plan), grace_period_days=5))
    assert isinstance(reply, Subscribed)
    return reply


def _change(world: World, sub: Subscribed, plan: str, kind: ChangeType) -> None:
    command = ChangePlan(
        subscription_id=sub.subscription.id, to_plan_id=world.plan_id(plan), change_type=kind
    )
    assert isinstance(world.run(command), Done)


def _pay_all(world: World) -> None:
    for invoice in list(world.state.invoices.values()):
        if invoice.status.value in ("DUE", "ADJUSTMENT_OPEN"):
            assert isinstance(world.run(MarkInvoicePaid(invoice_id=invoice.id)), Done)


def _granted(world: World) -> D:
    return world.state.pools["TOKENS"].total_granted


def test_round_trips_through_every_path_grant_the_largest_allocation_once() -> None:
    """MNY-A1, MNY-A2: pro -> enterprise tops up 4,000,000; then cheaper UPGRADEs, a scheduled
    downgrade cancelled by an upgrade, and the way back grant nothing more this period."""
    world = World()
    sub = _subscribed(world, "pro_monthly")
    _pay_all(world)
    for plan, kind in (
        ("enterprise_monthly", ChangeType.UPGRADE),
        ("starter_monthly", ChangeType.UPGRADE),
        ("pro_monthly", ChangeType.UPGRADE),
        ("starter_monthly", ChangeType.DOWNGRADE),
        ("enterprise_monthly", ChangeType.UPGRADE),
    ):
        _change(world, sub, plan, kind)
        world.advance(DAY)
    assert _granted(world) == 5_000_000
    live = world.state.subscriptions[sub.subscription.id]
    assert live.allocation_granted == {"TOKENS@2025-01-15T00:00:00+00:00": D(5_000_000)}
    assert encoded(replay(world.facts)) == encoded(world.state)  # the ledger replays


def test_an_upgrade_before_the_renewal_is_paid_counts_the_grant_still_to_come() -> None:
    """MNY-A1, CRD-12: in grace, the renewal's own grant (pro, 1,000,000) is still to come on
    payment; the upgrade tops up only 4,000,000, and a round trip before payment adds nothing,
    so the period ends with enterprise's 5,000,000 granted in all."""
    world = World()
    sub = _subscribed(world, "pro_monthly")
    _pay_all(world)
    world.advance(31 * DAY)  # the renewal is DUE, in grace
    before = _granted(world)
    _change(world, sub, "enterprise_monthly", ChangeType.UPGRADE)
    _change(world, sub, "pro_monthly", ChangeType.UPGRADE)
    _change(world, sub, "enterprise_monthly", ChangeType.UPGRADE)
    assert _granted(world) - before == 4_000_000
    _pay_all(world)
    assert _granted(world) - before == 5_000_000


def test_a_state_from_before_the_ledger_counts_the_opening_plans_grant() -> None:
    """MNY-A1 (older states): a CRD-12 key without a ledger amount counts as the allocation of
    the plan the period's invoice bills, so the upgrade still grants only the difference."""
    world = World()
    sub = _subscribed(world, "pro_monthly")
    _pay_all(world)
    sub_id = sub.subscription.id
    old = world.state.subscriptions[sub_id]
    world.state.subscriptions[sub_id] = msgspec.structs.replace(old, allocation_granted={})
    before = _granted(world)
    _change(world, sub, "enterprise_monthly", ChangeType.UPGRADE)
    assert _granted(world) - before == 4_000_000
