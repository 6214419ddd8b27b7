"""reservation.expired (docs/webhooks.md, "Event types", WHK-E40): a hold that lapses raises
one notice, in the turn that expires it, naming the items it freed; replay raises none again."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

from allotment.domain import invariants
from allotment.domain.commands import Tick
from allotment.domain.facts import NotificationRaised
from allotment.domain.notification_types import (
    ExpiredHold,
    Notification,
    ReservationHoldExpired,
    UsageThresholdCrossed,
)
from allotment.domain.reservation_state import HoldStatus
from allotment.runtime.actor import CustomerActor
from tests.domain.harness import World, encoded, replay
from tests.domain.reservation_world import commit, release, reservation_world, reserve
from tests.domain.test_notifications import turn, use


def expired(notices: list[Notification]) -> list[ReservationHoldExpired]:
    return [n for n in notices if isinstance(n, ReservationHoldExpired)]


def lapse(world: World, seconds: int = 61) -> list[Notification]:
    world.advance(seconds)
    return turn(world, Tick())


def test_whk_e40_rsv_23_an_expiring_hold_notifies_once_with_what_it_freed() -> None:
    """WHK-E40, RSV-23: the sweep's expiry raises the notice in its own turn, at the instant
    the hold was due, with each item's units and held credits; later turns raise nothing."""
    world = reservation_world()
    reserve(world, "r1", ("chat", Decimal(40)), ("api", Decimal(5)), ttl=60)
    created = world.state.reservations["r1"].created_at
    [notice] = expired(lapse(world))
    assert notice == ReservationHoldExpired(
        reservation_id="r1",
        created_at=created,
        expired_at=created + timedelta(seconds=60),
        event_name=None,
        items=(
            ExpiredHold(feature_key="chat", units=Decimal(40), credits=Decimal(40),
                        denomination="TOKENS"),
            ExpiredHold(feature_key="api", units=Decimal(5)),
        ),
    )  # fmt: skip
    assert world.state.reservations["r1"].items[0].status is HoldStatus.EXPIRED
    assert expired(lapse(world, 3600)) == []
    invariants.check(world.state)


def test_whk_e40_only_the_items_still_held_are_named() -> None:
    """WHK-E40, RSV-24: an item committed before the hold lapsed is not in the notice."""
    world = reservation_world()
    reserve(world, "r1", ("chat", Decimal(10)), ("api", Decimal(5)), ttl=60)
    commit(world, "r1", Decimal(3), feature_key="api")
    [notice] = expired(lapse(world))
    assert [item.feature_key for item in notice.items] == ["chat"]


def test_whk_e40_a_settled_reservation_raises_nothing() -> None:
    """WHK-E40: a committed reservation never expires, so it never notifies."""
    world = reservation_world()
    reserve(world, "r1", ("chat", Decimal(10)), ttl=60)
    commit(world, "r1", Decimal(10))
    assert expired(lapse(world)) == []


def test_whk_e40_the_next_turn_expires_it_when_no_sweep_ran() -> None:
    """WHK-E40, WHK-E36: a customer's next turn after the due instant catches the expiry up
    and raises the notice in that turn, before the turn's own facts."""
    world = reservation_world()
    reserve(world, "r1", ("chat", Decimal(10)), ttl=60)
    world.advance(120)
    [notice] = expired(use(world, 1, key="after"))
    assert notice.expired_at == world.state.reservations["r1"].expires_at


def test_whk_e37_e40_replay_applies_the_expiry_notice_and_raises_none_again() -> None:
    """WHK-E37: replay gives the same state; a replayed actor does not raise it again."""
    world = reservation_world()
    reserve(world, "r1", ("chat", Decimal(10)), ttl=60)
    lapse(world)
    replayed = replay(world.facts)
    assert encoded(replayed) == encoded(world.state)
    world.actor = CustomerActor(replayed)
    assert expired(lapse(world, 3600)) == []


def _thresholds(notices: list[Notification]) -> list[tuple[int, Decimal]]:
    return [(n.percent, n.used) for n in notices if isinstance(n, UsageThresholdCrossed)]


def test_whk_e1_rsv_11_thresholds_follow_used_not_what_others_hold() -> None:
    """WHK-E1 with RSV-11: held units are never `used`. A committed event that would cross
    80% only with another reservation's hold raises nothing; once the hold is gone, the event
    that brings `used` itself to 80% raises it, with that `used`."""
    world = reservation_world()
    reserve(world, "r1", ("api", Decimal(75)))
    assert _thresholds(use(world, 10)) == []  # used 10; 85 only with r1's hold
    release(world, "r1")
    assert _thresholds(use(world, 75)) == [(80, Decimal(85))]


def test_whk_e1_a_commit_crosses_with_its_own_units_and_a_hold_alone_never_does() -> None:
    world = reservation_world()
    assert _thresholds(turn_of(reserve, world, "r1", ("api", Decimal(90)))) == []
    notices = turn_of(commit, world, "r1", Decimal(90))
    assert _thresholds(notices) == [(80, Decimal(90))]


def turn_of(run: Callable[..., object], world: World, *args: object) -> list[Notification]:
    """The notifications raised by one helper's turn."""
    start = len(world.facts)
    run(world, *args)
    return [f.payload for f in world.facts[start:] if isinstance(f, NotificationRaised)]
