"""`QueuedShard`: a `Shard` reached only through a bounded mailbox, as a shard living in another
process (a Ray actor) is reached. It proves the front door needs nothing but the protocol:
the suite's HTTP tests run against it on demand (`ALLOTMENT_TEST_SYSTEMS=...,queued`,
tests/conftest.py; the default runs them over Ray's real shards instead, "ray3").

Each call is a message; the shard's own task takes messages in order and starts each as a task
of its own, so calls for different customers overlap as they do on a local shard, and the
order in which turns begin is the order of the mailbox.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

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

__all__ = ("QueuedShard", "ShardStopped")

T = TypeVar("T")
MAILBOX_SIZE = 1024  # calls waiting for the shard's task; senders wait beyond it


class ShardStopped(RuntimeError):
    """The shard's task ended before answering (the server is shutting down)."""


class _Call(Generic[T]):
    __slots__ = ("_done", "_error", "_invoke", "_value")

    def __init__(self, invoke: Callable[[Shard], Awaitable[T]]) -> None:
        self._invoke = invoke
        self._done = anyio.Event()
        self._value: T | None = None
        self._error: BaseException | None = None

    async def run(self, shard: Shard) -> None:
        try:
            self._value = await self._invoke(shard)
        except Exception as error:  # the caller raises it, as a remote call would
            self._error = error
        except BaseException:  # cancelled: the server is stopping
            self._error = ShardStopped("the shard stopped before answering")
            raise
        finally:
            self._done.set()

    def abandon(self) -> None:
        self._error = ShardStopped("the shard stopped before answering")
        self._done.set()

    async def result(self) -> T:
        await self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]  # set by run() when no error


class QueuedShard:
    """Forwards every call of the `Shard` protocol through a mailbox to `resolve()`, the shard
    currently serving (it changes when a failed shard is rebuilt)."""

    def __init__(self, resolve: Callable[[], Shard], mailbox_size: int = MAILBOX_SIZE) -> None:
        self._resolve = resolve
        self._send: MemoryObjectSendStream[_Call[Any]]
        self._receive: MemoryObjectReceiveStream[_Call[Any]]
        self._send, self._receive = anyio.create_memory_object_stream[_Call[Any]](mailbox_size)

    async def run(self) -> None:
        """The shard's task: runs until cancelled; calls still queued then are abandoned."""
        try:
            async with anyio.create_task_group() as tg:
                async for call in self._receive:
                    tg.start_soon(call.run, self._resolve())
        finally:
            while True:
                try:
                    self._receive.receive_nowait().abandon()
                except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                    break

    async def _ask(self, invoke: Callable[[Shard], Awaitable[T]]) -> T:
        call = _Call(invoke)
        await self._send.send(call)
        return await call.result()

    # -- the Shard protocol --------------------------------------------------------------------

    @property
    def catalog(self) -> Catalog:
        return self._resolve().catalog  # a replica's read: no turn involved

    def customer_count(self) -> int:
        return self._resolve().customer_count()

    async def create_customer(self, external_id: str, profile: Profile) -> Reply:
        return await self._ask(lambda s: s.create_customer(external_id, profile))

    async def command(self, lookup: CustomerLookup, command: Command) -> Reply:
        return await self._ask(lambda s: s.command(lookup, command))

    async def command_on_owner(self, entity_id: uuid.UUID, command: Command, missing: str) -> Reply:
        return await self._ask(lambda s: s.command_on_owner(entity_id, command, missing))

    async def evaluate(
        self,
        external_id: str,
        feature_key: str,
        requested: Decimal | None,
        audit: EvaluationContext,
    ) -> Decision:
        return await self._ask(lambda s: s.evaluate(external_id, feature_key, requested, audit))

    async def ingest(
        self, lookup: CustomerLookup, event: RecordUsage, feature_uuid: uuid.UUID | None
    ) -> Reply:
        return await self._ask(lambda s: s.ingest(lookup, event, feature_uuid))

    async def ingest_batch(
        self, events: list[tuple[CustomerLookup, RecordUsage, uuid.UUID | None]]
    ) -> list[Reply]:
        return await self._ask(lambda s: s.ingest_batch(events))

    async def read(self, lookup: CustomerLookup, projector: Projector[T]) -> T | None:
        return await self._ask(lambda s: s.read(lookup, projector))

    async def read_on_owner(self, entity_id: uuid.UUID, projector: Projector[T]) -> T | None:
        return await self._ask(lambda s: s.read_on_owner(entity_id, projector))

    async def reserve(self, lookup: CustomerLookup, command: Reserve | Preflight) -> Reply:
        return await self._ask(lambda s: s.reserve(lookup, command))

    async def settle(
        self,
        reservation_id: str,
        command: CommitReservation | ReleaseReservation | ExtendReservation,
        customer: CustomerLookup | None,
    ) -> Reply:
        return await self._ask(lambda s: s.settle(reservation_id, command, customer))

    async def read_reservation(
        self, reservation_id: str, customer: CustomerLookup | None, projector: Projector[T]
    ) -> T | Rejected:
        return await self._ask(lambda s: s.read_reservation(reservation_id, customer, projector))

    async def upsert_catalog(self, update: CatalogUpdated) -> Catalog:
        return await self._ask(lambda s: s.upsert_catalog(update))

    @property
    def price_table(self) -> PriceTable:
        return self._resolve().price_table  # a replica's read, as `catalog`

    async def replace_prices(self, table: PriceTable) -> PriceTable:
        return await self._ask(lambda s: s.replace_prices(table))

    async def record_unapplied_payment(self, record: PaymentRecord) -> PaymentRecord:
        return await self._ask(lambda s: s.record_unapplied_payment(record))

    async def list_unapplied_payments(self) -> list[PaymentRecord]:
        return await self._ask(lambda s: s.list_unapplied_payments())

    async def claim_keys(self, claims: list[KeyClaim]) -> list[bool]:
        return await self._ask(lambda s: s.claim_keys(claims))

    async def ingest_cloud_events(self, events: list[CloudEvent]) -> int:
        return await self._ask(lambda s: s.ingest_cloud_events(events))

    async def change_catalog(self, change: CatalogChange) -> Catalog:
        return await self._ask(lambda s: s.change_catalog(change))

    async def create_openmeter_customer(
        self, key: str | None, details: OpenMeterDetails, projector: Projector[T]
    ) -> T | Rejected:
        return await self._ask(lambda s: s.create_openmeter_customer(key, details, projector))

    async def update_openmeter_customer(
        self,
        lookup: CustomerLookup,
        change: Callable[[CustomerState, datetime], OpenMeterDetails],
        projector: Projector[T],
    ) -> T | Rejected:
        return await self._ask(lambda s: s.update_openmeter_customer(lookup, change, projector))

    async def all_customers(self, projector: Projector[T]) -> list[T]:
        return await self._ask(lambda s: s.all_customers(projector))

    async def find_customers(
        self, search: CustomerSearch, projector: Projector[T]
    ) -> CustomerPage[T]:
        return await self._ask(lambda s: s.find_customers(search, projector))

    async def recent_denials(self, lookup: CustomerLookup, limit: int) -> list[AuditRecord]:
        return await self._ask(lambda s: s.recent_denials(lookup, limit))

    async def credit_note(self, command: CreditNoteCommand) -> Reply:
        return await self._ask(lambda s: s.credit_note(command))

    async def openmeter_turn(
        self, target: OmTarget, command: OpenMeterCommand | None, view: OmView[T]
    ) -> T | Rejected:
        return await self._ask(lambda s: s.openmeter_turn(target, command, view))
