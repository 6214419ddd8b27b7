"""Wherever an amount is split, the rounded parts sum exactly to the rounded whole (MNY-B4;
STYLE's "parts sum exactly to the whole", INV-41, INV-42, INV-51, INV-52, CRD-40)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from allotment.domain.catalog import RolloverPolicy
from allotment.domain.commands import ChangePlan, MarkInvoicePaid, Subscribe
from allotment.domain.credit_lifecycle import rollover_facts
from allotment.domain.credits import CreditGrant, GrantSource
from allotment.domain.facts import CreditsExpired
from allotment.domain.invoicing import base_lines
from allotment.domain.money import allocate_money, minor_unit_exponent, round_money
from allotment.domain.proration import unused_ratio
from allotment.domain.replies import Subscribed
from allotment.domain.state import ChangeType, InvoiceType, PlanSegment
from tests.domain.harness import D, World

CURRENCIES = ["USD", "JPY", "KWD"]
exact_amounts = st.decimals(min_value=D(-10_000), max_value=D(10_000), places=8)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(exact_amounts, min_size=1, max_size=12), st.sampled_from(CURRENCIES))
def test_mny_b4_largest_remainder_parts_sum_to_the_rounded_whole(
    parts: list[Decimal], currency: str
) -> None:
    """MNY-B4: the allocated parts sum to round(Σ parts), each is in the currency's minor unit
    and less than one unit away from its exact value."""
    unit = Decimal(1).scaleb(-minor_unit_exponent(currency))
    allocated = allocate_money(parts, currency)
    assert sum(allocated, D(0)) == round_money(sum(parts, D(0)), currency)
    for exact, part in zip(parts, allocated, strict=True):
        assert part == part.quantize(unit)
        assert abs(part - exact) < unit


def test_mny_b4_the_remainder_goes_to_the_largest_remainders_first() -> None:
    """MNY-B4: 3 × 0.335 = 1.005 → 1.01: rounded alone each would give 0.34 (1.02 in all);
    floors give 0.33 each, and the two cents missing go to the first two of the tied parts."""
    assert allocate_money([D("0.335")] * 3, "USD") == [D("0.34"), D("0.34"), D("0.33")]
    assert allocate_money([D("0.1"), D("0.7"), D("0.2")], "JPY") == [D(0), D(1), D(0)]


APRIL = (datetime(2025, 4, 1, tzinfo=UTC), datetime(2025, 5, 1, tzinfo=UTC))
APRIL_MS = 30 * 86_400_000
prices = st.decimals(min_value=D(0), max_value=D(1000), places=2)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    st.lists(st.integers(1, APRIL_MS - 1), min_size=1, max_size=5, unique=True),
    st.lists(prices, min_size=6, max_size=6),
)
def test_mny_b4_prorated_segments_sum_to_the_rounded_prorated_total(
    boundaries: list[int], segment_prices: list[Decimal]
) -> None:
    """MNY-B4, INV-52: the base lines of a period split between plans sum to the rounded exact
    prorated total, each line positive (a zero share is no line, INV-35)."""
    world = World()
    reply = world.run(Subscribe(plan_id=world.plan_id("pro_monthly")))
    assert isinstance(reply, Subscribed)
    template = world.catalog.plans[world.plan_id("pro_monthly")]
    plans = {
        uuid.UUID(int=1000 + i): msgspec.structs.replace(
            template, id=uuid.UUID(int=1000 + i), price_amount=price
        )
        for i, price in enumerate(segment_prices)
    }
    catalog = msgspec.structs.replace(world.catalog, plans=plans)
    starts = [APRIL[0]] + [APRIL[0] + timedelta(milliseconds=ms) for ms in sorted(boundaries)]
    segments = tuple(
        PlanSegment(plan_id=uuid.UUID(int=1000 + i), start=start) for i, start in enumerate(starts)
    )
    (sub,) = world.state.subscriptions.values()
    sub = msgspec.structs.replace(sub, plan_segments=segments)
    items = base_lines(sub, catalog, APRIL, world.new_id, APRIL[0])
    exact = D(0)
    for i, segment in enumerate(segments):
        end = segments[i + 1].start if i + 1 < len(segments) else APRIL[1]
        share = unused_ratio(*APRIL, segment.start) - unused_ratio(*APRIL, end)
        exact += share * plans[segment.plan_id].price_amount
    assert sum((i.charge_amount for i in items), D(0)) == round_money(exact, "USD")
    assert all(i.charge_amount > 0 for i in items)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.integers(1, 30 * 86_400 - 1))
def test_mny_b4_upgrade_adjustment_lines_sum_to_the_rounded_net(elapsed_s: int) -> None:
    """MNY-B4, INV-51: the credit for the unused old plan and the charge for the new one are
    allocated so the adjustment is round(r × (new − old)), and the lines sum to it."""
    world = World()
    reply = world.run(Subscribe(plan_id=world.plan_id("starter_monthly")))
    assert isinstance(reply, Subscribed)
    world.run(MarkInvoicePaid(invoice_id=reply.invoice.id))
    sub = reply.subscription
    world.advance(elapsed_s)
    world.run(ChangePlan(subscription_id=sub.id, to_plan_id=world.plan_id("pro_monthly"),
                         change_type=ChangeType.UPGRADE))  # fmt: skip
    adjustments = [i for i in world.state.invoices.values() if i.type is InvoiceType.ADJUSTMENT]
    adjustment = adjustments[0] if adjustments else None
    assert len(adjustments) <= 1
    ratio = unused_ratio(sub.current_period_start, sub.current_period_end, world.now)
    net = round_money(ratio * (D(49) - D(19)), "USD")
    if net <= 0:
        assert adjustment is None
        return
    assert adjustment is not None
    assert adjustment.amount == net == sum((i.charge_amount for i in adjustment.items), D(0))
    credit, charge = (i.charge_amount for i in adjustment.items)
    assert abs(-credit - ratio * D(19)) < D("0.01")
    assert abs(charge - ratio * D(49)) < D("0.01")


credit_amounts = st.decimals(min_value=D("0.0001"), max_value=D(100_000), places=4)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    st.lists(credit_amounts, min_size=1, max_size=6),
    st.decimals(min_value=D(0), max_value=D(300_000), places=4),
)
def test_mny_b4_capped_rollover_expires_exactly_the_excess(
    remaining: list[Decimal], cap: Decimal
) -> None:
    """MNY-B4, CRD-40, CRD-41: a CAPPED rollover splits the excess over the cap across the
    subscription's grants, oldest first; the parts sum exactly to max(0, Σ remaining − cap),
    no grant gives more than it has, and exactly min(cap, Σ remaining) stays."""
    world = World()
    reply = world.run(Subscribe(plan_id=world.plan_id("pro_monthly")))
    assert isinstance(reply, Subscribed)
    world.run(MarkInvoicePaid(invoice_id=reply.invoice.id))
    sub = world.state.subscriptions[reply.subscription.id]
    pool = world.state.pools["TOKENS"]
    pool.rollover_policy, pool.rollover_cap = RolloverPolicy.CAPPED, cap
    pool.grants = [
        CreditGrant(
            id=uuid.UUID(int=5000 + i),
            amount=r,
            remaining=r,
            source=GrantSource.SUBSCRIPTION,
            subscription_id=sub.id,
            granted_at=world.now + timedelta(seconds=i),
        )
        for i, r in enumerate(remaining)
    ]
    pool.balance = sum(remaining, D(0))
    plan = world.catalog.plans[sub.plan_id]
    facts = rollover_facts(world.state, sub, plan, world.ctx(), sub.current_period_end)
    taken = [-f.transaction.amount for f in facts if isinstance(f, CreditsExpired)]
    total = sum(remaining, D(0))
    assert sum(taken, D(0)) == max(D(0), total - cap)
    assert all(0 < t <= r for t, r in zip(taken, remaining, strict=False))
    assert total - sum(taken, D(0)) == min(cap, total)
