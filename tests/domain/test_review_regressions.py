"""Regressions found in review, each named by its rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from allotment.domain.commands import (
    CancelSubscription,
    ChangePlan,
    MarkInvoicePaid,
    RecordUsage,
    Subscribe,
)
from allotment.domain.replies import Rejected, Subscribed
from allotment.domain.state import CancelMode, ChangeType, InvoiceStatus, InvoiceType
from tests.domain.harness import D, World


def test_crd12_sub67_paying_an_old_price_renewal_after_an_upgrade_grants_the_old_allocation() -> (
    None
):
    """Pro renews (DUE, unpaid), upgrade to Enterprise grants the 4M delta; paying the Pro
    renewal then grants Pro's 1M for that period, not Enterprise's 5M."""
    world = World(now=datetime(2025, 1, 15, 10, tzinfo=UTC))
    reply = world.run(Subscribe(plan_id=world.plan_id("pro_monthly"), grace_period_days=10))
    assert isinstance(reply, Subscribed)
    world.run(MarkInvoicePaid(invoice_id=reply.invoice.id))
    world.now = datetime(2025, 2, 16, tzinfo=UTC)
    world.run(
        ChangePlan(
            subscription_id=reply.subscription.id,
            to_plan_id=world.plan_id("enterprise_monthly"),
            change_type=ChangeType.UPGRADE,
        )
    )
    renewal = next(i for i in world.state.invoices.values() if i.type is InvoiceType.RENEWAL)
    before = world.state.pools["TOKENS"].total_granted
    world.run(MarkInvoicePaid(invoice_id=renewal.id))
    assert world.state.pools["TOKENS"].total_granted - before == D(1_000_000)


def test_sub61_plan_changes_across_billing_timings_are_refused() -> None:
    world = World()
    reply = world.run(Subscribe(plan_id=world.plan_id("usage_monthly")))
    assert isinstance(reply, Subscribed)
    refused = world.run(
        ChangePlan(
            subscription_id=reply.subscription.id,
            to_plan_id=world.plan_id("starter_monthly"),
            change_type=ChangeType.UPGRADE,
        )
    )
    assert isinstance(refused, Rejected) and "billing timing" in refused.message


def test_sub46b_included_usage_alone_cancels_without_processing() -> None:
    world = World()
    reply = world.run(Subscribe(plan_id=world.plan_id("usage_monthly")))
    assert isinstance(reply, Subscribed)
    world.run(
        RecordUsage(
            idempotency_key="p",
            event_name="projects",
            feature_key="projects",
            occurred_at=world.now,
            units=D(3),
        )
    )
    world.now += timedelta(days=1)
    world.run(CancelSubscription(subscription_id=reply.subscription.id, mode=CancelMode.IMMEDIATE))
    assert world.state.invoices[reply.invoice.id].status is InvoiceStatus.CANCELLED
