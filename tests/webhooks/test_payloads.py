"""The wire form of notifications (docs/webhooks.md, "Event types"): every event type of
issue 15 item 3 renders from the facts alone, camelCase and JSON-ready (WHK-E39)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import msgspec

from allotment.domain.commands import (
    CancelSubscription,
    ChangePlan,
    GrantCredits,
    MarkInvoicePaid,
    Subscribe,
    Tick,
)
from allotment.domain.credits import GrantSource
from allotment.domain.facts import NotificationRaised
from allotment.domain.state import CancelMode, ChangeType
from allotment.webhooks.payloads import EVENT_TYPES, OutboundEvent, outbound_events
from tests.domain.harness import D, World
from tests.domain.reservation_world import reservation_world, reserve
from tests.domain.test_notifications import next_period, plan, turn, use, world_on


def _credit_plan(key: str, price: int) -> dict[str, Any]:
    tiered = plan(key, price=price, creditModelKey="tok")
    tiered["creditAllocations"] = [{"creditModelKey": "tok", "creditAmount": 100}]
    return tiered


def scenario() -> list[World]:
    """Worlds whose journals, together, raise every event type."""
    models = [{"key": "tok", "denomination": "TOKENS", "hardLimit": False}]
    world = world_on(_credit_plan("pro", 10), _credit_plan("max", 30), models=models)
    [created] = turn(world, Subscribe(plan_id=world.plan_id("pro")))
    turn(world, MarkInvoicePaid(invoice_id=created.invoice.id))  # type: ignore[union-attr]
    use(world, 100)  # thresholds 80 and 100; the pool low, then depleted
    expiry = world.now + timedelta(days=2)
    top_up = GrantCredits(
        denomination="TOKENS", amount=D(50), source=GrantSource.PROMOTION, expires_at=expiry
    )
    turn(world, top_up)  # recovered
    world.now = expiry + timedelta(seconds=1)
    turn(world, Tick())  # the grant expires
    sub = world.state.live_subscriptions()[0]
    upgrade = ChangePlan(
        subscription_id=sub.id, to_plan_id=world.plan_id("max"), change_type=ChangeType.UPGRADE
    )
    [adjustment, _] = turn(world, upgrade)  # invoice.created, plan_changed
    turn(world, MarkInvoicePaid(invoice_id=adjustment.invoice.id))  # type: ignore[union-attr]
    next_period(world)  # renewed, invoiced
    world.now += timedelta(days=4)
    turn(world, Tick())  # past due, suspended
    turn(world, CancelSubscription(subscription_id=sub.id, mode=CancelMode.IMMEDIATE))
    leaving = world_on(plan("free"))
    leaving.run(Subscribe(plan_id=leaving.plan_id("free")))
    sub = leaving.state.live_subscriptions()[0]
    turn(leaving, CancelSubscription(subscription_id=sub.id))  # cancellation scheduled
    holding = reservation_world()
    reserve(holding, "r1", ("chat", D(40)), ("api", D(5)), ttl=60)
    holding.advance(61)
    turn(holding, Tick())  # reservation.expired
    return [world, leaving, holding]


def rendered(world: World) -> list[OutboundEvent]:
    return outbound_events(world.state.id, world.state.external_id, world.facts)


def test_whk_e39_every_event_type_renders_json_ready_with_the_customer() -> None:
    """WHK-E39: every type of issue 15 item 3 is raised by the scenario and renders: the id
    is the notification's, the timestamp its fact's, the data plain JSON (Decimals as
    strings) carrying the customer's ids."""
    events = [event for world in scenario() for event in rendered(world)]
    assert {event.type for event in events} == EVENT_TYPES - {"webhook.test"}
    for world in scenario():
        raised = [f for f in world.facts if isinstance(f, NotificationRaised)]
        for fact, event in zip(raised, rendered(world), strict=True):
            assert event.id == "msg_" + fact.notification_id.hex
            assert event.timestamp == fact.at
            assert event.data["customerId"] == str(world.state.id)
            assert event.data["referenceCustomerId"] == "c1"
            assert msgspec.json.decode(msgspec.json.encode(event.data)) == event.data


def test_whk_e39_amounts_are_decimal_strings_and_names_camel_case() -> None:
    """WHK-E39: no float ever carries an amount, and no key has an underscore."""

    def walk(value: Any) -> None:
        assert not isinstance(value, float), value
        if isinstance(value, dict):
            assert all("_" not in key for key in value), value
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for world in scenario():
        for event in rendered(world):
            walk(event.data)
            if event.type == "credits.balance.low":
                assert Decimal(event.data["balance"]) < Decimal(event.data["lowBalanceThreshold"])


def test_whk_e39_no_nulls_and_a_customer_without_reference_id_omits_it() -> None:
    """WHK-E39: like the API's replies (API-6), data holds no nulls: an absent field is
    left out, so a customer without a reference id has only `customerId`."""
    [world, *_] = scenario()
    for event in outbound_events(world.state.id, None, world.facts):
        assert "referenceCustomerId" not in event.data
        assert event.data["customerId"] == str(world.state.id)
        assert "null" not in msgspec.json.encode(event.data).decode()


def test_whk_e40_reservation_expired_names_the_items_it_freed() -> None:
    """WHK-E40: `data` has the reservation's id, when it was made and expired, and each item
    freed, as the reservation routes name them; an item without credits has no `credits`."""
    holding = scenario()[2]
    [event] = [e for e in rendered(holding) if e.type == "reservation.expired"]
    reservation = holding.state.reservations["r1"]
    assert event.timestamp == reservation.expires_at
    assert event.data == {
        "customerId": str(holding.state.id),
        "referenceCustomerId": "c1",
        "reservationId": "r1",
        "createdAt": msgspec.to_builtins(reservation.created_at),
        "expiredAt": msgspec.to_builtins(reservation.expires_at),
        "items": [
            {"featureKey": "chat", "units": "40", "credits": "40.0000", "denomination": "TOKENS"},
            {"featureKey": "api", "units": "5"},
        ],
    }
