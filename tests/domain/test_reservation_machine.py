"""No overdraft, whatever the interleaving (issue 14's stateful test; RSV-4, RSV-7, RSV-10,
RSV-11, RSV-14, RSV-16, RSV-23, RSV-24).

Reserve, commit (under, at and over the held units, with each overage policy), release,
extend, expiry by the manual clock, plain events and checks, interleaved. After every step:
a hard-limited pool's available balance is never negative; granted = consumed + held +
balance not held; usage never counts held units; no hold is both settled and expired; and
replaying the journal gives the same state.

Every command also runs in a twin world whose actor takes the general turn for everything:
the actor's shortcuts for events and reservation commands (`_lean`) must give the same
replies and apply the same facts.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from allotment.domain import invariants
from allotment.domain.catalog import Catalog
from allotment.domain.commands import (
    Command,
    EvaluateEntitlement,
    ExtendReservation,
    RecordUsage,
    Tick,
)
from allotment.domain.context import TurnContext
from allotment.domain.facts import Fact, UsageRecorded
from allotment.domain.replies import Decision, Reply
from allotment.domain.reservation_state import HoldStatus, Overage
from allotment.runtime.actor import CustomerActor
from tests.domain.harness import D, World, encoded, replay
from tests.domain.reservation_world import commit, release, reservation_world, reserve

FEATURES = ("chat", "image", "api")


class GeneralActor(CustomerActor):
    """Takes the general turn for every command but a plain check (which must not change)."""

    def turn(self, command: Command, ctx: TurnContext, applied: list[Fact]) -> Reply:
        if isinstance(command, EvaluateEntitlement) and command.requested_units is None:
            return super().turn(command, ctx, applied)
        return self.general_turn(command, ctx, applied)


class TwinWorld(World):
    """Runs every command here and in `twin`, whose actor always takes the general turn,
    and asserts that both give the same reply."""

    def __init__(self, catalog: Catalog) -> None:
        super().__init__(catalog)
        self.twin = World(catalog)
        self.twin.actor = GeneralActor(self.twin.actor.state)

    def run(self, command: Command) -> Reply:
        reply = super().run(command)
        twin = self.twin.run(command)
        assert msgspec.msgpack.encode(twin) == msgspec.msgpack.encode(reply), command
        return reply

    def advance(self, seconds: float) -> None:
        super().advance(seconds)
        self.twin.advance(seconds)


class ReservationMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        world = reservation_world(D(500), TwinWorld)
        assert isinstance(world, TwinWorld)
        self.world = world
        self.ids: list[str] = []
        self.events = 0

    def _id(self, index: int) -> str | None:
        return self.ids[index % len(self.ids)] if self.ids else None

    @rule(
        feature=st.sampled_from(FEATURES),
        units=st.integers(1, 200),
        ttl=st.integers(1, 900),
        overage=st.sampled_from(list(Overage)),
    )
    def reserve(self, feature: str, units: int, ttl: int, overage: Overage) -> None:
        reservation_id = f"r{len(self.ids)}"
        self.ids.append(reservation_id)
        reserve(self.world, reservation_id, (feature, D(units)), ttl=ttl, overage=overage)

    @rule(index=st.integers(0, 50), ratio=st.sampled_from(["0", "0.5", "1", "1.5"]))
    def commit(self, index: int, ratio: str) -> None:
        reservation_id = self._id(index)
        reservation = self.world.state.reservations.get(reservation_id or "")
        if reservation_id is None or reservation is None:
            return
        units = (reservation.items[0].units * Decimal(ratio)).quantize(D(1))
        commit(self.world, reservation_id, units)

    @rule(index=st.integers(0, 50))
    def release(self, index: int) -> None:
        reservation_id = self._id(index)
        if reservation_id is not None:
            release(self.world, reservation_id)

    @rule(index=st.integers(0, 50), ttl=st.integers(1, 900))
    def extend(self, index: int, ttl: int) -> None:
        reservation_id = self._id(index)
        if reservation_id is not None:
            self.world.run(ExtendReservation(reservation_id=reservation_id, ttl_seconds=ttl))

    @rule(seconds=st.integers(0, 700))
    def advance(self, seconds: int) -> None:
        self.world.advance(seconds)
        self.world.run(Tick())

    @rule(feature=st.sampled_from(FEATURES), units=st.integers(0, 150))
    def event(self, feature: str, units: int) -> None:
        self.events += 1
        self.world.run(RecordUsage(idempotency_key=f"e{self.events}", event_name=feature,
                                   feature_key=feature, occurred_at=self.world.now,
                                   units=D(units)))  # fmt: skip

    def _check(self, feature: str) -> Decision:
        decision = self.world.run(EvaluateEntitlement(feature_key=feature))
        assert isinstance(decision, Decision)
        return decision

    @invariant()
    def no_overdraft_and_conservation(self) -> None:
        credit = self._check("chat").credit
        assert credit is not None and credit.available is not None
        assert credit.available >= 0, "a hard-limited pool's available balance went negative"
        assert credit.total_granted == credit.total_consumed + credit.reserved + credit.available

    @invariant()
    def usage_never_counts_held_units(self) -> None:
        for feature in FEATURES:
            recorded = sum(
                (f.units for f in self.world.facts
                 if isinstance(f, UsageRecorded) and f.feature_key == feature
                 and f.period_start is not None),
                D(0),
            )  # fmt: skip
            usage = self._check(feature).usage
            assert usage is not None
            assert usage.used == recorded, feature
            held = sum(
                (i.units for r in self.world.state.reservations.values() for i in r.items
                 if i.feature_key == feature and i.status is HoldStatus.HELD),
                D(0),
            )  # fmt: skip
            assert usage.reserved == held, feature

    @invariant()
    def no_hold_both_settled_and_expired(self) -> None:
        for reservation in self.world.state.reservations.values():
            for item in reservation.items:
                if item.status is HoldStatus.EXPIRED and item.settlement is not None:
                    assert item.settlement.hold_expired, "settled a hold that had expired"
                if item.status is HoldStatus.COMMITTED:
                    assert item.settlement is not None and not item.settlement.hold_expired
                if item.status in (HoldStatus.RELEASED, HoldStatus.HELD):
                    assert item.settlement is None

    @invariant()
    def the_shortcuts_apply_what_the_general_turn_applies(self) -> None:
        assert self.world.facts == self.world.twin.facts
        assert encoded(self.world.state) == encoded(self.world.twin.state)

    @invariant()
    def state_is_what_replay_gives(self) -> None:
        invariants.check(self.world.state)
        assert encoded(replay(self.world.facts)) == encoded(self.world.state)


ReservationMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=30, deadline=None
)
test_reservation_machine = ReservationMachine.TestCase
