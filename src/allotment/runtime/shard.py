"""A shard: the customers of one environment (or a slice of them) and their indexes.

Every method runs one customer turn synchronously, then awaits the journal for state changes.
Callers go through the `Shard` protocol, so sharding over Ray later swaps this class, not them.
"""

from __future__ import annotations

import heapq
import uuid
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol, TypeVar

import msgspec
from anyio.lowlevel import checkpoint

from allotment.domain.catalog import Catalog, Feature, feature_id
from allotment.domain.catalog_document import CatalogDocument, build_catalog
from allotment.domain.catalog_facts import CatalogUpserted, FeatureAutoCreated, evolve_catalog
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
    CreditsDebited,
    CreditsExpired,
    CreditsGranted,
    CreditsReversed,
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
from allotment.persistence.ports import Journal
from allotment.runtime.actor import CustomerActor
from allotment.runtime.buffers import BoundedBuffer
from allotment.runtime.clock import Clock
from allotment.runtime.idempotency import AuditKeyWindow, EventKeyIndex, key_digest
from allotment.runtime.records import AcceptedEvent, AuditRecord, EvaluationContext, LedgerEntry

__all__ = ("CustomerLookup", "LocalShard", "Projector", "ShardSettings")

T = TypeVar("T")
Projector = Callable[[CustomerState, Catalog, datetime], T]

DUPLICATE_EVENT = "Duplicate event. An event with this idempotency key has already been processed."
CUSTOMER_NOT_FOUND = "Customer not found."


