"""Notifications decided in the turn, as facts (issue 15 items 3-4; docs/webhooks.md, "Event
types", WHK-E1..WHK-E39): each type's trigger, its once-only rule, replay and snapshots."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from allotment.domain import invariants
from allotment.domain.commands import (
    CancelSubscription,
    ChangePlan,
    Command,
    GrantCredits,
    MarkInvoicePaid,
    RecordUsage,
    Subscribe,
    Tick,
)
from allotment.domain.credits import GrantSource
from allotment.domain.facts import Fact, NotificationRaised, UsageRecorded
from allotment.domain.notice_marks import BalanceLevel
from allotment.domain.notification_types import (
    CreditBalanceDepleted,
    CreditBalanceLow,
    CreditBalanceRecovered,
    CreditGrantExpired,
    InvoiceCreated,
    InvoicePaid,
    InvoicePastDue,
    InvoiceVoided,
    Notification,
    SubscriptionActivated,
    SubscriptionCancellationScheduled,
    SubscriptionEnded,
    SubscriptionPlanChanged,
    SubscriptionRenewed,
    SubscriptionSuspended,
    UsageThresholdCrossed,
)
from allotment.domain.state import CancelMode, ChangeType, CustomerState, InvoiceStatus
from allotment.runtime.actor import CustomerActor
from tests.domain.harness import D, World, catalog_from, encoded, replay


def plan(key: str, price: int = 0, **link: Any) -> dict[str, Any]:
    api = {"featureKey": "api", "pricingType": "usage_based", "pricePerUnit": 0.01,
           "maxUsage": 100, **link}  # fmt: skip
    return {"key": key, "name": key, "priceAmount": price, "currency": "USD",
            "intervalMonths": 1, "billingTiming": "IN_ADVANCE", "features": [api]}  # fmt: skip


def world_on(*plans: dict[str, Any], models: list[dict[str, Any]] | None = None) -> World:
    document = {"features": [{"key": "api"}], "creditModels": models or [], "plans": list(plans)}
    return World(catalog_from(document))


def turn(world: World, command: Command) -> list[Notification]:
    """Run one turn; the notifications it raised, in order."""
    start = len(world.facts)
    world.run(command)
    return [f.payload for f in world.facts[start:] if isinstance(f, NotificationRaised)]


def use(world: World, units: int | Decimal, key: str | None = None) -> list[Notification]:
    key = key or f"e{len(world.facts)}"
    command = RecordUsage(
        idempotency_key=key, event_name="api", feature_key="api", occurred_at=world.now,
        units=Decimal(units),
    )  # fmt: skip
    return turn(world, command)


def percents(notices: list[Notification]) -> list[int]:
    return [n.percent for n in notices if isinstance(n, UsageThresholdCrossed)]


def kinds(notices: list[Notification]) -> list[type]:
    return [type(n) for n in notices]


def next_period(world: World) -> list[Notification]:
    sub = world.state.live_subscriptions()[0]
    world.now = sub.current_period_end + timedelta(seconds=1)
    return turn(world, Tick())


def subscribed(world: World, key: str = "free") -> None:
    world.run(Subscribe(plan_id=world.plan_id(key)))


# --- entitlement.usage.threshold -----------------------------------------------------------


def test_whk_e1_e2_each_threshold_fires_once_when_an_event_reaches_it() -> None:
    """WHK-E1, WHK-E2, WHK-E3: 80 and 100 percent of maxUsage by default, each once, on the
    event that reaches it; events past the limit (EVT-43) raise nothing more."""
    world = world_on(plan("free"))
    subscribed(world)
    assert use(world, 79) == []
    [eighty] = use(world, 1)
    assert isinstance(eighty, UsageThresholdCrossed)
    assert (eighty.feature_key, eighty.percent, eighty.used, eighty.limit) == (
        "api",
        80,
        D(80),
        D(100),
    )
    assert eighty.plan_key == "free"
    sub = world.state.live_subscriptions()[0]
    assert (eighty.period_start, eighty.period_end) == (
        sub.current_period_start,
        sub.current_period_end,
    )
    assert use(world, 19) == []
    assert percents(use(world, 1)) == [100]
    assert use(world, 50) == [] and use(world, 1) == []


def test_whk_e4_one_event_over_two_thresholds_fires_both_in_order() -> None:
    """WHK-E4: an event from 0 to 150 crosses 80 then 100: both fire, in that order, both
    carrying the usage after the event."""
    world = world_on(plan("free"))
    subscribed(world)
    notices = use(world, 150)
    assert percents(notices) == [80, 100]
    assert all(isinstance(n, UsageThresholdCrossed) and n.used == 150 for n in notices)


def test_whk_e5_thresholds_fire_again_after_a_renewal() -> None:
    """WHK-E5: once per period: the next period starts from zero, so they fire again."""
    world = world_on(plan("free"))
    subscribed(world)
    assert percents(use(world, 100)) == [80, 100]
    first = world.state.live_subscriptions()[0].current_period_start
    next_period(world)
    assert use(world, 79) == []
    again = use(world, 30)
    assert percents(again) == [80, 100]
    assert all(isinstance(n, UsageThresholdCrossed) and n.period_start > first for n in again)


def test_whk_e3_a_links_notify_at_percent_replaces_the_defaults() -> None:
    """WHK-E3: notifyAtPercent [50, 90] notifies at 50 and 90 only; [] at none."""
    world = world_on(plan("free", notifyAtPercent=[50, 90]))
    subscribed(world)
    assert percents(use(world, 60)) == [50]
    assert percents(use(world, 40)) == [90]
    silent = world_on(plan("free", notifyAtPercent=[]))
    subscribed(silent)
    assert use(silent, 500) == []


def test_whk_e1_an_unlimited_feature_never_notifies() -> None:
    """WHK-E1: thresholds are percents of maxUsage; without one there are none."""
    world = world_on(plan("free", maxUsage=None))
    subscribed(world)
    assert use(world, 10**6) == []


# --- replay and snapshots -----------------------------------------------------------------


def test_whk_e37_replay_applies_notifications_and_raises_none_again() -> None:
    """WHK-E37: replaying the journal gives the same state, marks included, and the
    notifications in it are the journalled ones: a replayed actor raises nothing twice."""
    world = world_on(plan("free"))
    subscribed(world)
    use(world, 90)
    replayed = replay(world.facts)
    assert encoded(replayed) == encoded(world.state)
    world.actor = CustomerActor(replayed)
    assert percents(use(world, 5)) == []
    assert percents(use(world, 5)) == [100]
    invariants.check(world.state)


def test_whk_e37_a_snapshot_round_trip_keeps_what_fired() -> None:
    """WHK-E37: the marks travel in the snapshot (msgpack, as snapshots encode state), and a
    state decoded without them (a snapshot older than webhooks) decodes with none."""
    world = world_on(plan("free"))
    subscribed(world)
    use(world, 85)
    snapshot = msgspec.msgpack.encode(world.state)
    world.actor = CustomerActor(msgspec.msgpack.decode(snapshot, type=CustomerState))
    assert use(world, 1) == []
    assert percents(use(world, 20)) == [100]
    old = msgspec.msgpack.decode(snapshot, type=dict[str, Any])
    del old["notices"]
    decoded = msgspec.msgpack.decode(msgspec.msgpack.encode(old), type=CustomerState)
    assert decoded.notices.usage_thresholds == {}


# --- credits.balance.* and credits.grant.expired -------------------------------------------


def credit_world(limit: int | None = None, **model: Any) -> World:
    """A free plan allocating 100 TOKENS a period; `api` draws 1 TOKEN per unit, unlimited
    unless `limit`."""
    tokens = {"key": "tok", "denomination": "TOKENS", "hardLimit": False, **model}
    free = plan("free", maxUsage=limit, creditModelKey="tok")
    free["creditAllocations"] = [{"creditModelKey": "tok", "creditAmount": 100}]
    world = world_on(free, models=[tokens])
    opened = turn(world, Subscribe(plan_id=world.plan_id("free")))
    # a zero invoice is paid at once; a new pool has crossed nothing
    assert kinds(opened) == [InvoiceCreated, InvoicePaid, SubscriptionActivated]
    assert world.state.pools["TOKENS"].balance == 100
    return world


def test_whk_e10_e11_e13_low_then_depleted_then_recovered_each_once_per_crossing() -> None:
    """WHK-E10..WHK-E13: below 20% of the period's allocation is low, zero is depleted, a
    top-up recovers; staying at a level raises nothing more."""
    world = credit_world()
    assert use(world, 80) == []  # 20 left: not below 20
    [low] = use(world, 1)
    assert isinstance(low, CreditBalanceLow)
    assert (low.denomination, low.balance, low.low_threshold) == ("TOKENS", D(19), D(20))
    assert use(world, 5) == []  # still low: once per crossing
    assert kinds(use(world, 14)) == [CreditBalanceDepleted]
    assert use(world, 3) == []  # nothing left to draw: still depleted
    grant = GrantCredits(denomination="TOKENS", amount=D(10), source=GrantSource.PURCHASE)
    [back] = turn(world, grant)
    assert isinstance(back, CreditBalanceRecovered) and back.level is BalanceLevel.LOW
    grant = GrantCredits(denomination="TOKENS", amount=D(50), source=GrantSource.PURCHASE)
    [ok] = turn(world, grant)
    assert isinstance(ok, CreditBalanceRecovered) and ok.level is BalanceLevel.OK
    assert kinds(use(world, 55)) == [CreditBalanceLow]  # a new crossing fires again


def test_whk_e12_a_jump_from_ok_to_empty_fires_low_then_depleted() -> None:
    """WHK-E12: one debit through both levels fires both, in order."""
    world = credit_world()
    assert kinds(use(world, 100)) == [CreditBalanceLow, CreditBalanceDepleted]


def test_whk_e10_the_models_low_balance_threshold_replaces_the_default() -> None:
    """WHK-E10: lowBalanceThreshold 50 fires below 50, not below 20."""
    world = credit_world(lowBalanceThreshold=50)
    [low] = use(world, 51)
    assert isinstance(low, CreditBalanceLow) and low.low_threshold == 50


def test_whk_e14_a_renewal_that_refills_the_pool_recovers_it() -> None:
    """WHK-E14: the period's new allocation lifts a low pool: recovered, in the renewal turn."""
    world = credit_world()
    assert kinds(use(world, 90)) == [CreditBalanceLow]
    notices = next_period(world)
    assert CreditBalanceRecovered in kinds(notices)
    assert SubscriptionRenewed in kinds(notices)


