"""The blocking `Client` against a real `allotment serve` on its demo catalog: every Tanso
client operation round-trips into typed models, and failures raise typed errors carrying the
server's status, message and field (RSV-46)."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from allotment.client import BadRequest, Client, Conflict, NotFound, Unauthorized, UsageEvent
from allotment.client.models import PlanWithFeatures
from tests.reliability.server import Server


def _plan(client: Client, key: str) -> PlanWithFeatures:
    return next(plan for plan in client.list_plans() if plan.plan.key == key)


def _customer(client: Client, plan_key: str = "free") -> str:
    """A new customer with an active subscription to `plan_key` (its invoice paid)."""
    ref = f"cust_{uuid.uuid4().hex[:12]}"
    client.create_customer(ref, first_name="Ada", last_name="Lovelace", email="ada@example.com")
    subscribed = client.create_subscription(ref, _plan(client, plan_key).plan.id)
    if subscribed.invoice.status == "DUE":
        client.mark_invoice_paid(subscribed.invoice.id)
    return ref


def test_customers_plans_and_subscriptions_round_trip(client: Client) -> None:
    """CUS-12, SUB-1: the customer reads back with its subscription, typed."""
    plans = client.list_plans()
    assert {"free", "starter_monthly", "pro_monthly"} <= {p.plan.key for p in plans}
    pro = _plan(client, "pro_monthly")
    assert pro.plan.price_amount == Decimal(49)
    api_calls = next(f for f in pro.features if f.key == "api_calls")
    assert api_calls.pricing is not None and api_calls.pricing.max_usage == Decimal(100000)
    ref = _customer(client, "pro_monthly")
    customer = client.get_customer(ref)
    assert customer.external_client_customer_id == ref
    [subscription] = customer.subscriptions
    assert subscription.is_active and subscription.plan is not None
    assert subscription.plan.key == "pro_monthly"
    [invoice] = client.list_invoices(ref)
    assert invoice.status == "PAID" and invoice.amount == Decimal(49)


def test_subscription_changes(client: Client) -> None:
    """SUB-40..SUB-70 through the client: schedule and revert a cancellation and a downgrade."""
    ref = _customer(client, "pro_monthly")
    [subscription] = client.get_customer(ref).subscriptions
    client.cancel_subscription(subscription.id)
    assert client.get_customer(ref).subscriptions[0].cancel_mode == "END_OF_PERIOD"
    client.revert_cancellation(subscription.id)
    assert client.get_customer(ref).subscriptions[0].cancel_mode is None
    client.change_plan(subscription.id, _plan(client, "starter_monthly").plan.id, "DOWNGRADE")
    assert client.get_customer(ref).subscriptions[0].scheduled_change is not None
    client.cancel_scheduled_plan_change(subscription.id)
    assert client.get_customer(ref).subscriptions[0].scheduled_change is None


def test_entitlements_events_and_pools(client: Client) -> None:
    """ENT-26, SIM-2, EVT-43, CRD-50: check, simulate, ingest (one and a batch), read pools."""
    ref = _customer(client, "starter_monthly")
    check = client.check_entitlement(ref, "api_calls")
    assert check.is_allowed and check.usage is not None and check.usage.limit == Decimal(10000)
    simulated = client.simulate_usage(ref, "api_calls", 10001)
    assert simulated.simulation is not None and simulated.simulation.would_exceed_limit
    evaluated = client.evaluate_entitlement(ref, "api_calls", flow_id="flow-1")
    assert evaluated.flow_id == "flow-1"
    client.ingest_event(UsageEvent(event_name="api_calls", customer_reference_id=ref,
                                   feature_key="api_calls", usage_units=Decimal("2.5"),
                                   event_idempotency_key=f"{ref}-1"))  # fmt: skip
    results = client.ingest_events([
        UsageEvent(event_name="api_calls", customer_reference_id=ref, usage_units=3,
                   event_idempotency_key=f"{ref}-2"),
        UsageEvent(event_name="api_calls", customer_reference_id=ref, usage_units=-1,
                   event_idempotency_key=f"{ref}-3"),
    ])  # fmt: skip
    assert [r.status for r in results] == [201, 400], results
    assert results[1].error is not None and "usageUnits" in results[1].error.message
    usage = client.check_entitlement(ref, "api_calls").usage
    assert usage is not None and usage.used == Decimal("5.5")
    [pool] = client.list_credit_pools(ref, grants=True)
    assert pool.denomination == "TOKENS" and pool.total_granted == Decimal(100000)
    assert pool.grants is not None and len(pool.grants) == 1


def test_a_bad_field_raises_bad_request_naming_it(client: Client) -> None:
    """API-10, RSV-46: the 400's field is the one the server names."""
    ref = _customer(client)
    with pytest.raises(BadRequest) as raised:
        client.simulate_usage(ref, "api_calls", -1)
    assert raised.value.status == 400 and raised.value.field == "track.usageUnits"
    with pytest.raises(BadRequest) as raised:
        client.cancel_subscription(uuid.uuid4(), mode="SOMETIME")  # type: ignore[arg-type]
    assert raised.value.field == "cancelMode"


def test_not_found_conflict_and_unauthorized_are_typed(client: Client, server: Server) -> None:
    """RSV-46: 404, 409 and 401 each raise their class with the server's message."""
    with pytest.raises(NotFound) as missing:
        client.get_customer("no-such-customer")
    assert missing.value.message == "Customer not found."
    ref = _customer(client)
    with pytest.raises(Conflict):
        client.create_customer(ref, first_name="A", last_name="B", email="a@example.com")
    with Client(server.url, "sk_test_" + "x" * 32) as stranger, pytest.raises(Unauthorized):
        stranger.list_plans()


def test_an_odd_reference_id_stays_one_path_segment(client: Client) -> None:
    """A `/` or `?` in a customer id is quoted, not read as a path or a query."""
    with pytest.raises(NotFound):
        client.get_customer("a/b?c")