class ShardSettings(Protocol):
    event_buffer_size_max: int
    audit_buffer_size_max: int
    audit_key_window_size_max: int
    payment_terms_days: int
    idempotency_window_days: int | None


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
        self.events: BoundedBuffer[AcceptedEvent] = BoundedBuffer(settings.event_buffer_size_max)
        self.audits: BoundedBuffer[AuditRecord] = BoundedBuffer(settings.audit_buffer_size_max)
        self.ledger: BoundedBuffer[LedgerEntry] = BoundedBuffer(settings.event_buffer_size_max)
        self._timers: list[tuple[datetime, uuid.UUID]] = []
        self._timer_at: dict[uuid.UUID, datetime] = {}

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

    # -- turns ---------------------------------------------------------------------------------

    async def _turn(self, actor: CustomerActor, command: Command, ctx: TurnContext) -> Reply:
        reply, facts = actor.turn(command, ctx)
        self._after(actor, facts)
        if facts:
            position = self._append(actor, facts)
            if not isinstance(reply, Decision):  # reads never wait for a commit of their own
                await self._journal.wait_durable(position)
        return reply

    def _append(self, actor: CustomerActor, facts: list[Fact]) -> int:
        position = self._journal.append(actor.state.id, facts)
        actor.state.journal_position = position
        return position

    def _after(self, actor: CustomerActor, facts: list[Fact]) -> None:
        """Keep the shard's indexes, buffers and timers in step with the facts just applied."""
        state = actor.state
        # Ledger rows are ordered by the journal position their record is about to take.
        sequence = (self._journal.position + 1) * 10_000
        for fact in facts:
            if isinstance(fact, UsageRecorded):
                self.events.append(
                    AcceptedEvent(customer_id=state.id, external_id=state.external_id, event=fact)
                )
            elif isinstance(fact, SubscriptionStarted):
                self._owner_of[fact.subscription.id] = state.id
                self.plans_in_use.add(fact.subscription.plan_id)
            elif isinstance(fact, InvoiceIssued):
                self._owner_of[fact.invoice.id] = state.id
            elif isinstance(fact, StripeCustomerLinked):
                self._by_stripe_id[fact.stripe_customer_id] = state.id
            if isinstance(fact, CreditsGranted | CreditsDebited | CreditsExpired | CreditsReversed):
                sequence += 1
                self.ledger.append(
                    LedgerEntry(
                        sequence=sequence,
                        customer_id=state.id,
                        denomination=fact.denomination,
                        transaction=fact.transaction,
                    )
                )
        self._schedule(state)

    def _schedule(self, state: CustomerState) -> None:
        due = state.next_due_at
        if due is None:
            return
        known = self._timer_at.get(state.id)
        if known is None or due < known:
            self._timer_at[state.id] = due
            heapq.heappush(self._timers, (due, state.id))

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
        actor = self._find(CustomerLookup(external_id=external_id))
        if actor is not None:
            return await self._turn(
                actor, RegisterCustomer(external_id=external_id, profile=profile), self._context()
            )
        created = self._created(external_id, CustomerSource.API, profile)
        actor = self._register(new_customer(created))
        await self._journal.wait_durable(self._append(actor, [created]))
        return Done()

    async def command(self, lookup: CustomerLookup, command: Command) -> Reply:
        """Run `command` on an existing customer; 404 semantics when there is none."""
        actor = self._find(lookup)
        if actor is None:
            return Rejected(kind=RejectionKind.NOT_FOUND, message=CUSTOMER_NOT_FOUND)
        return await self._turn(actor, command, self._context())

    async def command_on_owner(self, entity_id: uuid.UUID, command: Command, missing: str) -> Reply:
        """Run `command` on the customer owning a subscription or invoice."""
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
        reply, position = self.ingest_now(lookup, event, feature_uuid)
        if position:
            await self._journal.wait_durable(position)
        return reply

    async def ingest_batch(
        self, events: list[tuple[CustomerLookup, RecordUsage, uuid.UUID | None]]
    ) -> list[Reply]:
        """Many events, each judged exactly as `ingest` would, sharing one group commit: the
        replies come back once the last of them is durable."""
        replies: list[Reply] = []
        last = 0
        for index, (lookup, event, feature_uuid) in enumerate(events):
            reply, position = self.ingest_now(lookup, event, feature_uuid)
            replies.append(reply)
            last = max(last, position)
            if index % 100 == 99:
                await checkpoint()  # a large batch does not hold the loop for its whole length
        if last:
            await self._journal.wait_durable(last)
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
        reply, facts = actor.turn(event, self._context(catalog))
        if isinstance(reply, Rejected):
            return reply, 0  # a new customer or feature is discarded with the event
        if created is not None:
            self._register(actor.state)
            facts = [created, *facts]
        if new_feature is not None:
            self._journal.append_catalog(
                FeatureAutoCreated(at=self._clock.now(), feature=new_feature)
            )
        self.catalog = catalog
        self._after(actor, facts)
        position = self._append(actor, facts)
        if notes and isinstance(reply, UsageAccepted) and not reply.over_limit:
            return UsageAccepted(message=" ".join(notes)), position  # EVT-44
        return reply, position

    async def read_on_owner(self, entity_id: uuid.UUID, projector: Projector[T]) -> T | None:
        """Project the state of the customer owning a subscription or invoice."""
        owner = self._owner_of.get(entity_id)
        if owner is None:
            return None
        return await self.read(CustomerLookup(customer_id=owner), projector)

    async def read(self, lookup: CustomerLookup, projector: Projector[T]) -> T | None:
        """Project one customer's state inside a turn; None when there is no such customer."""
        actor = self._find(lookup)
        if actor is None:
            return None
        ctx = self._context()
        facts = actor.catch_up(ctx)
        self._after(actor, facts)
        view = projector(actor.state, self.catalog, ctx.now)
        if facts:  # the view may show ids minted by catch-up: they must survive a crash
            await self._journal.wait_durable(self._append(actor, facts))
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
        owner_of, timer_at = self._owner_of, self._timer_at
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
            due = state.next_due_at
            if due is not None:
                known = timer_at.get(customer_id)
                if known is None or due < known:
                    timer_at[customer_id] = due
        # One heapify instead of a push per customer: O(n) comparisons instead of O(n log n).
        self._timers = [(due, customer_id) for customer_id, due in timer_at.items()]
        heapq.heapify(self._timers)

    def states(self) -> list[CustomerState]:
        return [actor.state for actor in self._actors.values()]

    # -- time ----------------------------------------------------------------------------------

    def next_timer(self) -> datetime | None:
        return self._timers[0][0] if self._timers else None

    async def run_due(self) -> int:
        """Apply every transition due by now, customer by customer (SCH-1). Returns the number
        of customers that had something due."""
        now = self._clock.now()
        count = 0
        while self._timers and self._timers[0][0] <= now:
            due, customer_id = heapq.heappop(self._timers)
            if self._timer_at.get(customer_id) != due:
                continue  # superseded by an earlier timer for the same customer
            del self._timer_at[customer_id]
            await self._turn(self._actors[customer_id], Tick(), self._context())
            count += 1
        return count

    # -- catalog -------------------------------------------------------------------------------

    async def upsert_catalog(self, document: CatalogDocument) -> Catalog:
        """Validate, journal and apply a catalog document (PLN-10, PLN-12).

        Raises:
            CatalogInvalid: nothing changed.
        """
        now = self._clock.now()
        catalog = build_catalog(document, self.catalog, now, frozenset(self.plans_in_use))
        position = self._journal.append_catalog(CatalogUpserted(at=now, document=document))
        self.catalog = catalog
        await self._journal.wait_durable(position)
        return catalog


def _auto_feature(key: str) -> Feature:
    name = key.replace("_", " ").replace("-", " ")
    return Feature(id=feature_id(key), key=key, name=name, auto_created=True)


def _with_feature(event: RecordUsage, key: str) -> RecordUsage:
    return msgspec.structs.replace(event, feature_key=key)