def test_whk_e15_an_expired_grant_notifies_once() -> None:
    """WHK-E15: the timer sweep's expiry is a fact, and its notice joins it in that turn."""
    world = credit_world()
    expiry = world.now + timedelta(days=3)
    grant = GrantCredits(
        denomination="TOKENS", amount=D(40), source=GrantSource.PROMOTION, expires_at=expiry
    )
    turn(world, grant)
    world.now = expiry + timedelta(seconds=1)
    [expired] = turn(world, Tick())
    assert isinstance(expired, CreditGrantExpired)
    assert (expired.expired_amount, expired.balance) == (D(40), D(100))
    assert turn(world, Tick()) == []


# --- invoices and subscriptions ------------------------------------------------------------


def paid_world() -> World:
    return world_on(plan("free"), plan("pro", price=10), plan("max", price=30))


def test_whk_e20_e21_e30_a_paid_start_creates_then_paid_activates() -> None:
    """WHK-E20, WHK-E21, WHK-E30: a prepaid start raises invoice.created; paying it raises
    invoice.paid, then subscription.activated (cause first, WHK-E38)."""
    world = paid_world()
    [created] = turn(world, Subscribe(plan_id=world.plan_id("pro")))
    assert isinstance(created, InvoiceCreated) and created.invoice.status is InvoiceStatus.DUE
    paid = turn(world, MarkInvoicePaid(invoice_id=created.invoice.id))
    assert kinds(paid) == [InvoicePaid, SubscriptionActivated]
    activated = paid[1]
    assert isinstance(activated, SubscriptionActivated) and activated.plan_key == "pro"
    assert turn(world, MarkInvoicePaid(invoice_id=created.invoice.id)) == []  # INV-21


