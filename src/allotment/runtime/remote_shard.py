"""A shard in another process, seen from the near end, without naming the transport.

The far end is `HostedShards` (runtime/hosted_shards.py): an `ActorSystem`'s shards answering
calls by method name with an `Answer`. The near end is a `Replica` per (host, environment),
reached by its router as a `RemoteMember` (catalog_versions.ShardMember) whose `RemoteShard`s
make every coroutine of the `Shard` protocol one call through a `ShardChannel`, stamped with
the router's catalog version. Ray is one channel (runtime/ray_shard.py, the only module
importing `ray`); keeping the rest here lets the tests use it without Ray.

The protocol's synchronous members (`catalog`, `price_table`, `customer_count`) cannot wait
for a remote call, so the near end keeps a replica: every answer carries the customer count,
and the catalog and prices whenever they changed since the version the caller last saw
(SCL-33). Single events are micro-batched per shard (SCL-34, runtime/event_batcher.py), and
so are single key claims (SCL-85).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from typing import Protocol, TypeVar, cast

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
from allotment.runtime.event_batcher import (
    BATCH_MAX,
    BATCH_WINDOW_S,
    Batcher,
    Event,
    EventBatcher,
)
from allotment.runtime.ports import (
    AuditRecord,
    CatalogChange,
    CustomerLookup,
    CustomerPage,
    CustomerSearch,
    KeyClaim,
    OmTarget,
    OmView,
    Projector,
    Shard,
)
from allotment.runtime.records import EvaluationContext

__all__ = (
    "Answer",
    "EnvironmentView",
    "RemoteMember",
    "RemoteShard",
    "Replica",
    "ShardChannel",
)

T = TypeVar("T")
R = TypeVar("R")


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


class ShardChannel(Protocol):
    """How the near end reaches a host. Raises `ShardUnavailable` when the host cannot answer
    now (it is restarting, or recovering from its journal), and what the host raised."""

    async def call(
        self, environment: str, method: str, args: tuple[object, ...], known: str,
        stamp: int | None,
    ) -> Answer: ...  # fmt: skip

    async def adopt(
        self, environment: str, version: int, change: Callable[[Shard], Awaitable[R]], known: str
    ) -> Answer: ...

    async def history(self, environment: str, method: str, args: tuple[object, ...]) -> object:
        """`HostedShards.history` on the host."""
        ...


class Replica:
    """What the near end holds of one remote shard of one environment: the channel, the view
    and customer count of its last answer, and the batchers of events and of key claims every
    stamp shares."""

    def __init__(
        self, channel: ShardChannel, environment: str, view: EnvironmentView,
        window_s: float = BATCH_WINDOW_S, batch_max: int = BATCH_MAX,
    ) -> None:  # fmt: skip
        self.channel = channel
        self.environment = environment
        self.view = view
        self.customers = 0
        self.batcher = EventBatcher(self._ingest_batch, window_s, batch_max)
        self.claims = Batcher[KeyClaim, bool](self._claim_keys, window_s, batch_max)

    def _take(self, answer: Answer) -> object:
        self.customers = answer.customers
        if answer.view is not None:
            self.view = answer.view
        return answer.result

    async def call(self, method: str, args: tuple[object, ...], stamp: int | None) -> object:
        known = self.view.version
        return self._take(await self.channel.call(self.environment, method, args, known, stamp))

    async def adopt(self, version: int, change: Callable[[Shard], Awaitable[R]]) -> R:
        answer = await self.channel.adopt(self.environment, version, change, self.view.version)
        return cast(R, self._take(answer))

    async def _ingest_batch(self, events: list[Event], stamp: int | None) -> list[Reply]:
        return cast(list[Reply], await self.call("ingest_batch", (events,), stamp))

    async def _claim_keys(self, claims: list[KeyClaim], stamp: int | None) -> list[bool]:
        return cast(list[bool], await self.call("claim_keys", (claims,), stamp))


class RemoteMember:
    """One remote shard as its router reaches it (`catalog_versions.ShardMember`)."""

    def __init__(self, replica: Replica) -> None:
        self.replica = replica
        self.shard = RemoteShard(replica, None)
        self._stamped = self.shard

    @property
    def catalog(self) -> Catalog:
        return self.replica.view.catalog  # as of this shard's last answer (SCL-33)

    @property
    def price_table(self) -> PriceTable:
        return self.replica.view.prices

    def customer_count(self) -> int:
        return self.replica.customers

    def stamped(self, version: int) -> Shard:
        if self._stamped.stamp != version:  # one object per version, not per call
            self._stamped = RemoteShard(self.replica, version)
        return self._stamped

    async def adopt(self, version: int, change: Callable[[Shard], Awaitable[R]]) -> R:
        return await self.replica.adopt(version, change)


class RemoteShard:
    """A `Shard` whose customers live behind `replica`'s channel; every call carries `stamp`
    (None: unchecked) for the host to refuse when its catalog is newer (SCL-14)."""

    __slots__ = ("_replica", "stamp")

    def __init__(self, replica: Replica, stamp: int | None) -> None:
        self._replica = replica
        self.stamp = stamp

    async def _call(self, method: str, *args: object) -> object:
        return await self._replica.call(method, args, self.stamp)

    @property
    def catalog(self) -> Catalog:
        return self._replica.view.catalog  # as of this shard's last answer (SCL-33)

    @property
    def price_table(self) -> PriceTable:
        return self._replica.view.prices

    def customer_count(self) -> int:
        return self._replica.customers

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
        return await self._replica.batcher.submit((lookup, event, feature_uuid), self.stamp)

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

    async def claim_keys(self, claims: list[KeyClaim]) -> list[bool]:
        if len(claims) == 1:  # one event's claim: shares a call with others' (SCL-85)
            return [await self._replica.claims.submit(claims[0], self.stamp)]
        return cast(list[bool], await self._call("claim_keys", claims))

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

    async def find_customers(
        self, search: CustomerSearch, projector: Projector[T]
    ) -> CustomerPage[T]:
        return cast(CustomerPage[T], await self._call("find_customers", search, projector))

    async def recent_denials(self, lookup: CustomerLookup, limit: int) -> list[AuditRecord]:
        return cast(list[AuditRecord], await self._call("recent_denials", lookup, limit))

    async def openmeter_turn(
        self, target: OmTarget, command: OpenMeterCommand | None, view: OmView[T]
    ) -> T | Rejected:
        return cast(T | Rejected, await self._call("openmeter_turn", target, command, view))

    async def credit_note(self, command: CreditNoteCommand) -> Reply:
        return cast(Reply, await self._call("credit_note", command))
