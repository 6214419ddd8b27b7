"""Replaying facts reproduces state exactly, from zero or from a snapshot plus the tail
(STYLE habit 19), and every invariant holds after every step of a random workload."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from allotment.domain import invariants
from allotment.domain.commands import (
    Command,
    EvaluateEntitlement,
    GrantCredits,
    MarkInvoicePaid,
    RecordUsage,
    Subscribe,
)
from allotment.domain.credits import GrantSource
from allotment.domain.state import CustomerState
from tests.domain.harness import D, World, assert_replays, snapshot

PLANS = ["free", "starter_monthly", "pro_monthly", "enterprise_monthly", "usage_monthly"]
FEATURES = ["api_calls", "ai_chat", "storage_gb", "projects", "sso", "unknown_thing"]

steps = st.lists(
    st.one_of(
        st.tuples(st.just("subscribe"), st.sampled_from(PLANS), st.integers(0, 5)),
        st.tuples(st.just("pay"), st.integers(0, 20), st.none()),
        st.tuples(st.just("use"), st.sampled_from(FEATURES), st.integers(-40, 40)),
        st.tuples(st.just("grant"), st.integers(1, 10**6), st.integers(0, 60)),
        st.tuples(st.just("check"), st.sampled_from(FEATURES), st.integers(0, 3)),
        st.tuples(st.just("wait"), st.integers(0, 10 * 86_400), st.none()),
    ),
    max_size=30,
)


def _command(world: World, step: tuple[str, Any, Any], i: int) -> Command | None:
    kind, a, b = step
    if kind == "subscribe":
        return Subscribe(plan_id=world.plan_id(str(a)), grace_period_days=int(b))
    if kind == "pay":
        invoices = list(world.state.invoices)
        return MarkInvoicePaid(invoice_id=invoices[int(a) % len(invoices)]) if invoices else None
    if kind == "use":
        when = world.now + timedelta(days=int(b))
        return RecordUsage(
            idempotency_key=f"e{i}",
            event_name=str(a),
            feature_key=str(a),
            occurred_at=when,
            units=D(abs(int(b)) * 1000),
        )
    if kind == "grant":
        expires = world.now + timedelta(days=int(b)) if b else None
        return GrantCredits(
            denomination="TOKENS",
            amount=D(int(a)),
            source=GrantSource.PROMOTION,
            expires_at=expires,
        )
    if kind == "check":
        return EvaluateEntitlement(feature_key=str(a), requested_units=D(int(b)) if b else None)
    world.advance(int(a))
    return None


@settings(max_examples=120, deadline=None)
@given(steps, st.integers(0, 1000))
def test_replay_from_zero_and_from_a_snapshot_give_the_same_state(
    workload: list[tuple[str, Any, Any]], cut: int
) -> None:
    world = World()
    snapshots: list[tuple[int, CustomerState]] = []
    for i, step in enumerate(workload):
        command = _command(world, step, i)
        if command is not None:
            world.run(command)
        invariants.check(world.state)
        snapshots.append((len(world.facts), snapshot(world.state)))
    assert_replays(world.facts, world.state, snapshots, cut)
