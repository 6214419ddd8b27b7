"""Webhook fixtures: a real receiver on 127.0.0.1, a webhook service beside an actor system
on the durable path, and the whole app wired as `serve` wires it (`hooked`), all on the manual
clock, which drives the retries."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from litestar.testing import TestClient

from allotment.config import Settings
from allotment.domain.commands import RecordUsage
from allotment.domain.facts import Fact, UsageRecorded
from allotment.domain.state import Profile
from allotment.http.app import create_app
from allotment.http.fast_path import FastPath
from allotment.persistence.keys import KeyStore
from allotment.runtime.clock import ManualClock
from allotment.runtime.ports import CustomerLookup
from allotment.runtime.sharded_system import ShardedSystem
from allotment.runtime.system import ActorSystem
from allotment.webhooks.book import Message
from allotment.webhooks.dispatcher import Renderer
from allotment.webhooks.payloads import OutboundEvent
from allotment.webhooks.protocol_sender import ProtocolSender
from allotment.webhooks.service import WebhookService
from allotment.wiring import build_system, shard_logs, webhook_service
from tests.conftest import KEY
from tests.http.conftest import check_envelope
from tests.webhooks.receiver import Receiver

USAGE_TYPE = "entitlement.usage.threshold"


def usage_renderer(
    customer_id: uuid.UUID, external_id: str | None, facts: Sequence[Fact]
) -> list[OutboundEvent]:
    """A stand-in for issue 15 item 3's renderer (wh-events): one event per usage fact, its id
    derived from the event's idempotency key as a real notification's is from its fact, so
    the pipeline (durable first, dedupe on replay, order) is tested on journal records."""
    return [
        OutboundEvent(
            id=f"evt_{fact.idempotency_key}",
            type=USAGE_TYPE,
            timestamp=fact.occurred_at,
            data={
                "customerId": str(customer_id),
                "externalId": external_id,
                "key": fact.idempotency_key,
                "units": str(fact.units),
            },
        )
        for fact in facts
        if isinstance(fact, UsageRecorded)
    ]


@contextmanager
def verified_receiver() -> Iterator[Receiver]:
    """A receiver on 127.0.0.1; when it closes, every request it got must have verified with
    standardwebhooks under the secrets the test gave it (a test that forgets to check
    `unverified` still fails on a bad signature)."""
    receiver = Receiver()
    try:
        yield receiver
    finally:
        receiver.close()
    receiver.assert_verified()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """The test's receiver, held to `verified_receiver`'s rule."""
    with verified_receiver() as receiver:
        yield receiver


@pytest.fixture(params=[1, 3], ids=["one", "shards3"])
def shards(request: pytest.FixtureRequest) -> int:
    """Every delivery scenario with one shard, and over three (docs/scale-out.md SCL-64):
    each shard its own outbox and message log, fed from its own journal."""
    shards: int = request.param
    return shards


@dataclass
class Rig:
    service: WebhookService
    system: ActorSystem
    clock: ManualClock
    settings: Settings

    def _members(self) -> list[ActorSystem]:
        return self.system.members if isinstance(self.system, ShardedSystem) else [self.system]

    async def logged(self) -> None:
        """Until every shard's outbox logged every record its journal holds."""
        for k, member in enumerate(self._members()):
            position = member.shard("test").journal.position
            await self.service.outbox("test", k).logged_through(position)

    def message(self, endpoint_id: str, message_id: str) -> Message | None:
        """The message, whichever shard's outbox holds it."""
        books = [outbox.book for outbox in self.service.outboxes("test")]
        return next((b.messages[endpoint_id, message_id] for b in books
                     if (endpoint_id, message_id) in b.messages), None)  # fmt: skip

    def message_logs(self) -> list[Path]:
        return [path / "test" / "messages.log" for path in shard_logs(self.settings, True)
                if path is not None]  # fmt: skip

    async def ingest(self, key: str, external_id: str = "acme") -> None:
        shard = self.system.route("test")
        lookup = CustomerLookup(external_id=external_id)
        usage = RecordUsage(idempotency_key=key, event_name="call", occurred_at=self.clock.now())
        await shard.ingest(lookup, usage, None)

    async def customer(self, external_id: str = "acme") -> None:
        await self.system.route("test").create_customer(external_id, Profile())

    def advance(self, seconds: float) -> None:
        self.clock.advance_to(self.clock.now() + timedelta(seconds=seconds))
        self.service.wake()


def make_rig(
    data_dir: Path,
    clock: ManualClock,
    render: Renderer | None = usage_renderer,
    backlog_max: int = 10_000,
    shards: int = 1,
) -> Rig:
    settings = Settings(clock="manual", data_dir=data_dir, durability="write", shards=shards)
    service = WebhookService(
        data_dir / "webhooks", clock.now, ProtocolSender(allow_private=True), render,
        allow_private=True, backlog_max=backlog_max, shard_logs=shard_logs(settings, True),
    )  # fmt: skip
    system = build_system(settings, clock, webhooks=service)
    return Rig(service, system, clock, settings)


@asynccontextmanager
async def running(rig: Rig) -> AsyncIterator[Rig]:
    async with rig.service.running(), rig.system.running():
        yield rig


def webhook_app(
    data_dir: Path, clock: ManualClock, keys: KeyStore, *, private: bool, shards: int = 1,
    access_log: bool = False,
) -> FastPath:  # fmt: skip
    """The app with the webhook service `serve` wires (the real renderer, `outbound_events`,
    and the real sender), on the durable path and the manual clock."""
    settings = Settings(
        clock="manual", data_dir=data_dir, durability="write", allow_private_webhooks=private,
        shards=shards, access_log=access_log,
    )  # fmt: skip
    webhooks = webhook_service(settings)
    system = build_system(settings, clock, webhooks=webhooks)
    webhooks.now = clock.now
    return create_app(settings, system, keys, webhooks=webhooks)


@pytest.fixture
def hooked(
    tmp_path: Path, clock: ManualClock, keys: KeyStore, shards: int
) -> Iterator[TestClient[FastPath]]:
    """The app with one shard, and over three (SCL-64..SCL-66: endpoints the environment's,
    each shard's notifications from its own outbox), with the all-scopes sandbox key."""
    app = webhook_app(tmp_path, clock, keys, private=True, shards=shards)
    with TestClient(app, base_url="http://testserver.local") as client:
        client.headers["Authorization"] = f"Bearer {KEY}"
        client.event_hooks["response"].append(check_envelope)
        yield client