def test_whk_e30_a_free_start_is_active_at_once() -> None:
    """WHK-E30: a free plan's start activates in its own turn, after its invoice."""
    world = paid_world()
    notices = turn(world, Subscribe(plan_id=world.plan_id("free")))
    assert SubscriptionActivated in kinds(notices)
    assert kinds(notices)[-1] is SubscriptionActivated


def test_whk_e32_e22_e31_renewal_then_past_due_then_suspended() -> None:
    """WHK-E32, WHK-E20, WHK-E22, WHK-E31: a period end renews and invoices; the unpaid
    invoice past its grace goes past due and suspends the subscription (in that order)."""
    world = paid_world()
    [created] = turn(world, Subscribe(plan_id=world.plan_id("pro")))
    assert isinstance(created, InvoiceCreated)
    turn(world, MarkInvoicePaid(invoice_id=created.invoice.id))
    renewal = next_period(world)
    assert set(kinds(renewal)) == {InvoiceCreated, SubscriptionRenewed}
    world.now += timedelta(days=4)  # past the 3-day grace (SUB-12)
    late = turn(world, Tick())
    assert kinds(late) == [InvoicePastDue, SubscriptionSuspended]
    assert turn(world, Tick()) == []


def test_whk_e33_an_upgrade_changes_the_plan() -> None:
    """WHK-E33: an immediate upgrade raises plan_changed, naming both plans."""
    world = paid_world()
    [created] = turn(world, Subscribe(plan_id=world.plan_id("pro")))
    assert isinstance(created, InvoiceCreated)
    turn(world, MarkInvoicePaid(invoice_id=created.invoice.id))
    sub = world.state.live_subscriptions()[0]
    change = ChangePlan(
        subscription_id=sub.id, to_plan_id=world.plan_id("max"), change_type=ChangeType.UPGRADE
    )
    notices = turn(world, change)
    [changed] = [n for n in notices if isinstance(n, SubscriptionPlanChanged)]
    assert (changed.from_plan_key, changed.plan_key) == ("pro", "max")


