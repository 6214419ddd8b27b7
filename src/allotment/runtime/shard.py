"""A shard: the customers of one environment (or a slice of them) and their indexes.

Every method runs one customer turn synchronously, then awaits the journal for state changes.
Callers go through the `Shard` protocol, so sharding over Ray later swaps this class, not them.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Protocol, TypeVar

import msgspec
from anyio.lowlevel import checkpoint

from allotment.domain.catalog import Catalog, Feature, feature_id
from allotment.domain.catalog_facts import (
    CatalogUpdated,
    FeatureAutoCreated,
    evolve_catalog,
    update_catalog,
)
from allotment.domain.commands import (
    Command,
    EvaluateEntitlement,
    RecordUsage,
    RegisterCustomer,
    Tick,
)
from allotment.domain.context import TurnContext
from allotment.domain.cost import PriceTable
from allotment.domain.entitlement import unknown_customer_decision
from allotment.domain.evolve import evolve, new_customer
from allotment.domain.facts import (
    CustomerCreated,
    Fact,
    InvoiceIssued,
    StripeCustomerLinked,
    SubscriptionStarted,
    UsageRecorded,
)
from allotment.domain.replies import Decision, Done, Rejected, RejectionKind, Reply, UsageAccepted
from allotment.domain.state import CustomerSource, CustomerState, Profile
from allotment.persistence.codec import JournalRecord
from allotment.persistence.errors import JournalUnavailable
from allotment.persistence.ports import Journal
from allotment.runtime.actor import CustomerActor, StateCorrupted
from allotment.runtime.buffers import BoundedBuffer
from allotment.runtime.clock import Clock
from allotment.runtime.errors import Overloaded, ShardUnavailable
from allotment.runtime.idempotency import AuditKeyWindow, EventKeyIndex, key_digest
from allotment.runtime.records import AuditRecord, EvaluationContext
from allotment.runtime.timers import Timers

__all__ = ("CustomerLookup", "LocalShard", "Projector", "ShardSettings")

logger = logging.getLogger("allotment.shard")

T = TypeVar("T")
R = TypeVar("R")
Projector = Callable[[CustomerState, Catalog, datetime], T]

DUPLICATE_EVENT = "Duplicate event. An event with this idempotency key has already been processed."
CUSTOMER_NOT_FOUND = "Customer not found."
SWEEP_BATCH = 512  # customers turned by the sweep per durable wait
SWEEP_RETRY = timedelta(minutes=1)  # when a customer whose catch-up raised is tried again


class ShardSettings(Protocol):
    audit_buffer_size_max: int
    audit_key_window_size_max: int
    payment_terms_days: int
    idempotency_window_days: int | None
    journal_pending_bytes_max: int


class CustomerLookup:
    """How a request names its customer: exactly one of the three identifiers (EVT-10)."""

    __slots__ = ("customer_id", "external_id", "stripe_customer_id")

    def __init__(
        self,
        *,
        external_id: str | None = None,
        customer_id: uuid.UUID | None = None,
        stripe_customer_id: str | None = None,
    ) -> None:
        self.external_id = external_id
        self.customer_id = customer_id
        self.stripe_customer_id = stripe_customer_id


class LocalShard:
    """All customers of one environment in this process."""

    def __init__(
        self,
        catalog: Catalog,
        clock: Clock,
        journal: Journal,
        prices: PriceTable,
        settings: ShardSettings,
        new_id: Callable[[], uuid.UUID] = uuid.uuid4,
    ) -> None:
        self.catalog = catalog
        self._clock = clock
        self._journal = journal
        self._prices = prices
        self._settings = settings
        self._new_id = new_id
        self._actors: dict[uuid.UUID, CustomerActor] = {}
        self._by_external_id: dict[str, uuid.UUID] = {}
        self._by_stripe_id: dict[str, uuid.UUID] = {}
        self._owner_of: dict[uuid.UUID, uuid.UUID] = {}  # subscription/invoice id -> customer
        self.plans_in_use: set[uuid.UUID] = set()
        self.event_keys = EventKeyIndex(settings.idempotency_window_days)
        self._audit_keys = AuditKeyWindow(settings.audit_key_window_size_max)
        self.audits: BoundedBuffer[AuditRecord] = BoundedBuffer(settings.audit_buffer_size_max)
        self.timers = Timers()
        # Set once memory may differ from the journal; from then on the shard answers nothing
        # (ShardUnavailable) until the system rebuilds it from disk.
        self.failure: str | None = None

    # -- lookups -------------------------------------------------------------------------------

    def _context(self, catalog: Catalog | None = None) -> TurnContext:
        return TurnContext(
            now=self._clock.now(),
            catalog=catalog or self.catalog,
            prices=self._prices,
            new_id=self._new_id,
            payment_terms_days=self._settings.payment_terms_days,
        )

    def _find(self, lookup: CustomerLookup) -> CustomerActor | None:
        if lookup.external_id is not None:
            customer_id = self._by_external_id.get(lookup.external_id)
        elif lookup.stripe_customer_id is not None:
            customer_id = self._by_stripe_id.get(lookup.stripe_customer_id)
        else:
            customer_id = lookup.customer_id
        return self._actors.get(customer_id) if customer_id is not None else None

    def customer_count(self) -> int:
        return len(self._actors)

    # -- admission and failure ---------------------------------------------------------------

    def _admit(self, *, write: bool) -> None:
        """Refuse before any turn runs: a failed shard serves nothing, and a change waits while
        the journal has too many bytes waiting for the disk (nothing has changed yet).

        Raises:
            ShardUnavailable: memory may differ from the journal; wait for the rebuild.
            Overloaded: the journal's backlog is over its bound.
        """
        if self.failure is None and self._journal.failure is not None:
            self.notice_journal_failure()
        if self.failure is not None:
            raise ShardUnavailable(self.failure)
        if write and self._journal.pending_bytes > self._settings.journal_pending_bytes_max:
            raise Overloaded("too many changes are waiting for the disk; retry shortly")

    def notice_journal_failure(self) -> None:
        """Fail the shard if its journal failed (a write nobody was waiting for can fail)."""
        if self.failure is None and self._journal.failure is not None:
            self.fail(f"journal write failed: {self._journal.failure}")

    @property
    def journal(self) -> Journal:
        return self._journal

    def fail(self, reason: str) -> None:
        """Stop serving: from now on every call raises ShardUnavailable. Idempotent."""
        if self.failure is None:
            self.failure = reason
            logger.error("shard stopped serving until it is rebuilt: %s", reason)

    async def _durable(self, position: int) -> None:
        try:
            await self._journal.wait_durable(position)
        except JournalUnavailable as error:
            self.fail(f"journal write failed: {error.__cause__ or error}")
            raise ShardUnavailable(self.failure or str(error)) from error

    # -- turns ---------------------------------------------------------------------------------

    def _run(self, actor: CustomerActor, command: Command, ctx: TurnContext) -> tuple[Reply, int]:
        """One turn, journalled whatever its outcome (docs/internals.md, "The turn"). Returns
        the reply and the position to await (0 when nothing was applied)."""
        return self._applying(actor, lambda applied: actor.turn(command, ctx, applied))

    def _applying(self, actor: CustomerActor, step: Callable[[list[Fact]], R]) -> tuple[R, int]:
        """Run `step`, which applies facts to `actor` and lists them, and journal every fact it
        applied before this returns or raises. Returns its result and the position to await."""
        applied: list[Fact] = []
        try:
            result = step(applied)
        except StateCorrupted as error:
            self.fail(str(error))
            raise ShardUnavailable(str(error)) from error
        except Exception:
            if applied:  # catch-up changed the state before `decide` raised: keep it
                self._commit(actor, applied)
            raise
        return result, self._commit(actor, applied) if applied else 0

    async def _turn(self, actor: CustomerActor, command: Command, ctx: TurnContext) -> Reply:
        reply, position = self._run(actor, command, ctx)
        if position and not isinstance(reply, Decision):  # reads never wait of their own
            await self._durable(position)
        return reply

    def _commit(self, actor: CustomerActor, facts: list[Fact]) -> int:
        """Index and journal facts already applied to `actor`. A failure here leaves memory
        ahead of the journal, so the shard stops serving."""
        try:
            self._after(actor, facts)
            return self._append(actor, facts)
        except Exception as error:
            self.fail(f"journalling {len(facts)} applied facts failed: {error!r}")
            raise ShardUnavailable(self.failure or "") from error

    def _append(self, actor: CustomerActor, facts: list[Fact]) -> int:
        position = self._journal.append(actor.state.id, facts)
        actor.state.journal_position = position
        return position

    def _after(self, actor: CustomerActor, facts: list[Fact]) -> None:
        """Keep the shard's indexes and timers in step with the facts just applied. (Events and
        credit transactions reach analytics from the journal: persistence/history_export.py.)"""
        state = actor.state
        for fact in facts:
            if isinstance(fact, SubscriptionStarted):
                self._owner_of[fact.subscription.id] = state.id
                self.plans_in_use.add(fact.subscription.plan_id)
            elif isinstance(fact, InvoiceIssued):
                self._owner_of[fact.invoice.id] = state.id
            elif isinstance(fact, StripeCustomerLinked):
                self._by_stripe_id[fact.stripe_customer_id] = state.id
        self.timers.schedule(state.id, state.next_due_at)

    def _register(self, state: CustomerState) -> CustomerActor:
        actor = CustomerActor(state)
        self._actors[state.id] = actor
        if state.external_id is not None:
            self._by_external_id[state.external_id] = state.id
        if state.stripe_customer_id is not None:
            self._by_stripe_id[state.stripe_customer_id] = state.id
        return actor

    def _created(
        self,
        external_id: str | None,
        source: CustomerSource,
        profile: Profile,
        stripe_customer_id: str | None = None,
    ) -> CustomerCreated:
        return CustomerCreated(
            at=self._clock.now(),
            customer_id=self._new_id(),
            external_id=external_id,
            source=source,
            profile=profile,
            stripe_customer_id=stripe_customer_id,
        )

    async def create_customer(self, external_id: str, profile: Profile) -> Reply:
        """createCustomer (CUS-1..CUS-6)."""
        self._admit(write=True)
        actor = self._find(CustomerLookup(external_id=external_id))
        if actor is not None:
            return await self._turn(
                actor, RegisterCustomer(external_id=external_id, profile=profile), self._context()
            )
        created = self._created(external_id, CustomerSource.API, profile)
        actor = self._register(new_customer(created))
        await self._durable(self._commit(actor, [created]))
        return Done()

    async def command(self, lookup: CustomerLookup, command: Command) -> Reply:
        """Run `command` on an existing customer; 404 semantics when there is none."""
        self._admit(write=True)
        actor = self._find(lookup)
        if actor is None:
            return Rejected(kind=RejectionKind.NOT_FOUND, message=CUSTOMER_NOT_FOUND)
        return await self._turn(actor, command, self._context())

    async def command_on_owner(self, entity_id: uuid.UUID, command: Command, missing: str) -> Reply:
        """Run `command` on the customer owning a subscription or invoice."""
        self._admit(write=True)
        owner = self._owner_of.get(entity_id)
        if owner is None:
            return Rejected(kind=RejectionKind.NOT_FOUND, message=missing)
        return await self._turn(self._actors[owner], command, self._context())

    async def evaluate(
        self,
        external_id: str,
        feature_key: str,
        requested: Decimal | None,
        audit: EvaluationContext,
    ) -> Decision:
        """checkEntitlement / evaluateEntitlement, writing the audit record (ENT-30..ENT-34)."""
        self._admit(write=False)
        actor = self._find(CustomerLookup(external_id=external_id))
        if actor is None:
            return unknown_customer_decision(requested)  # ENT-5, ENT-34: no audit record
        ctx = self._context()
        command = EvaluateEntitlement(feature_key=feature_key, requested_units=requested)
        decision = await self._turn(actor, command, ctx)
        assert isinstance(decision, Decision)
        if audit.idempotency_key is None or self._audit_keys.first_sighting(audit.idempotency_key):
            self.audits.append(
                AuditRecord(
                    at=ctx.now,
                    customer_id=actor.state.id,
                    external_id=external_id,
                    feature_key=feature_key,
                    allowed=decision.allowed,
                    method=audit.method,
                    reason=decision.reason,
                    requested_units=requested,
                    would_exceed_limit=decision.simulation.would_exceed_limit
                    if decision.simulation
                    else None,
                    event_name=audit.event_name,
                    meta=audit.meta,
                    flow_id=audit.flow_id,
                    idempotency_key=audit.idempotency_key,
                )
            )
        return decision

    async def ingest(
        self, lookup: CustomerLookup, event: RecordUsage, feature_uuid: uuid.UUID | None
    ) -> Reply:
        """ingestEvent (EVT-*), acknowledged once its facts are durable."""
        self._admit(write=True)
        reply, position = self.ingest_now(lookup, event, feature_uuid)
        if position:
            await self._durable(position)
        return reply

    async def ingest_batch(
        self, events: list[tuple[CustomerLookup, RecordUsage, uuid.UUID | None]]
    ) -> list[Reply]:
        """Many events, each judged exactly as `ingest` would, sharing one group commit: the
        replies come back once the last of them is durable."""
        self._admit(write=True)
        replies: list[Reply] = []
        last = 0
        for index, (lookup, event, feature_uuid) in enumerate(events):
            reply, position = self.ingest_now(lookup, event, feature_uuid)
            replies.append(reply)
            last = max(last, position)
            if index % 100 == 99:
                await checkpoint()  # a large batch does not hold the loop for its whole length
                self._admit(write=False)  # the shard may have failed meanwhile
        if last:
            await self._durable(last)
        return replies

    def ingest_now(
        self, lookup: CustomerLookup, event: RecordUsage, feature_uuid: uuid.UUID | None
    ) -> tuple[Reply, int]:
        """Judge, apply and journal one event without waiting for durability. Returns the reply
        and the journal position to await (0 when nothing was appended). The key is claimed
        first, so a duplicate changes nothing (EVT-35..EVT-37)."""
        now = self._clock.now()
        if not self.event_keys.reserve(event.idempotency_key, now):
            return Rejected(kind=RejectionKind.CONFLICT, message=DUPLICATE_EVENT), 0
        try:
            reply, position = self._ingest_claimed(lookup, event, feature_uuid)
        except BaseException:
            self.event_keys.release(event.idempotency_key, now)
            raise
        if isinstance(reply, Rejected):
            self.event_keys.release(event.idempotency_key, now)
        return reply, position

    def _ingest_claimed(
        self, lookup: CustomerLookup, event: RecordUsage, feature_uuid: uuid.UUID | None
    ) -> tuple[Reply, int]:
        notes: list[str] = []
        catalog = self.catalog
        if feature_uuid is not None:
            feature = catalog.feature_by_id(feature_uuid)
            if feature is None:
                message = "featureId: Unknown featureId."
                return Rejected(kind=RejectionKind.INVALID, message=message), 0
            event = _with_feature(event, feature.key)
        new_feature = None
        if (
            feature_uuid is None
            and event.feature_key is not None
            and event.feature_key not in catalog.features
        ):
            new_feature = _auto_feature(event.feature_key)  # EVT-21
            catalog = catalog.with_feature(new_feature)
            notes.append(f"Feature '{event.feature_key}' auto-created.")
        actor = self._find(lookup)
        created: CustomerCreated | None = None
        if actor is None:
            if lookup.customer_id is not None:  # EVT-11: a UUID cannot be auto-created
                return Rejected(kind=RejectionKind.NOT_FOUND, message=CUSTOMER_NOT_FOUND), 0
            created = self._created(
                lookup.external_id,
                CustomerSource.EVENT_AUTO_CREATED,
                Profile(),
                lookup.stripe_customer_id,
            )
            actor = CustomerActor(new_customer(created))
            notes.append("Customer auto-created.")
        if created is not None:
            reply = self._first_event(actor, created, event, catalog)
            if isinstance(reply, Rejected):
                return reply, 0  # the new customer (and feature) is discarded with the event
            position = actor.state.journal_position
        else:
            # Catch-up facts are journalled even when the event is then rejected or raises.
            reply, position = self._run(actor, event, self._context(catalog))
            if isinstance(reply, Rejected):
                return reply, position
        if new_feature is not None:  # after the customer's record: await this later position
            fact = FeatureAutoCreated(at=self._clock.now(), feature=new_feature)
            position = self._commit_catalog(fact)
            self.catalog = catalog
        if notes and isinstance(reply, UsageAccepted) and not reply.over_limit:
            return UsageAccepted(message=" ".join(notes)), position  # EVT-44
        return reply, position

    def _first_event(
        self, actor: CustomerActor, created: CustomerCreated, event: RecordUsage, catalog: Catalog
    ) -> Reply:
        """The first event of an auto-created customer (EVT-11): nothing is kept unless the
        event is accepted, then the customer's creation and the event are journalled as one."""
        applied: list[Fact] = [created]
        # Should this raise, even StateCorrupted, the unregistered actor is simply dropped.
        reply = actor.turn(event, self._context(catalog), applied)
        if isinstance(reply, Rejected):
            return reply
        self._register(actor.state)
        self._commit(actor, applied)
        return reply

    def _commit_catalog(self, fact: CatalogUpdated | FeatureAutoCreated) -> int:
        try:
            return self._journal.append_catalog(fact)
        except Exception as error:
            self.fail(f"journalling a catalog change failed: {error!r}")
            raise ShardUnavailable(self.failure or "") from error

    async def read_on_owner(self, entity_id: uuid.UUID, projector: Projector[T]) -> T | None:
        """Project the state of the customer owning a subscription or invoice."""
        owner = self._owner_of.get(entity_id)
        if owner is None:
            return None
        return await self.read(CustomerLookup(customer_id=owner), projector)

    async def read(self, lookup: CustomerLookup, projector: Projector[T]) -> T | None:
        """Project one customer's state inside a turn; None when there is no such customer."""
        self._admit(write=False)
        actor = self._find(lookup)
        if actor is None:
            return None
        ctx = self._context()
        _, position = self._applying(actor, lambda applied: actor.catch_up(ctx, applied))
        view = projector(actor.state, self.catalog, ctx.now)
        if position:  # the view may show ids minted by catch-up: they must survive a crash
            await self._durable(position)
        return view

    # -- recovery and checkpoints ----------------------------------------------------------

    def restore(
        self, catalog: Catalog, states: list[CustomerState], keys: dict[date, list[bytes]]
    ) -> None:
        """Load a snapshot's contents into an empty shard."""
        self.catalog = catalog
        for state in states:
            self._register(state)
        for day, digests in keys.items():
            for digest in digests:
                self.event_keys.remember(digest, day)

    def replay(self, record: JournalRecord) -> None:
        """Apply one journal record, skipping what a customer's snapshot already holds."""
        for catalog_fact in record.catalog:
            self.catalog = evolve_catalog(self.catalog, catalog_fact)
        if record.customer_id is None:
            return
        for fact in record.facts:  # keys first: a snapshot's key list may predate its customers
            if isinstance(fact, UsageRecorded):
                self.event_keys.remember(key_digest(fact.idempotency_key), fact.at.date())
        actor = self._actors.get(record.customer_id)
        facts = record.facts
        if actor is None:
            first = facts[0]
            assert isinstance(first, CustomerCreated), f"record {record.position} has no customer"
            actor = self._register(new_customer(first))
            facts = facts[1:]
        elif actor.state.journal_position >= record.position:
            return
        for fact in facts:
            evolve(actor.state, fact)
        actor.state.journal_position = record.position

    def reindex(self) -> None:
        """Rebuild the indexes and timers from the customers' states after recovery."""
        owner_of = self._owner_of
        for actor in self._actors.values():
            state = actor.state
            customer_id = state.id
            if state.external_id is not None:
                self._by_external_id[state.external_id] = customer_id
            if state.stripe_customer_id is not None:  # linked after creation (replay skips _after)
                self._by_stripe_id[state.stripe_customer_id] = customer_id
            for sub in state.subscriptions.values():
                owner_of[sub.id] = customer_id
                self.plans_in_use.add(sub.plan_id)
            for invoice_id in state.invoices:
                owner_of[invoice_id] = customer_id
        self.timers.rebuild(
            (actor.state.id, actor.state.next_due_at)
            for actor in self._actors.values()
            if actor.state.next_due_at is not None
        )

    def states(self) -> list[CustomerState]:
        return [actor.state for actor in self._actors.values()]

    # -- time ----------------------------------------------------------------------------------

    def next_timer(self) -> datetime | None:
        return self.timers.next_at()

    async def run_due(self) -> int:
        """Apply every transition due by now (SCH-1), in batches of customers whose facts share
        one durable wait. A customer whose catch-up raises is logged and tried again later;
        the others go on. Returns the number of customers that had something due."""
        self._admit(write=True)
        count = 0
        while batch := self.timers.pop_due(self._clock.now(), SWEEP_BATCH):
            last = 0
            for customer_id in batch:
                last = max(last, self._sweep_one(self._actors[customer_id]))
            count += len(batch)
            if last:
                await self._durable(last)
            else:
                await checkpoint()  # a long sweep never holds the loop for its whole length
        return count

    def _sweep_one(self, actor: CustomerActor) -> int:
        ctx = self._context()
        try:
            _, position = self._run(actor, Tick(), ctx)
        except ShardUnavailable:
            raise
        except Exception:
            logger.exception("catch-up of customer %s failed; retrying later", actor.state.id)
            self.timers.postpone(actor.state.id, ctx.now + SWEEP_RETRY)
            return actor.state.journal_position  # what catch-up applied before it raised
        return position

    # -- catalog -------------------------------------------------------------------------------

    async def upsert_catalog(self, update: CatalogUpdated) -> Catalog:
        """Check, journal and apply a catalog change (PLN-10, PLN-12).

        Raises:
            CatalogInvalid: nothing changed.
        """
        self._admit(write=True)
        catalog, fact = update_catalog(self.catalog, update, frozenset(self.plans_in_use))
        position = self._commit_catalog(fact)
        self.catalog = catalog
        await self._durable(position)
        return catalog


def _auto_feature(key: str) -> Feature:
    name = key.replace("_", " ").replace("-", " ")
    return Feature(id=feature_id(key), key=key, name=name, auto_created=True)


def _with_feature(event: RecordUsage, key: str) -> RecordUsage:
    return msgspec.structs.replace(event, feature_key=key)
