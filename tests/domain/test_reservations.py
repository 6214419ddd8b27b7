"""Reservations in the domain (docs/reservations.md, RSV-*)."""

from __future__ import annotations

from datetime import timedelta

import msgspec

from allotment.domain import invariants
from allotment.domain.commands import (
    CommitReservation,
    CommitUnits,
    EvaluateEntitlement,
    ExtendReservation,
    HoldItem,
    RecordUsage,
)
from allotment.domain.decisions import DenialReason
from allotment.domain.holds import evaluate_items
from allotment.domain.replies import (
    Committed,
    Decision,
    Rejected,
    RejectionKind,
    ReservationShown,
    Reserved,
    ReserveDenied,
    UsageAccepted,
)
from allotment.domain.reservation_state import SETTLED_KEPT, HoldStatus, Overage
from tests.domain.harness import D, encoded, replay
from tests.domain.reservation_world import commit, release, reservation_world, reserve


def _check(world_state_reply: object) -> Decision:
    assert isinstance(world_state_reply, Decision)
    return world_state_reply


def test_rsv_4_rsv_7_twenty_reserves_of_75_against_500_grant_exactly_6() -> None:
    """RSV-4, RSV-7: Stigg's guarantee in the domain: each hold sees the ones before it."""
    world = reservation_world(D(500))
    granted = [reserve(world, f"r{i}", ("chat", D(75))) for i in range(20)]
    assert sum(isinstance(r, Reserved) for r in granted) == 6
    assert all(isinstance(r, ReserveDenied) for r in granted[6:])
    decision = _check(world.run(EvaluateEntitlement(feature_key="chat")))
    assert decision.credit is not None
    assert decision.credit.reserved == D(450) and decision.credit.available == D(50)
    assert decision.credit.balance == D(500)  # RSV-11: nothing consumed yet
    invariants.check(world.state)


def test_rsv_8_usage_block_reserved_and_remaining() -> None:
    """RSV-8: `remaining` excludes held units; `used` does not count them (RSV-11)."""
    world = reservation_world()
    assert isinstance(reserve(world, "r1", ("api", D(30))), Reserved)
    decision = _check(world.run(EvaluateEntitlement(feature_key="api")))
    assert decision.usage is not None
    assert (decision.usage.used, decision.usage.reserved, decision.usage.remaining) == (
        D(0), D(30), D(70),
    )  # fmt: skip
    denied = reserve(world, "r2", ("api", D(71)))
    assert isinstance(denied, ReserveDenied)
    assert denied.items[0].decision.reason is DenialReason.WOULD_EXCEED


def test_rsv_4_evaluate_items_is_cumulative_and_holds_nothing() -> None:
    """RSV-4: the same feature twice, and two features on one pool, add up; pure."""
    world = reservation_world(D(500))
    before = encoded(world.state)
    items = [
        HoldItem(feature_key="chat", units=D(300)),
        HoldItem(feature_key="image", units=D(15)),  # 150 credits of the same pool
        HoldItem(feature_key="chat", units=D(60)),  # 510 > 500
    ]
    decided = evaluate_items(world.state, world.catalog, items)
    assert [d.decision.allowed for d in decided] == [True, True, False]
    assert decided[1].credits == D(150) and decided[1].denomination == "TOKENS"
    assert decided[2].decision.credit is not None
    assert decided[2].decision.credit.reserved == D(450)
    assert encoded(world.state) == before


def test_rsv_5_all_or_none() -> None:
    world = reservation_world(D(100))
    before = encoded(world.state)
    reply = reserve(world, "r1", ("chat", D(50)), ("image", D(6)))
    assert isinstance(reply, ReserveDenied)
    assert encoded(world.state) == before


def test_rsv_12_commit_records_usage_and_releases_the_hold() -> None:
    world = reservation_world(D(500))
    reserve(world, "r1", ("chat", D(100)))
    reply = commit(world, "r1", D(80))
    assert isinstance(reply, Committed)
    assert reply.reservation.status is HoldStatus.COMMITTED
    pool = world.state.pools["TOKENS"]
    assert pool.balance == D(420) and world.state.held_credits == {}
    again = commit(world, "r1", D(999))  # RSV-15
    assert isinstance(again, Committed)
    assert again.settlements["chat"].recorded_units == D(80)
    assert world.state.pools["TOKENS"].balance == D(420)
    invariants.check(world.state)


def test_rsv_14_overage_policies() -> None:
    """RSV-14: allow records all, cap records the held units, reject changes nothing."""
    for overage, recorded in ((Overage.ALLOW, D(130)), (Overage.CAP, D(100))):
        world = reservation_world(D(500))
        reserve(world, "r", ("chat", D(100)), overage=overage)
        reply = commit(world, "r", D(130))
        assert isinstance(reply, Committed)
        assert reply.settlements["chat"].recorded_units == recorded
        assert reply.settlements["chat"].cut_units == D(130) - recorded
        assert world.state.pools["TOKENS"].balance == D(500) - recorded
    world = reservation_world(D(500))
    reserve(world, "r", ("chat", D(100)), overage=Overage.REJECT)
    before = encoded(world.state)
    rejected = commit(world, "r", D(130))
    assert isinstance(rejected, Rejected) and rejected.kind is RejectionKind.CONFLICT
    assert rejected.field == "usage_units"
    assert encoded(world.state) == before


