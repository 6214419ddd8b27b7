"""A Tanso subscription's feature links as read-only OpenMeter entitlements (OM-150..OM-158):
the views, their values against the Tanso check over any usage sequence, a native entitlement
hiding a view, and writes on a view refused with nothing journalled."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allotment.domain.commands import EvaluateEntitlement, RecordUsage, Subscribe
from allotment.domain.om_commands import (
    AccessShown,
    CreateEntitlement,
    DeleteEntitlement,
    EntitlementShown,
    EntitlementValue,
    IssueGrant,
    OpenMeterCommand,
    OverrideEntitlement,
    ReadAccess,
    ReadEntitlementValue,
    ResetEntitlement,
    ValueShown,
)
from allotment.domain.om_state import EntitlementKind
from allotment.domain.om_views import (
    derived_entitlements,
    derived_id,
    parse_derived_id,
    resolve_derived,
)
from allotment.domain.replies import Decision, Rejected, RejectionKind, Subscribed
from tests.domain.harness import D, World, catalog_from

LIMIT = 10
CATALOG = {
    "features": [{"key": "calls"}, {"key": "seats"}, {"key": "chat"}],
    "creditModels": [],
    "plans": [
        {
            "key": "pro",
            "name": "Pro",
            "priceAmount": 0,
            "currency": "USD",
            "intervalMonths": 1,
            "billingTiming": "IN_ARREARS",
            "features": [
                {
                    "featureKey": "calls",
                    "pricingType": "usage_based",
                    "pricePerUnit": 0,
                    "maxUsage": LIMIT,
                },
                {"featureKey": "seats", "pricingType": "included"},
                {"featureKey": "chat", "pricingType": "usage_based", "pricePerUnit": 0},
            ],
        }
    ],
}


class ViewWorld(World):
    """A customer subscribed to `pro`."""

    def __init__(self) -> None:
        super().__init__(catalog_from(CATALOG))
        reply = self.run(Subscribe(plan_id=self.plan_id("pro")))
        assert isinstance(reply, Subscribed)
        self.sub = reply.subscription

    def use(self, units: Decimal, feature: str = "calls") -> None:
        self.run(
            RecordUsage(
                idempotency_key=f"k{len(self.facts)}",
                event_name=feature,
                feature_key=feature,
                occurred_at=self.now,
                units=units,
            )
        )

    def check(self, feature: str = "calls") -> Decision:
        decision = self.run(EvaluateEntitlement(feature_key=feature))
        assert isinstance(decision, Decision)
        return decision

    def value(self, entitlement: str) -> EntitlementValue:
        reply = self.run(ReadEntitlementValue(entitlement=entitlement))
        assert isinstance(reply, ValueShown), reply
        return reply.value


def test_om150_om151_om152_each_link_is_a_view_with_a_derived_id() -> None:
    world = ViewWorld()
    views = {v.definition.feature_key: v for v in derived_entitlements(world.state, world.catalog)}
    assert list(views) == ["calls", "seats", "chat"]
    calls, seats, chat = views["calls"], views["seats"], views["chat"]
    assert calls.id == f"tanso_{world.sub.id.hex}_calls" == derived_id(world.sub.id, "calls")
    assert parse_derived_id(calls.id) == (world.sub.id, "calls")
    assert parse_derived_id("01JF8Z6ZJ3K4W5X6Y7Z8A9B0CD") is None  # a native ULID
    assert calls.definition.kind is EntitlementKind.METERED
    assert calls.definition.interval is not None and calls.definition.interval.iso == "P1M"
    assert calls.definition.anchor == world.sub.first_period_start
    assert calls.definition.issue_after_reset == LIMIT and not calls.definition.is_soft_limit
    assert calls.current_period == (world.sub.current_period_start, world.sub.current_period_end)
    assert calls.definition.metadata is not None
    assert calls.definition.metadata["allotment.readOnly"] == "true"
    assert seats.definition.kind is EntitlementKind.BOOLEAN and seats.definition.interval is None
    assert chat.definition.is_soft_limit and chat.limit is None  # no cap: never over it


steps = st.lists(
    st.one_of(
        st.tuples(st.just("use"), st.integers(0, 8).map(lambda n: D(n) / 2)),
        st.tuples(st.just("wait"), st.sampled_from([60, 86_400, 20 * 86_400, 40 * 86_400])),
    ),
    max_size=25,
)


@settings(max_examples=40, deadline=None)
@given(steps)
def test_om153_a_view_answers_what_the_tanso_check_answers(
    sequence: list[tuple[str, Decimal | int]],
) -> None:
    """For any usage sequence over several periods: hasAccess is the check's answer and, as an
    OpenMeter hard limit's, `balance > 0`; usage is what the period recorded; the balance and
    overage are the limit's remainder and excess; an unlimited link's usage is counted too."""
    world = ViewWorld()
    recorded: list[tuple[datetime, Decimal]] = []
    for kind, amount in sequence:
        if kind == "use":
            assert isinstance(amount, Decimal)
            world.use(amount)
            world.use(amount, "chat")
            recorded.append((world.now, amount))
        else:
            world.advance(int(amount))
        check = world.check()
        value = world.value("calls")
        sub = world.state.subscriptions[world.sub.id]
        used = sum(
            (u for at, u in recorded if sub.current_period_start <= at < sub.current_period_end),
            D(0),
        )
        assert (
            value.has_access == check.allowed == (value.balance is not None and value.balance > 0)
        )
        assert (value.usage, value.balance, value.overage) == (
            used,
            max(D(0), LIMIT - used),
            max(D(0), used - LIMIT),
        )
        assert value.total_available_grant_amount == LIMIT
        chat = world.value("chat")
        assert chat.has_access == world.check("chat").allowed and chat.usage == used
        assert world.value("seats") == EntitlementValue(has_access=world.check("seats").allowed)


def test_om154_a_native_entitlement_hides_the_view_and_the_check_stays_tansos() -> None:
    world = ViewWorld()
    world.use(D(4))
    view_id = derived_id(world.sub.id, "calls")
    native = world.run(
        CreateEntitlement(feature_key="calls", kind=EntitlementKind.METERED, usage_period="DAY")
    )
    assert isinstance(native, EntitlementShown)
    world.use(D(7))  # counts toward both: the plan's counter and the native entitlement
    keys = [v.definition.feature_key for v in derived_entitlements(world.state, world.catalog)]
    assert keys == ["seats", "chat"]
    assert resolve_derived(world.state, world.catalog, view_id) is None
    assert world.run(ReadEntitlementValue(entitlement=view_id)) == Rejected(
        kind=RejectionKind.NOT_FOUND, message="Entitlement not found.", field="entitlement"
    )
    by_key = world.value("calls")  # the native one: no grants, hard limit
    assert (by_key.has_access, by_key.usage) == (False, D(7))
    check = world.check()  # the plan's limit, not the native entitlement's
    assert not check.allowed and check.usage is not None and check.usage.used == D(11)
    world.run(DeleteEntitlement(entitlement=native.definition.id))
    assert world.value(view_id).usage == D(11)


def test_om155_access_holds_native_values_and_the_views() -> None:
    world = ViewWorld()
    world.run(CreateEntitlement(feature_key="seats", kind=EntitlementKind.STATIC, config="{}"))
    world.use(D(3))
    reply = world.run(ReadAccess())
    assert isinstance(reply, AccessShown)
    assert reply.values["seats"] == EntitlementValue(has_access=True, config="{}")  # native
    assert reply.values["calls"] == world.value("calls") and reply.values["calls"].usage == 3
    assert set(reply.values) == {"calls", "seats", "chat"}
    world.advance(60)
    past = world.run(ReadAccess(at=world.now - timedelta(seconds=30)))
    assert isinstance(past, AccessShown) and set(past.values) == {"seats"}  # views have no past


def test_om153_a_view_refuses_a_past_instant() -> None:
    world = ViewWorld()
    world.advance(60)
    reply = world.run(ReadEntitlementValue(entitlement="calls", at=world.now - timedelta(1)))
    assert isinstance(reply, Rejected) and reply.kind is RejectionKind.INVALID
    assert reply.field == "at"
    assert world.run(ReadEntitlementValue(entitlement="calls", at=world.now)) == ValueShown(
        value=world.value("calls")
    )


@pytest.mark.parametrize("by", ["id", "feature key"])
def test_om157_writes_on_a_view_are_refused_read_only_and_write_nothing(by: str) -> None:
    world = ViewWorld()
    name = derived_id(world.sub.id, "calls") if by == "id" else "calls"
    replacement = CreateEntitlement(feature_key="calls", kind=EntitlementKind.BOOLEAN)
    commands: list[OpenMeterCommand] = [
        DeleteEntitlement(entitlement=name),
        ResetEntitlement(entitlement=name),
        IssueGrant(entitlement=name, amount=D(5), effective_at=world.now),
        OverrideEntitlement(entitlement=name, replacement=replacement),
    ]
    before = len(world.facts)
    for command in commands:
        reply = world.run(command)
        assert isinstance(reply, Rejected), (command, reply)
        assert reply.kind is RejectionKind.CONFLICT and reply.field == "entitlement"
        assert "read-only" in reply.message and str(world.sub.id) in reply.message
    assert len(world.facts) == before
    assert isinstance(world.run(DeleteEntitlement(entitlement="nope")), Rejected)  # still 404
