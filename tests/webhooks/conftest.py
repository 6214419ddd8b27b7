"""Webhook fixtures: a real receiver on 127.0.0.1, and a webhook service beside an actor
system on the durable path, both on the manual clock, which drives the retries."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from allotment.config import Settings
from allotment.domain.commands import RecordUsage
from allotment.domain.facts import Fact, UsageRecorded
from allotment.domain.state import Profile
from allotment.runtime.clock import ManualClock
from allotment.runtime.ports import CustomerLookup
from allotment.runtime.system import ActorSystem
from allotment.webhooks.dispatcher import Renderer
from allotment.webhooks.payloads import OutboundEvent
from allotment.webhooks.pooled_sender import PooledSender
from allotment.webhooks.service import WebhookService
from allotment.wiring import build_system
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


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


@dataclass
class Rig:
    service: WebhookService
    system: ActorSystem
    clock: ManualClock

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
) -> Rig:
    settings = Settings(clock="manual", data_dir=data_dir, durability="write")
    service = WebhookService(
        data_dir / "webhooks", clock.now, PooledSender(allow_private=True), render,
        allow_private=True, backlog_max=backlog_max,
    )  # fmt: skip
    system = build_system(settings, clock, webhooks=service)
    return Rig(service, system, clock)


@asynccontextmanager
async def running(rig: Rig) -> AsyncIterator[Rig]:
    async with rig.service.running(), rig.system.running():
        yield rig