def test_rsv_10_other_events_cannot_spend_held_credits() -> None:
    """RSV-10: a plain event draws only the unreserved balance of a hard-limited pool."""
    world = reservation_world(D(100))
    reserve(world, "r", ("chat", D(80)))
    reply = world.run(RecordUsage(idempotency_key="e1", event_name="chat", feature_key="chat",
                                  occurred_at=world.now, units=D(50)))  # fmt: skip
    assert isinstance(reply, UsageAccepted) and reply.over_limit
    pool = world.state.pools["TOKENS"]
    assert pool.balance == D(80)  # 20 drawn, 30 uncovered
    assert isinstance(commit(world, "r", D(80)), Committed)
    assert world.state.pools["TOKENS"].balance == 0
    invariants.check(world.state)


def test_rsv_19_release_is_idempotent_and_rsv_17_commit_after_release_conflicts() -> None:
    world = reservation_world()
    reserve(world, "r", ("chat", D(10)))
    assert isinstance(release(world, "r"), ReservationShown)
    before = encoded(world.state)
    assert isinstance(release(world, "r"), ReservationShown)
    rejected = commit(world, "r", D(5))
    assert isinstance(rejected, Rejected) and rejected.kind is RejectionKind.CONFLICT
    assert encoded(world.state) == before


def test_rsv_23_expiry_and_rsv_16_late_commit_records_usage_once() -> None:
    world = reservation_world(D(500))
    reserve(world, "r", ("chat", D(100)), ttl=60)
    assert world.state.next_due_at == world.now + timedelta(seconds=60)
    world.advance(61)
    decision = _check(world.run(EvaluateEntitlement(feature_key="chat")))
    assert decision.credit is not None and decision.credit.reserved == 0
    assert world.state.reservations["r"].status is HoldStatus.EXPIRED
    reply = commit(world, "r", D(40))
    assert isinstance(reply, Committed) and reply.hold_expired
    assert world.state.reservations["r"].items[0].status is HoldStatus.EXPIRED
    assert world.state.pools["TOKENS"].balance == D(460)
    invariants.check(world.state)


def test_rsv_20_extend_is_capped_at_24_hours() -> None:
    world = reservation_world()
    reserve(world, "r", ("chat", D(1)), ttl=86_000)
    world.advance(3600)
    reply = world.run(ExtendReservation(reservation_id="r", ttl_seconds=86_400))
    assert isinstance(reply, ReservationShown)
    assert reply.reservation.expires_at == reply.reservation.created_at + timedelta(seconds=86_400)


def test_rsv_3_bad_input_changes_nothing() -> None:
    world = reservation_world()
    before = encoded(world.state)
    cases = [
        (reserve(world, "a", ("chat", D(0))), "units"),
        (reserve(world, "b", ("chat", D(-1))), "units"),
        (reserve(world, "c", ("nope", D(1))), "feature_key"),
        (reserve(world, "d", ("sso", D(1))), "feature_key"),
        (reserve(world, "e", ("chat", D(1)), ttl=0), "ttl_seconds"),
        (reserve(world, "f", ("chat", D(1)), ttl=86_401), "ttl_seconds"),
    ]
    for reply, field in cases:
        assert isinstance(reply, Rejected) and reply.kind is RejectionKind.INVALID
        assert reply.field == field, reply.message
    assert encoded(world.state) == before


def test_rsv_1_same_id_same_body_answers_again_other_body_conflicts() -> None:
    world = reservation_world()
    first = reserve(world, "r", ("chat", D(10)))
    again = reserve(world, "r", ("chat", D(10)))
    assert isinstance(first, Reserved) and isinstance(again, Reserved) and again.repeated
    assert again.reservation == first.reservation
    other = reserve(world, "r", ("chat", D(11)))
    assert isinstance(other, Rejected) and other.kind is RejectionKind.CONFLICT


def test_rsv_27_settled_reservations_are_bounded_and_replay_forgets_the_same() -> None:
    world = reservation_world(D(0))
    for i in range(SETTLED_KEPT + 5):
        reserve(world, f"r{i}", ("api", D(1)))
        release(world, f"r{i}")
    assert len(world.state.reservations) == SETTLED_KEPT
    assert (
        "r0" not in world.state.reservations and f"r{SETTLED_KEPT + 4}" in world.state.reservations
    )
    invariants.check(world.state)
    assert encoded(replay(world.facts)) == encoded(world.state)


def test_rsv_25_snapshot_of_an_older_state_decodes_with_no_holds() -> None:
    """New state fields have defaults: a snapshot written before reservations decodes."""
    world = reservation_world()
    raw = msgspec.msgpack.decode(msgspec.msgpack.encode(world.state))  # as a snapshot holds it
    for name in ("reservations", "held_units", "held_credits", "hold_expiries", "settled_order"):
        raw.pop(name)
    state = msgspec.msgpack.decode(msgspec.msgpack.encode(raw), type=type(world.state))
    assert state.reservations == {} and state.held_units == {}


def test_rsv_18_rsv_27_a_group_committed_at_once_settles_and_stays_bounded() -> None:
    """RSV-18: two items committed in one command see each other's draws on one pool; the
    settlement that completes the group forgets the oldest settled one past the bound."""
    world = reservation_world(D(1000))
    for i in range(SETTLED_KEPT):
        reserve(world, f"old{i}", ("api", D(1)))
        release(world, f"old{i}")
    reserve(world, "g", ("chat", D(100)), ("image", D(10)))
    command = CommitReservation(
        reservation_id="g",
        items=(CommitUnits(feature_key="chat", usage_units=D(100)),
               CommitUnits(feature_key="image", usage_units=D(10))),
        occurred_at=world.now,
    )  # fmt: skip
    reply = world.run(command)
    assert isinstance(reply, Committed) and reply.reservation.status is HoldStatus.COMMITTED
    assert world.state.pools["TOKENS"].balance == D(800)
    assert "old0" not in world.state.reservations
    invariants.check(world.state)
    assert encoded(replay(world.facts)) == encoded(world.state)
