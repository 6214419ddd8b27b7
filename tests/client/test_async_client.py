"""The async client against the in-process app (httpx through Litestar's test client): the
same operations, typed answers and typed errors as the blocking client (RSV-46)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from allotment.client import AsyncClient, BadRequest, NotFound, UsageEvent

pytestmark = pytest.mark.anyio


async def _subscriber(client: AsyncClient, ref: str, plan_key: str) -> None:
    await client.create_customer(ref, first_name="Ada", last_name="L", email="ada@example.com")
    plan = next(p for p in await client.list_plans() if p.plan.key == plan_key)
    subscribed = await client.create_subscription(ref, plan.plan.id)
    if subscribed.invoice.status == "DUE":
        await client.mark_invoice_paid(subscribed.invoice.id)


async def test_the_async_client_round_trips_usage(async_client: AsyncClient) -> None:
    """ENT-26, EVT-43, INV-20: an event's units show in the check; the invoice reads back."""
    await _subscriber(async_client, "cust_async", "pro_monthly")
    event = UsageEvent(event_name="api_calls", customer_reference_id="cust_async",
                       usage_units=Decimal("7.25"), event_idempotency_key="e-1")  # fmt: skip
    assert (await async_client.ingest_event(event)).usage_limit_exceeded is None
    check = await async_client.check_entitlement("cust_async", "api_calls")
    assert check.usage is not None and check.usage.used == Decimal("7.25")
    [invoice] = await async_client.list_invoices("cust_async")
    assert invoice.status == "PAID" and invoice.currency == "USD"
    [pool] = await async_client.list_credit_pools("cust_async", transactions=True)
    assert pool.balance == Decimal(1000000) and pool.transactions is not None
    with pytest.raises(BadRequest, match="Stripe is not enabled"):  # STR-1: Stripe is off here
        await async_client.create_checkout_session(invoice.id)


async def test_the_async_client_raises_typed_errors(async_client: AsyncClient) -> None:
    """API-10, RSV-46: 404 and 400 with the field named."""
    with pytest.raises(NotFound):
        await async_client.get_customer("nobody")
    with pytest.raises(BadRequest) as raised:
        await async_client.simulate_usage("nobody", "api_calls", 0)
    assert raised.value.field == "track.usageUnits"