def test_whk_e34_e35_cancellation_scheduled_then_ended_at_period_end() -> None:
    """WHK-E34, WHK-E35: a cancellation at period end is announced when scheduled, and the
    subscription ends (ended, not renewed) when the period does."""
    world = paid_world()
    subscribed(world)
    sub = world.state.live_subscriptions()[0]
    [scheduled] = turn(world, CancelSubscription(subscription_id=sub.id))
    assert isinstance(scheduled, SubscriptionCancellationScheduled)
    assert scheduled.subscription.cancel_effective_at == sub.current_period_end
    ended = next_period(world)
    assert SubscriptionEnded in kinds(ended) and SubscriptionRenewed not in kinds(ended)


def test_whk_e23_e35_an_immediate_cancel_voids_the_open_invoice_and_ends() -> None:
    """WHK-E23, WHK-E35: cancelling at once voids the unpaid invoice, then ends."""
    world = paid_world()
    [created] = turn(world, Subscribe(plan_id=world.plan_id("pro")))
    assert isinstance(created, InvoiceCreated)
    sub = world.state.live_subscriptions()[0]
    notices = turn(world, CancelSubscription(subscription_id=sub.id, mode=CancelMode.IMMEDIATE))
    assert kinds(notices) == [InvoiceVoided, SubscriptionEnded]


