"""A shard in another process, seen from both ends, without naming the transport.

`HostedShards` is the far end: an `ActorSystem`'s shards answering calls by method name.
`RemoteShard` is the near end: a `Shard` whose every coroutine is one call through a
`ShardChannel`. Ray is one channel (runtime/ray_shard.py, the only module importing `ray`);
keeping the rest here lets the default server and the tests use it without Ray.

The protocol's synchronous members (`catalog`, `price_table`, `customer_count`) cannot wait
for a remote call, so the near end keeps a replica: every answer carries the customer count,
and the catalog and prices whenever they changed since the version the caller last saw
(SCL-33). Single events are micro-batched per shard (SCL-34): at most `window_s` and
`batch_max` events per call, so a call carries many.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from typing import Protocol, TypeVar, cast

import anyio
import msgspec

from allotment.domain.catalog import Catalog
from allotment.domain.catalog_facts import CatalogUpdated
from allotment.domain.commands import (
    Command,
    CommitReservation,
    ExtendReservation,
    Preflight,
    RecordUsage,
    ReleaseReservation,
    Reserve,
)
from allotment.domain.cost import PriceTable
from allotment.domain.credit_note_commands import CreditNoteCommand
from allotment.domain.meters import CloudEvent
from allotment.domain.om_commands import OpenMeterCommand
from allotment.domain.payment_records import PaymentRecord
from allotment.domain.replies import Decision, Rejected, Reply
from allotment.domain.state import CustomerState, OpenMeterDetails, Profile
from allotment.runtime.ports import CatalogChange, CustomerLookup, OmTarget, OmView, Projector
from allotment.runtime.records import EvaluationContext
from allotment.runtime.system import ActorSystem

__all__ = (
    "Answer",
    "EnvironmentView",
    "EventBatcher",
    "HostedShards",
    "RemoteShard",
    "ShardChannel",
)

T = TypeVar("T")
Event = tuple[CustomerLookup, RecordUsage, uuid.UUID | None]
BATCH_WINDOW_S = 0.001  # SCL-34: the longest an event waits for others to share its call
BATCH_MAX = 256  # SCL-34: events per call

# What a remote caller may invoke: the `Shard` protocol's coroutines, and nothing else.
REMOTE_METHODS = frozenset(
    {
        "create_customer", "command", "command_on_owner", "evaluate", "ingest",
        "ingest_batch", "read", "read_on_owner", "reserve", "settle", "read_reservation",
        "upsert_catalog", "replace_prices", "record_unapplied_payment",
        "list_unapplied_payments", "ingest_cloud_events", "change_catalog",
        "create_openmeter_customer", "update_openmeter_customer", "all_customers",
        "openmeter_turn", "credit_note",
    }
)  # fmt: skip


class EnvironmentView(msgspec.Struct, frozen=True, kw_only=True):
    """What the near end replicates of an environment: its catalog and prices, as of
    `version` (an epoch per host process and a counter, so a restarted host never reuses a
    version the near end saw before the restart)."""

    version: str
    catalog: Catalog
    prices: PriceTable


class Answer(msgspec.Struct, frozen=True, kw_only=True):
    """A remote call's result, the environment's customer count after it, and its view when
    that changed since the version the caller sent."""

    result: object
    customers: int
    view: EnvironmentView | None = None


class HostedShards:
    """The far end: calls by method name on the shards of `system` (a Ray actor's)."""

    def __init__(self, system: ActorSystem) -> None:
        self.system = system
        self._epoch = uuid.uuid4().hex[:12]
        self._counter = 0
        self._seen: dict[str, tuple[Catalog, PriceTable, str]] = {}

    def view(self, environment: str) -> EnvironmentView:
        """The environment's current view, with a new version whenever its catalog or price
        table is another object than last time (both are immutable: a change replaces them)."""
        shard = self.system.shard(environment)
        seen = self._seen.get(environment)
        if seen is None or seen[0] is not shard.catalog or seen[1] is not shard.price_table:
            self._counter += 1
            seen = (shard.catalog, shard.price_table, f"{self._epoch}:{self._counter}")
            self._seen[environment] = seen
        return EnvironmentView(version=seen[2], catalog=seen[0], prices=seen[1])

    async def call(
        self, environment: str, method: str, args: tuple[object, ...], known: str
    ) -> Answer:
        """Run `method` of the environment's shard. Exceptions travel to the caller as they
        are (ShardUnavailable, Overloaded, CatalogInvalid ...): the near end re-raises them."""
        if method not in REMOTE_METHODS:
            raise ValueError(f"{method!r} is not a shard call")
        shard = self.system.route(environment)
        result = await getattr(shard, method)(*args)
        view = self.view(environment)
        return Answer(
            result=result,
            customers=shard.customer_count(),
            view=view if view.version != known else None,
        )


class ShardChannel(Protocol):
    """How the near end reaches a host. Raises `ShardUnavailable` when the host cannot answer
    now (it is restarting, or recovering from its journal), and what the host raised."""

    async def call(
        self, environment: str, method: str, args: tuple[object, ...], known: str
    ) -> Answer: ...


class _Batch:
    __slots__ = ("done", "error", "events", "full", "replies")

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.full = anyio.Event()
        self.done = anyio.Event()
        self.replies: list[Reply] = []
        self.error: Exception | None = None


class EventBatcher:
    """Single events gathered into `ingest_batch` calls (SCL-34). The first event of a batch
    leads it: it waits until `window_s` passed or `batch_max` events joined, sends them, and
    hands each its reply. No task of its own: a batcher idles at no cost."""

    def __init__(
        self,
        send: Callable[[list[Event]], Awaitable[list[Reply]]],
        window_s: float = BATCH_WINDOW_S,
        batch_max: int = BATCH_MAX,
    ) -> None:
        self._send = send
        self._window_s = window_s
        self._batch_max = batch_max
        self._open: _Batch | None = None
        self.calls = 0  # batches sent (the bench reports events per call)
        self.events = 0

    async def submit(self, event: Event) -> Reply:
        batch = self._open
        leads = batch is None
        if batch is None:
            batch = self._open = _Batch()
        index = len(batch.events)
        batch.events.append(event)
        if len(batch.events) >= self._batch_max:
            self._open = None  # the next event starts a new batch
            batch.full.set()
        if leads:
            # Shielded: the others wait on this batch, so a leader whose client went away
            # still sends it (the window is bounded, and so is the call: ShardChannel).
            with anyio.CancelScope(shield=True):
                await self._lead(batch)
        else:
            await batch.done.wait()
        if batch.error is not None:
            raise batch.error
        return batch.replies[index]

    async def _lead(self, batch: _Batch) -> None:
        with anyio.move_on_after(self._window_s):
            await batch.full.wait()
        if self._open is batch:
            self._open = None
        self.calls += 1
        self.events += len(batch.events)
        try:
            batch.replies = await self._send(batch.events)
        except Exception as error:  # every event of the batch answers with it
            batch.error = error
        finally:
            batch.done.set()


class RemoteShard:
    """A `Shard` whose customers live behind `channel`, in environment `environment`."""

    def __init__(
        self,
        channel: ShardChannel,
        environment: str,
        view: EnvironmentView,
        *,
        window_s: float = BATCH_WINDOW_S,
        batch_max: int = BATCH_MAX,
    ) -> None:
        self._channel = channel
        self._environment = environment
        self._view = view
        self._customers = 0
        self.batcher = EventBatcher(self.ingest_batch, window_s, batch_max)

    async def _call(self, method: str, *args: object) -> object:
        answer = await self._channel.call(self._environment, method, args, self._view.version)
        self._customers = answer.customers
        if answer.view is not None:
            self._view = answer.view
        return answer.result

    @property
    def catalog(self) -> Catalog:
        return self._view.catalog  # as of this shard's last answer (SCL-33)

    @property
    def price_table(self) -> PriceTable:
        return self._view.prices

    def customer_count(self) -> int:
        return self._customers

    async def create_customer(self, external_id: str, profile: Profile) -> Reply:
        return cast(Reply, await self._call("create_customer", external_id, profile))

    async def command(self, lookup: CustomerLookup, command: Command) -> Reply:
        return cast(Reply, await self._call("command", lookup, command))

    async def command_on_owner(self, entity_id: uuid.UUID, command: Command, missing: str) -> Reply:
        return cast(Reply, await self._call("command_on_owner", entity_id, command, missing))

    async def evaluate(
        self, external_id: str, feature_key: str, requested: Decimal | None,
        audit: EvaluationContext,
    ) -> Decision:  # fmt: skip
        answer = await self._call("evaluate", external_id, feature_key, requested, audit)
        return cast(Decision, answer)

    async def ingest(
        self, lookup: CustomerLookup, event: RecordUsage, feature_uuid: uuid.UUID | None
    ) -> Reply:
        return await self.batcher.submit((lookup, event, feature_uuid))

    async def ingest_batch(self, events: list[Event]) -> list[Reply]:
        return cast(list[Reply], await self._call("ingest_batch", events))

    async def read(self, lookup: CustomerLookup, projector: Projector[T]) -> T | None:
        return cast(T | None, await self._call("read", lookup, projector))

    async def read_on_owner(self, entity_id: uuid.UUID, projector: Projector[T]) -> T | None:
        return cast(T | None, await self._call("read_on_owner", entity_id, projector))

    async def reserve(self, lookup: CustomerLookup, command: Reserve | Preflight) -> Reply:
        return cast(Reply, await self._call("reserve", lookup, command))

    async def settle(
        self,
        reservation_id: str,
        command: CommitReservation | ReleaseReservation | ExtendReservation,
        customer: CustomerLookup | None,
    ) -> Reply:
        return cast(Reply, await self._call("settle", reservation_id, command, customer))

    async def read_reservation(
        self, reservation_id: str, customer: CustomerLookup | None, projector: Projector[T]
    ) -> T | Rejected:
        answer = await self._call("read_reservation", reservation_id, customer, projector)
        return cast(T | Rejected, answer)

    async def upsert_catalog(self, update: CatalogUpdated) -> Catalog:
        return cast(Catalog, await self._call("upsert_catalog", update))

    async def replace_prices(self, table: PriceTable) -> PriceTable:
        return cast(PriceTable, await self._call("replace_prices", table))

    async def record_unapplied_payment(self, record: PaymentRecord) -> PaymentRecord:
        return cast(PaymentRecord, await self._call("record_unapplied_payment", record))

    async def list_unapplied_payments(self) -> list[PaymentRecord]:
        return cast(list[PaymentRecord], await self._call("list_unapplied_payments"))

    async def ingest_cloud_events(self, events: list[CloudEvent]) -> int:
        return cast(int, await self._call("ingest_cloud_events", events))

    async def change_catalog(self, change: CatalogChange) -> Catalog:
        return cast(Catalog, await self._call("change_catalog", change))

    async def create_openmeter_customer(
        self, key: str | None, details: OpenMeterDetails, projector: Projector[T]
    ) -> T | Rejected:
        answer = await self._call("create_openmeter_customer", key, details, projector)
        return cast(T | Rejected, answer)

    async def update_openmeter_customer(
        self,
        lookup: CustomerLookup,
        change: Callable[[CustomerState, datetime], OpenMeterDetails],
        projector: Projector[T],
    ) -> T | Rejected:
        answer = await self._call("update_openmeter_customer", lookup, change, projector)
        return cast(T | Rejected, answer)

    async def all_customers(self, projector: Projector[T]) -> list[T]:
        return cast(list[T], await self._call("all_customers", projector))

    async def openmeter_turn(
        self, target: OmTarget, command: OpenMeterCommand | None, view: OmView[T]
    ) -> T | Rejected:
        return cast(T | Rejected, await self._call("openmeter_turn", target, command, view))

    async def credit_note(self, command: CreditNoteCommand) -> Reply:
        return cast(Reply, await self._call("credit_note", command))
