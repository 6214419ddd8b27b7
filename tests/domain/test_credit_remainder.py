"""Sub-quantum credits are carried, never leaked (MNY-B3, MNY-B5; fixes CRD-30, CRD-32, INV-37).

Each event's credits used to be rounded alone to 4 decimals, so an event of 10 tokens at
0.0000025 credits per token debited nothing, was not billable, and passed a hard limit.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from allotment.domain import invariants
from allotment.domain.commands import GrantCredits, RecordUsage, Subscribe
from allotment.domain.credits import GrantSource
from allotment.domain.facts import CreditsDebited, UsageRecorded
from allotment.domain.money import round_credits
from allotment.domain.replies import UsageAccepted
from tests.domain.harness import D, World, catalog_from, encoded, replay

RATES = ["0.0000025", "0.00003", "0.33333", "0.0001", "1", "2.5"]


def _world(rate: str, *, hard: bool = True) -> World:
    """A free in-arrears plan whose `chat` draws `rate` TOKENS per unit and bills 0.01 per
    uncovered unit."""
    link = {"featureKey": "chat", "pricingType": "usage_based", "pricePerUnit": 0.01,
            "creditModelKey": "tok", "creditsPerUnit": rate}  # fmt: skip
    plan = {"key": "free", "name": "Free", "priceAmount": 0, "currency": "USD",
            "intervalMonths": 1, "billingTiming": "IN_ARREARS", "features": [link]}  # fmt: skip
    document = {
        "features": [{"key": "chat"}],
        "creditModels": [{"key": "tok", "denomination": "TOKENS", "hardLimit": hard}],
        "plans": [plan],
    }
    world = World(catalog_from(document))
    world.run(Subscribe(plan_id=world.plan_id("free")))
    return world


def _grant(world: World, amount: Decimal) -> None:
    world.run(GrantCredits(denomination="TOKENS", amount=amount, source=GrantSource.PURCHASE))


def _use(world: World, key: str, units: Decimal) -> UsageAccepted:
    reply = world.run(
        RecordUsage(
            idempotency_key=key,
            event_name="chat",
            feature_key="chat",
            occurred_at=world.now,
            units=units,
        )
    )
    assert isinstance(reply, UsageAccepted)
    return reply


def _debited(world: World) -> Decimal:
    return -sum((f.transaction.amount for f in world.facts if isinstance(f, CreditsDebited)), D(0))


def _billable(world: World) -> Decimal:
    return sum((f.billable_units for f in world.facts if isinstance(f, UsageRecorded)), D(0))


def test_mny_b3_a_thousand_tiny_events_debit_what_one_event_of_their_sum_would() -> None:
    """MNY-B3, CRD-30: the issue's case: 1,000 events of 10 tokens at 0.0000025 credits per
    token consume 0.025 credits (they consumed 0), and none of them is billable."""
    world = _world("0.0000025")
    _grant(world, D(100))
    for i in range(1000):
        _use(world, f"e{i}", D(10))
    assert _debited(world) == D("0.025")
    assert world.state.pools["TOKENS"].balance == D("99.975")
    assert _billable(world) == 0
    assert world.state.pools["TOKENS"].remainders == {}  # 0.025 is a whole number of quanta
    invariants.check(world.state)


def test_mny_b5_an_empty_hard_limited_pool_lets_no_tiny_event_through() -> None:
    """MNY-B5, CRD-32, EVT-41, INV-37: at zero balance every event that owes credits is
    flagged and all its units are billable, however small its debit."""
    world = _world("0.0000025")
    _grant(world, D("0.0001"))
    replies = [_use(world, f"e{i}", D(10)) for i in range(6)]
    # 0.000025 each: the first owes a sub-quantum the pool can still pay, the second settles
    # 0.0001 (paying ahead for two more); the fifth finds the pool empty, so it and every
    # later event are flagged and billed in full
    assert [r.over_limit for r in replies] == [False, False, False, False, True, True]
    assert _debited(world) == D("0.0001")
    assert _billable(world) == D(20)
    assert replies[-1].message == "Credit pool depleted for 'TOKENS'."


units = st.decimals(min_value=D("0.000001"), max_value=D(5000), places=6)


@settings(max_examples=120, deadline=None, derandomize=True)
@given(st.sampled_from(RATES), st.lists(units, min_size=1, max_size=40))
def test_mny_b3_n_events_debit_exactly_one_event_of_their_sum(
    rate: str, events: list[Decimal]
) -> None:
    """MNY-B3: with credits enough, the total debited is round(Σ units × rate), to the
    quantum, whatever the split; replay rebuilds the carried remainder."""
    world = _world(rate)
    _grant(world, D(10) ** 9)
    for i, quantity in enumerate(events):
        _use(world, f"e{i}", quantity)
        invariants.check(world.state)
    exact = sum(events, D(0)) * D(rate)
    assert _debited(world) == round_credits(exact)
    carried = world.state.pools["TOKENS"].remainders.get("chat", D(0))
    assert carried == exact - round_credits(exact)
    assert _billable(world) == 0
    assert encoded(replay(world.facts)) == encoded(world.state)


@settings(max_examples=120, deadline=None, derandomize=True)
@given(
    st.sampled_from(RATES),
    st.decimals(min_value=D(0), max_value=D(50), places=4),
    st.lists(units, min_size=1, max_size=40),
)
def test_mny_b3_credits_and_billed_units_account_for_every_unit(
    rate: str, balance: Decimal, events: list[Decimal]
) -> None:
    """MNY-B3, MNY-B5, CRD-31, INV-37: whatever the pool can pay, every unit is either paid
    for in credits (debited, or carried below the quantum) or billable: Σ exact credits =
    debited + billable × rate + carried, up to INV-43's 6-decimal rounding of billable units.
    The pool never pays more than it held, and a flagged event is one the pool fell short on."""
    world = _world(rate)
    if balance:
        _grant(world, balance)
    for i, quantity in enumerate(events):
        reply = _use(world, f"e{i}", quantity)
        # the event's own fact; a notification may follow it in the same turn (WHK-E36)
        last = [fact for fact in world.facts if isinstance(fact, UsageRecorded)][-1]
        assert last.idempotency_key == f"e{i}"
        assert reply.over_limit == (last.billable_units > 0)
        assert 0 <= last.billable_units <= quantity
        invariants.check(world.state)
    r = D(rate)
    carried = world.state.pools["TOKENS"].remainders.get("chat", D(0)) if balance else D(0)
    assert abs(carried) <= D("0.00005")
    accounted = _debited(world) + _billable(world) * r + carried
    exact = sum(events, D(0)) * r
    assert abs(exact - accounted) <= len(events) * r * D("0.0000005")
    assert _debited(world) <= balance
    assert encoded(replay(world.facts)) == encoded(world.state)
