"""Webhooks when the shards are other processes (docs/scale-out.md SCL-67..SCL-69), without
Ray: two shard hosts built as a Ray actor builds them (`shard_host_system`, each with its own
webhook service under its own directory), the front door's `RemoteWebhooks` reaching them
through a channel that pickles both ways, and a receiver verifying every delivery with the
official `standardwebhooks`."""

from __future__ import annotations

import pickle
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

from allotment.config import Settings
from allotment.domain.commands import RecordUsage, Subscribe
from allotment.domain.state import Profile
from allotment.runtime.hosted_shards import HostedShards
from allotment.runtime.ports import CustomerLookup
from allotment.runtime.remote_shard import RemoteMember, Replica
from allotment.runtime.sharding import ShardRouter
from allotment.webhooks.ports import EndpointChange
from allotment.webhooks.remote import HostCall, RemoteWebhooks
from allotment.wiring import shard_host_system
from tests.scale_out.test_remote_shard import DirectChannel
from tests.waiting import BOUND_S, wait_until_async
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.anyio
THRESHOLD = "entitlement.usage.threshold"
CUSTOMERS = ("a1", "acme")  # on shard 0 and shard 1 of two


def _host_call(hosted: HostedShards) -> HostCall:
    async def call(method: str, args: tuple[object, ...]) -> Any:
        try:  # both ways as a process boundary ships them
            answer = await hosted.webhooks(method, pickle.loads(pickle.dumps(args)))
        except Exception as error:
            raise pickle.loads(pickle.dumps(error)) from None
        return pickle.loads(pickle.dumps(answer))

    return call


@asynccontextmanager
async def _hosts(tmp_path: Path) -> AsyncIterator[list[HostedShards]]:
    settings = Settings(clock="manual", data_dir=tmp_path, durability="write", shards=2,
                        allow_private_webhooks=True)  # fmt: skip
    systems = [shard_host_system(settings, k) for k in range(2)]
    async with AsyncExitStack() as stack:
        for system in systems:  # as ShardHost runs them: the webhook service first
            assert system.webhooks is not None
            await stack.enter_async_context(system.webhooks.running())
            await stack.enter_async_context(system.running())
        yield [HostedShards(system) for system in systems]


async def _delivered(receiver: Receiver, count: int) -> None:
    with anyio.fail_after(BOUND_S):
        await wait_until_async(lambda: len(receiver.accepted()) >= count, f"{count} deliveries")


async def test_scl67_every_host_delivers_its_shards_notifications_to_the_environments_endpoint(
    tmp_path: Path, receiver: Receiver
) -> None:
    """SCL-67..SCL-69: an endpoint created through the front door is held by both hosts (in
    each one's own directory); each customer's thresholds are delivered by its own host,
    signed; the feed pages through both hosts' events; messages are listed newest first over
    both; a rotated secret and a PATCH reach every host; a resend goes to the host holding
    the message, with the same webhook-id."""
    async with _hosts(tmp_path) as hosts:
        calls = [_host_call(h) for h in hosts]
        webhooks = RemoteWebhooks(calls)
        router = ShardRouter("test", [RemoteMember(Replica(DirectChannel(h), "test",
                                                           h.view("test"))) for h in hosts])  # fmt: skip
        endpoint = await webhooks.create_endpoint("test", receiver.url, (THRESHOLD,), "ops")
        receiver.secrets = [endpoint.secret]
        for k in range(len(hosts)):
            assert await calls[k]("get_endpoint", ("test", endpoint.id)) == endpoint
            assert endpoint.id in (tmp_path / "shards" / str(k) / "webhooks" / "endpoints.json"
                                   ).read_text()  # fmt: skip
        now = hosts[0].system.clock.now()  # a host's clock starts at the real time
        plan = router.catalog.plan_by_key("free")
        assert plan is not None
        for customer in CUSTOMERS:
            await router.create_customer(customer, Profile())
            await router.command(CustomerLookup(external_id=customer), Subscribe(plan_id=plan.id))
            for n, units in enumerate((850, 150)):  # 80% then 100% of 1000 calls
                usage = RecordUsage(idempotency_key=f"{customer}{n}", event_name="api_calls",
                                    occurred_at=now, units=Decimal(units))  # fmt: skip
                await router.ingest(CustomerLookup(external_id=customer), usage, None)
        await _delivered(receiver, 4)
        assert receiver.unverified == []
        fed = [len(await call("feed", ("test", 0, frozenset({THRESHOLD}), 10))) for call in calls]
        assert fed == [2, 2]  # each host fed from its own journal
        paged: list[str] = []
        cursor = 0
        while page := await webhooks.feed("test", cursor, frozenset({THRESHOLD}), 3):
            paged.extend(r.event.id for r in page)
            cursor = page[-1].seq
        assert sorted(paged) == sorted(d.id for d in receiver.accepted())
        assert not await webhooks.feed_gap("test", cursor)
        listed = await webhooks.messages("test", endpoint.id, "delivered", 10)
        assert sorted(m.event.id for m in listed) == sorted(paged)
        rotated = await webhooks.rotate_secret("test", endpoint.id)
        changed = await webhooks.update_endpoint("test", endpoint.id, EndpointChange(
            description="renamed"))  # fmt: skip
        assert changed.description == "renamed" and changed.secret == rotated.secret
        copy = await calls[1]("get_endpoint", ("test", endpoint.id))
        assert msgspec.structs.replace(copy, updated_at=None) == msgspec.structs.replace(
            changed, updated_at=None
        )
        receiver.secrets = [endpoint.secret, rotated.secret]
        on_host_1 = await calls[1]("messages", ("test", endpoint.id, None, 1))
        resent = await webhooks.resend("test", endpoint.id, on_host_1[0].event.id)
        await _delivered(receiver, 5)
        assert receiver.accepted()[-1].id == resent.event.id
        assert set(receiver.accepted()[-1].verified_by) == {endpoint.secret, rotated.secret}
