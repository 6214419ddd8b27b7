"""The entitlement decision: ENT-10..ENT-17 in order, the usage block (ENT-20..ENT-23), the
credit block (ENT-24) and the simulation formulas (SIM-1..SIM-6)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from allotment.domain.commands import (
    EvaluateEntitlement,
    GrantCredits,
    MarkInvoicePaid,
    RecordUsage,
    Subscribe,
)
from allotment.domain.credits import GrantSource
from allotment.domain.entitlement import unknown_customer_decision
from allotment.domain.replies import Decision, DenialReason, Subscribed
from tests.domain.harness import D, World, catalog_from

LIMITED = {
    "features": [{"key": "calls"}, {"key": "chat"}, {"key": "extra"}, {"key": "seats"}],
    "creditModels": [{"key": "tok", "denomination": "TOKENS", "hardLimit": True}],
    "plans": [
        {
            "key": "metered",
            "name": "Metered",
            "priceAmount": 0,
            "currency": "USD",
            "intervalMonths": 1,
            "billingTiming": "IN_ARREARS",
            "features": [
                {
                    "featureKey": "calls",
                    "pricingType": "usage_based",
                    "pricePerUnit": 0.01,
                    "maxUsage": 10000,
                },
                {"featureKey": "seats", "pricingType": "included"},
                {
                    "featureKey": "chat",
                    "pricingType": "usage_based",
                    "pricePerUnit": 0,
                    "creditModelKey": "tok",
                    "creditsPerUnit": 2,
                },
            ],
        },
        {
            "key": "paid",
            "name": "Paid",
            "priceAmount": 10,
            "currency": "USD",
            "intervalMonths": 1,
            "billingTiming": "IN_ADVANCE",
            "features": [
                {"featureKey": "calls", "pricingType": "usage_based", "pricePerUnit": 0.01}
            ],
        },
    ],
}


def world_on(plan: str | None) -> World:
    world = World(catalog_from(LIMITED))
    if plan is not None:
        world.run(Subscribe(plan_id=world.plan_id(plan)))
    return world


def decide(world: World, feature: str, requested: Decimal | None = None) -> Decision:
    decision = world.run(EvaluateEntitlement(feature_key=feature, requested_units=requested))
    assert isinstance(decision, Decision)
    return decision


def use(world: World, units: int, feature: str = "calls", key: str | None = None) -> None:
    world.run(
        RecordUsage(
            idempotency_key=key or f"k{len(world.facts)}",
            event_name=feature,
            feature_key=feature,
            occurred_at=world.now,
            units=D(units),
        )
    )


def test_ent10_unknown_customer_is_a_denial_with_a_simulation() -> None:
    decision = unknown_customer_decision(D(3))
    assert decision.reason is DenialReason.CUSTOMER_NOT_FOUND
    assert decision.simulation is not None and decision.simulation.requested_usage == 3


def test_ent11_unknown_feature_comes_before_subscription_checks() -> None:
    assert decide(world_on(None), "nope").reason is DenialReason.FEATURE_NOT_FOUND


def test_ent12_no_subscription_and_awaiting_payment() -> None:
    assert decide(world_on(None), "calls").reason is DenialReason.NO_ACTIVE_SUBSCRIPTION
    assert decide(world_on("paid"), "calls").reason is DenialReason.AWAITING_PAYMENT


def test_inv14_unpaid_initial_invoice_goes_past_due_and_stays_pending_payment() -> None:
    """INV-12/INV-14: at dueDate + grace the initial invoice is PAST_DUE; the subscription was
    never active, so it stays PENDING_PAYMENT (SUB-3 precedence) and the denial says so."""
    world = world_on("paid")
    world.advance(3 * 86_400)  # due at 2025-01-15T00:00Z, grace 3 days; now is 10:30 + 3 days
    decision = decide(world, "calls")
    invoice = next(iter(world.state.invoices.values()))
    assert invoice.status == "PAST_DUE"
    assert decision.reason is DenialReason.AWAITING_PAYMENT
    world.run(MarkInvoicePaid(invoice_id=invoice.id))
    assert decide(world, "calls").allowed


def test_ent18_oldest_active_subscription_governs() -> None:
    world = world_on("metered")
    paid = world.run(Subscribe(plan_id=world.plan_id("paid")))
    assert isinstance(paid, Subscribed)
    world.run(MarkInvoicePaid(invoice_id=paid.invoice.id))
    decision = decide(world, "calls")
    assert decision.usage is not None and decision.usage.limit == 10000  # metered's limit


def test_ent14_feature_not_in_plan() -> None:
    assert decide(world_on("metered"), "extra").reason is DenialReason.NOT_INCLUDED


def test_ent15_ent21_ent23_limit_reached_reports_usage() -> None:
    """Checklist 18: used 10000 of 10000 -> denied with usage {10000, 10000, 0}."""
    world = world_on("metered")
    use(world, 10000)
    decision = decide(world, "calls")
    assert decision.reason is DenialReason.LIMIT_EXCEEDED
    assert decision.usage is not None
    assert (decision.usage.used, decision.usage.limit, decision.usage.remaining) == (
        D(10000),
        D(10000),
        D(0),
    )


def test_ent22_included_feature_has_no_usage_block() -> None:
    decision = decide(world_on("metered"), "seats")
    assert decision.allowed and decision.usage is None


def test_ent16_credit_backed_feature_without_credits_is_denied() -> None:
    world = world_on("metered")
    assert decide(world, "chat").reason is DenialReason.INSUFFICIENT_CREDITS
    world.run(GrantCredits(denomination="TOKENS", amount=D(100), source=GrantSource.PURCHASE))
    decision = decide(world, "chat")
    assert decision.allowed and decision.credit is not None and decision.credit.balance == 100


@pytest.mark.parametrize(
    ("requested", "projected", "remaining", "exceeds"),
    [(2000, 10000, 0, False), (2001, 10001, 0, True), (1000, 9000, 1000, False)],
)
def test_sim3_to_sim6_formulas_from_the_checklist(
    requested: int, projected: int, remaining: int, exceeds: bool
) -> None:
    """Checklist 19: used 8000, limit 10000."""
    world = world_on("metered")
    use(world, 8000)
    decision = decide(world, "calls", D(requested))
    sim = decision.simulation
    assert sim is not None
    assert (sim.projected_usage, sim.projected_remaining, sim.would_exceed_limit) == (
        D(projected),
        D(remaining),
        exceeds,
    )
    assert decision.allowed is (not exceeds)
    assert decision.reason is (DenialReason.WOULD_EXCEED if exceeds else None)


def test_sim5_credit_backed_simulation_uses_the_burn_rate() -> None:
    world = world_on("metered")
    world.run(GrantCredits(denomination="TOKENS", amount=D(100), source=GrantSource.PURCHASE))
    assert decide(world, "chat", D(50)).allowed  # 50 units x 2 credits = 100 <= 100
    denied = decide(world, "chat", D(51))
    assert denied.simulation is not None and denied.simulation.would_exceed_limit
    assert denied.reason is DenialReason.WOULD_EXCEED


def test_sim1_unlimited_feature_still_simulates() -> None:
    sim = decide(world_on("metered"), "seats", D(5)).simulation
    assert sim is not None and sim.projected_remaining is None and not sim.would_exceed_limit
    assert sim.projected_usage == 5  # SIM-3: used is 0 for an included feature


@given(st.integers(0, 20_000), st.integers(1, 20_000))
def test_sim_formulas_hold_for_any_usage(used: int, requested: int) -> None:
    world = world_on("metered")
    if used:
        use(world, used)
    decision = decide(world, "calls", D(requested))
    sim = decision.simulation
    assert sim is not None
    assert sim.projected_usage == used + requested
    assert sim.projected_remaining == max(0, 10000 - used - requested)
    assert sim.would_exceed_limit is (used + requested > 10000)
    if used >= 10000:
        assert decision.reason is DenialReason.LIMIT_EXCEEDED  # ENT-15 outranks ENT-17
    assert decision.allowed is (used < 10000 and used + requested <= 10000)


def test_ent25_check_without_track_equals_evaluate_without_track() -> None:
    world = world_on("metered")
    use(world, 42)
    assert decide(world, "calls") == decide(world, "calls", None)


def test_ent13_ent19_in_arrears_invoice_follows_grace_then_suspends() -> None:
    """SUB-19, INV-11, INV-12: the finalised in-arrears invoice is not a prepayment; access
    continues through grace, then the subscription is SUSPENDED and denies "past due"."""
    world = world_on("metered")
    use(world, 100)
    world.now = world.state.subscriptions[next(iter(world.state.subscriptions))].current_period_end
    assert decide(world, "calls").allowed  # the period ended: the invoice is DUE, inside grace
    first = next(iter(world.state.invoices.values()))
    assert first.status == "DUE" and first.amount == D(1)  # 100 units at 0.01
    world.advance(3 * 86_400)  # grace is 3 days from the due date (the period end)
    assert decide(world, "calls").reason is DenialReason.PAST_DUE
    world.run(MarkInvoicePaid(invoice_id=first.id))
    assert decide(world, "calls").allowed  # ENT-19: payment restores access at once