def test_whk_e36_each_notification_follows_its_cause_in_the_turns_facts() -> None:
    """WHK-E36, WHK-E38: a notification is a fact of the same turn, after the fact that caused
    it, stamped with that fact's time, with a fresh id."""
    world = world_on(plan("free"))
    subscribed(world)
    start = len(world.facts)
    use(world, 80)
    facts: list[Fact] = world.facts[start:]
    assert [type(f) for f in facts] == [UsageRecorded, NotificationRaised]
    cause, raised = facts
    assert isinstance(raised, NotificationRaised) and raised.at == cause.at
    ids = [f.notification_id for f in world.facts if isinstance(f, NotificationRaised)]
    assert len(ids) == len(set(ids))


# --- the property --------------------------------------------------------------------------

steps = st.lists(
    st.one_of(
        st.decimals(min_value=D("0.01"), max_value=D(150), places=2),
        st.just("renew"),
    ),
    min_size=1,
    max_size=25,
)
notify_at = st.one_of(st.none(), st.lists(st.integers(1, 200), max_size=4, unique=True).map(sorted))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.sampled_from([D(10), D(100), D("7.5")]), notify_at, steps)
def test_whk_e2_thresholds_fire_at_most_once_per_period_and_exactly_when_reached(
    limit: Decimal, at: list[int] | None, script: list[Decimal | str]
) -> None:
    """WHK-E1..WHK-E5 as a property: in every period, each threshold fires exactly once if
    and only if usage reaches it, on the first event that makes it reach it, in ascending
    order within one event; and replay gives the same state."""
    link: dict[str, Any] = {"maxUsage": limit, "pricePerUnit": 0}  # no unpaid invoices
    if at is not None:
        link["notifyAtPercent"] = at
    world = world_on(plan("free", **link))
    subscribed(world)
    thresholds = [80, 100] if at is None else at
    used, fired = D(0), set[int]()
    for step in script:
        if step == "renew":
            assert percents(next_period(world)) == []
            used, fired = D(0), set()
            continue
        assert isinstance(step, Decimal)
        used += step
        expected = [p for p in thresholds if p not in fired and used * 100 >= limit * p]
        fired.update(expected)
        notices = use(world, step)
        assert percents(notices) == expected
        period = world.state.live_subscriptions()[0].current_period_start
        assert all(isinstance(n, UsageThresholdCrossed) and n.period_start == period
                   and n.used == used for n in notices)  # fmt: skip
    assert encoded(replay(world.facts)) == encoded(world.state)


def test_whk_e36_an_events_facts_change_no_subscription() -> None:
    """WHK-E36: the actor's event turn takes the subscriptions after the event as their
    state before it (the hot path copies nothing); that holds because an event's facts
    (usage, credit debits, thresholds) replace no subscription."""
    world = credit_world(limit=100)
    raised = []
    for units in (5, 90, 20):
        before = list(world.state.subscriptions.values())
        raised += kinds(use(world, units))
        assert all(a is b for a, b in zip(before, world.state.subscriptions.values(), strict=True))
    assert set(raised) == {UsageThresholdCrossed, CreditBalanceLow, CreditBalanceDepleted}


def test_whk_e6_marks_of_past_periods_are_dropped_and_replay_drops_the_same() -> None:
    """WHK-E6, WHK-E5, WHK-E37: the first threshold of a new period drops the marks of the
    subscription's past periods, so three periods leave one period's marks; replay from the
    journal and a snapshot round trip give the same marks, and the thresholds still fire."""
    world = world_on(plan("free"))
    subscribed(world)
    for _ in range(3):
        assert percents(use(world, 85)) == [80]
        for notice in next_period(world):  # the usage invoice, paid so access stays ACTIVE
            if isinstance(notice, InvoiceCreated):
                world.run(MarkInvoicePaid(invoice_id=notice.invoice.id))
    assert percents(use(world, 100)) == [80, 100]
    sub = world.state.live_subscriptions()[0]
    [key] = world.state.notices.usage_thresholds
    assert key.endswith(sub.current_period_start.isoformat())
    assert world.state.notices.usage_thresholds[key] == [80, 100]
    assert encoded(replay(world.facts)) == encoded(world.state)
    snapshot = msgspec.msgpack.decode(msgspec.msgpack.encode(world.state), type=CustomerState)
    assert snapshot.notices == world.state.notices
