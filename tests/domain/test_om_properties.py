"""Properties of OpenMeter entitlements over any sequence of grants, usage, voids, resets and
time: balance is the sum of the grants' remaining credits (OM-86), the value at a past instant
is what the live state answered then (OM-100), history windows and burn-down segments add up
to the period's usage (OM-105), and replay from zero or a snapshot gives the same state
(OM-106)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from allotment.domain import invariants
from allotment.domain.evolve import evolve
from allotment.domain.om_commands import EntitlementValue, ResetEntitlement, VoidGrant
from allotment.domain.om_history import WindowSize, burn_down, windowed_history
from allotment.domain.om_state import pool_denomination
from allotment.domain.om_value import value_at
from allotment.domain.replies import Rejected
from allotment.domain.state import CustomerState
from tests.domain.harness import D, encoded, replay
from tests.domain.om_world import OmWorld

_TICK = timedelta(microseconds=1)

units = st.integers(0, 60).map(lambda n: D(n) / 2)
grants = st.tuples(
    st.just("grant"),
    st.integers(0, 40),  # amount
    st.integers(1, 3),  # priority
    st.one_of(st.none(), st.tuples(st.sampled_from(["HOUR", "DAY"]), st.integers(1, 30))),
    st.integers(0, 10),  # min rollover
    st.integers(0, 50),  # max rollover (raised to min)
    st.sampled_from([0, 0, 0, 1800, 7200]),  # effective this many seconds from now
    st.sampled_from([None, None, "PT2H", "DAY"]),  # recurrence
)
steps = st.lists(
    st.one_of(
        grants,
        st.tuples(st.just("use"), units),
        st.tuples(st.just("wait"), st.sampled_from([0, 59, 600, 3600, 5 * 3600, 26 * 3600])),
        st.tuples(st.just("reset"), st.sampled_from([None, True, False]), st.booleans()),
        st.tuples(st.just("void"), st.integers(0, 10)),
    ),
    max_size=30,
)
setups = st.fixed_dictionaries(
    {
        "usage_period": st.sampled_from(["DAY", "PT6H", "P1W"]),
        "is_soft_limit": st.booleans(),
        "preserve_overage_at_reset": st.booleans(),
        "issue_after_reset": st.one_of(st.none(), st.integers(0, 30).map(D)),
    }
)


def _step(world: OmWorld, ent: str, step: tuple[Any, ...], issued: list[str]) -> None:
    match step:
        case ("grant", amount, priority, expiration, low, high, delay, recurrence):
            duration, count = expiration if expiration else (None, None)
            shown = world.grant(
                ent,
                amount,
                priority=priority,
                expiration_duration=duration,
                expiration_count=count,
                min_rollover=D(low),
                max_rollover=D(max(low, high)),
                effective_at=world.now + timedelta(seconds=delay),
                recurrence=recurrence,
            )
            issued.append(shown.grant.public_id)
        case ("use", amount):
            world.use(amount)
        case ("wait", seconds):
            world.advance(seconds)
        case ("reset", preserve, retain):
            reply = world.run(
                ResetEntitlement(entitlement=ent, retain_anchor=retain, preserve_overage=preserve)
            )
            assert not isinstance(reply, Rejected), reply
        case ("void", index):
            if issued:
                world.run(VoidGrant(grant=issued[index % len(issued)]))


def _snapshot(state: CustomerState) -> CustomerState:
    return msgspec.msgpack.decode(msgspec.msgpack.encode(state), type=CustomerState)


@settings(max_examples=60, deadline=None)
@given(setups, steps, st.integers(0, 1000))
def test_om86_om100_om105_om106_entitlement_properties(
    setup: dict[str, Any], workload: list[tuple[Any, ...]], cut: int
) -> None:
    world = OmWorld()
    ent = world.create(**setup)
    seen: dict[datetime, EntitlementValue] = {}
    issued: list[str] = []
    snapshots: list[tuple[int, CustomerState]] = []
    for step in workload:
        _step(world, ent, step, issued)
        value = world.value(ent)
        seen[world.now] = value  # the last answer at each instant
        pool = world.state.pools[pool_denomination(ent)]
        invariants.check(world.state)  # the pool's balance is the sum of its grants' remaining
        assert value.balance == pool.balance == sum((g.remaining for g in pool.grants), D(0))
        snapshots.append((len(world.facts), _snapshot(world.state)))
    state, now = world.state, world.now
    entitlement = state.entitlements[ent]
    for instant, value in seen.items():  # OM-100
        assert value_at(state, entitlement, instant, now + _TICK * (instant == now)) == value
    since = entitlement.log[entitlement.reset_positions[-1]].at
    for size, zone in ((WindowSize.HOUR, "Asia/Kolkata"), (WindowSize.DAY, "America/New_York")):
        rows = windowed_history(entitlement, since, now + _TICK, size, ZoneInfo(zone))
        assert sum((row.usage for row in rows), Decimal(0)) == entitlement.usage  # OM-105
    segments = burn_down(entitlement, since, now + _TICK)
    assert sum((s.usage for s in segments), Decimal(0)) == entitlement.usage
    assert encoded(replay(world.facts)) == encoded(state)  # OM-106
    if snapshots:
        position, snapshot = snapshots[cut % len(snapshots)]
        for fact in world.facts[position:]:
            evolve(snapshot, fact)
        assert encoded(snapshot) == encoded(state)
