"""The async client's holds against the in-process app: `async with` commits on leaving,
releases on an exception and on cancellation (RSV-41, RSV-43), and a denied reserve never
enters the block (RSV-42)."""

from __future__ import annotations

from decimal import Decimal

import anyio
import pytest

from allotment.client import AsyncClient, ReservationDenied

pytestmark = pytest.mark.anyio


async def _free_customer(client: AsyncClient, ref: str) -> None:
    await client.create_customer(ref, first_name="Ada", last_name="L", email="ada@example.com")
    plan = next(p for p in await client.list_plans() if p.plan.key == "free")
    await client.create_subscription(ref, plan.plan.id)


async def _used(client: AsyncClient, ref: str) -> tuple[Decimal, Decimal]:
    usage = (await client.check_entitlement(ref, "api_calls")).usage
    assert usage is not None
    return usage.used, usage.reserved or Decimal(0)


async def test_async_with_commits_the_units_set(async_client: AsyncClient) -> None:
    """RSV-41: leaving the block commits; `await reserve(...)` gives the same hold."""
    await _free_customer(async_client, "c1")
    async with async_client.reserve("c1", "api_calls", 100) as hold:
        assert await _used(async_client, "c1") == (Decimal(0), Decimal(100))
        hold.set_usage(Decimal("99.5"))
    assert hold.reservation.status == "COMMITTED"
    assert await _used(async_client, "c1") == (Decimal("99.5"), Decimal(0))
    awaited = await async_client.reserve("c1", "api_calls", 1)
    assert (await awaited.release()).status == "RELEASED"


async def test_an_exception_or_a_cancellation_releases(async_client: AsyncClient) -> None:
    """RSV-43: an error releases; so does a cancelled task, its release shielded."""
    await _free_customer(async_client, "c2")
    with pytest.raises(ValueError, match="bad prompt"):
        async with async_client.reserve("c2", "api_calls", 100) as failed:
            raise ValueError("bad prompt")
    assert failed.reservation.status == "RELEASED"
    entered = anyio.Event()
    holds = []

    async def call_the_model() -> None:
        async with async_client.reserve("c2", "api_calls", 100) as hold:
            holds.append(hold)
            entered.set()
            await anyio.sleep_forever()  # the model call, cancelled below

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(call_the_model)
        await entered.wait()
        tasks.cancel_scope.cancel()
    assert holds[0].reservation.status == "RELEASED"
    assert await _used(async_client, "c2") == (Decimal(0), Decimal(0))


async def test_a_denied_reserve_never_enters(async_client: AsyncClient) -> None:
    """RSV-42: over the free plan's 1,000, the block does not run and nothing is held."""
    await _free_customer(async_client, "c3")
    entered = []
    with pytest.raises(ReservationDenied) as denied:
        async with async_client.reserve("c3", "api_calls", 1001):
            entered.append(True)
    assert entered == [] and denied.value.decision.status == "DENIED"
    assert await async_client.list_reservations("c3") == []
