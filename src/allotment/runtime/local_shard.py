"""`LocalShard`: the customers of one environment in this process, behind the `Shard` protocol.

It composes the parts named by their concern: the customers and their indexes
(`directory.py`), the transactional turn (`turns.py`), event ingestion (`ingestion.py`), the
timers of due transitions (`timers.py`) and loading from disk (`recovery.py`); its lookups and
reads are its base class, `ShardReads` (`shard_reads.py`). Each method runs one customer turn
synchronously, then awaits the journal for state changes.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Protocol, TypeVar

from anyio.lowlevel import checkpoint

from allotment.domain.catalog import Catalog
from allotment.domain.catalog_facts import CatalogUpdated, update_catalog
from allotment.domain.commands import (
    Command,
    EvaluateEntitlement,
    Preflight,
    RecordUsage,
    RegisterCustomer,
    Reserve,
    Tick,
)
from allotment.domain.context import TurnContext
from allotment.domain.cost import PriceTable
from allotment.domain.credit_note_commands import CreditNoteCommand
from allotment.domain.entitlement import unknown_customer_decision
from allotment.domain.evolve import new_customer
from allotment.domain.facts import CatalogVersionHeld, CustomerCreated
from allotment.domain.meters import CloudEvent
from allotment.domain.om_commands import OpenMeterCommand
from allotment.domain.payment_records import PaymentRecord
from allotment.domain.replies import Decision, Done, Rejected, RejectionKind, Reply
from allotment.domain.state import CustomerSource, CustomerState, OpenMeterDetails, Profile
from allotment.persistence.compact_state import Keys
from allotment.persistence.ports import Journal, JournalRecord
from allotment.persistence.store_ports import NotificationOutbox
from allotment.runtime import recovery
from allotment.runtime.actor import CustomerActor
from allotment.runtime.audit_ring import AuditRing
from allotment.runtime.batch_ingest import ingest_batch
from allotment.runtime.clock import Clock
from allotment.runtime.credit_notes import run_credit_note
from allotment.runtime.denials import RecentDenials
from allotment.runtime.directory import CustomerDirectory
from allotment.runtime.errors import ShardUnavailable
from allotment.runtime.idempotency import AuditKeyWindow, EventKeyIndex
from allotment.runtime.ids import new_id as process_ids
from allotment.runtime.ingestion import CUSTOMER_NOT_FOUND, Event, Ingestion
from allotment.runtime.key_claims import KeyClaim, claim_keys
from allotment.runtime.numbering import Sequences
from allotment.runtime.om_desk import OmDesk
from allotment.runtime.openmeter import OpenMeterDesk
from allotment.runtime.payments import (
    EnvironmentPayments,
    record_unapplied_payment,
)
from allotment.runtime.placement import IdMint
from allotment.runtime.ports import (
    CatalogChange,
    CustomerLookup,
    OmTarget,
    OmView,
    Projector,
)
from allotment.runtime.prices import ShardPrices, replace_prices
from allotment.runtime.records import EvaluationContext, audit_record
from allotment.runtime.reservations import ReservationDesk, SettleCommand
from allotment.runtime.shard_reads import ShardReads
from allotment.runtime.timers import Timers
from allotment.runtime.turns import Turns

__all__ = ("LocalShard", "ShardSettings")

logger = logging.getLogger("allotment.shard")
T = TypeVar("T")

SWEEP_BATCH = 512  # customers turned by the sweep per durable wait
SWEEP_RETRY = timedelta(minutes=1)  # when a customer whose catch-up raised is tried again


class ShardSettings(Protocol):
    audit_buffer_size_max: int
    audit_key_window_size_max: int
    payment_terms_days: int
    idempotency_window_days: int | None
    journal_pending_bytes_max: int
    warm_customers_max: int
    invoice_number_prefix: str  # CN-20
    credit_note_number_prefix: str


class LocalShard(ShardReads):
    """All customers of one environment in this process."""

    def __init__(
        self,
        catalog: Catalog,
        clock: Clock,
        journal: Journal,
        prices: PriceTable,
        settings: ShardSettings,
        new_id: Callable[[], uuid.UUID] = process_ids,
        outbox: NotificationOutbox | None = None,
        mint: IdMint | None = None,
    ) -> None:
        self.catalog = catalog
        # The catalog file's catalog; after a recovery from disk, only what the disk never
        # recorded is taken from it (recovery.seed_catalog, PLN-3).
        self.seed_catalog = catalog
        self.recorded_catalog: Catalog | None = None  # during recovery: what disk recorded
        self._clock = clock
        self.prices = ShardPrices(prices)
        self._settings = settings
        # One shard of several mints ids that name it (runtime/placement.py, SCL-3).
        self._new_id = new_id if mint is None else mint.new_id
        self.mint = mint
        self.directory = CustomerDirectory(settings.warm_customers_max)
        self.timers = Timers()
        placed = (0, 1) if mint is None else (mint.index, mint.shards)
        sequences = Sequences.configured(settings, placed)  # CN-20, SCL-70
        self.turns = Turns(journal, self.directory, self.timers, settings, outbox, sequences, mint)
        self.event_keys = EventKeyIndex(settings.idempotency_window_days)
        self._audit_keys = AuditKeyWindow(settings.audit_key_window_size_max)
        self.audits = AuditRing(settings.audit_buffer_size_max)
        self.denials = RecentDenials()
        self._ingestion = Ingestion(self)
        self._reservations = ReservationDesk(self)
        self.openmeter = OpenMeterDesk(self)
        self.om_entitlements = OmDesk(self)
        self.environment_payments = EnvironmentPayments()  # unapplied, no customer (MNY-C3)
        self.catalog_version = 0  # of several shards: the broadcast version held (SCL-77)

    # -- context and lookups -------------------------------------------------------------------

    def now(self) -> datetime:
        return self._clock.now()

    def context(self, catalog: Catalog | None = None, now: datetime | None = None) -> TurnContext:
        return TurnContext(
            now=now or self._clock.now(),
            catalog=catalog or self.catalog,
            prices=self.prices.current,
            new_id=self._new_id,
            payment_terms_days=self._settings.payment_terms_days,
            numbers=self.turns.sequences,
        )

    def created(
        self,
        external_id: str | None,
        source: CustomerSource,
        profile: Profile,
        stripe_customer_id: str | None = None,
    ) -> CustomerCreated:
        """The fact that creates a customer now, with a new id."""
        return CustomerCreated(
            at=self._clock.now(),
            customer_id=self._new_id() if self.mint is None else self.mint.customer_id(external_id),
            external_id=external_id,
            source=source,
            profile=profile,
            stripe_customer_id=stripe_customer_id,
        )

    # -- failure -------------------------------------------------------------------------------

    @property
    def failure(self) -> str | None:
        """Why the shard serves nothing until it is rebuilt from disk; None while it serves."""
        return self.turns.failure

    @property
    def journal(self) -> Journal:
        return self.turns.journal

    def fail(self, reason: str) -> None:
        self.turns.fail(reason)

    def notice_journal_failure(self) -> None:
        self.turns.notice_journal_failure()

    def checkpoint_refusal(self) -> str | None:
        """Why no checkpoint may save this shard now: it failed, so its memory may hold facts
        the journal does not (a checkpoint would publish them as durable)."""
        self.notice_journal_failure()
        return self.failure

    # -- the Shard protocol --------------------------------------------------------------------

    async def create_customer(self, external_id: str, profile: Profile) -> Reply:
        """createCustomer (CUS-1..CUS-6)."""
        self.turns.admit(write=True)
        actor = self.directory.find(CustomerLookup(external_id=external_id))
        if actor is not None:
            command = RegisterCustomer(external_id=external_id, profile=profile)
            return await self.turns.turn(actor, command, self.context())
        created = self.created(external_id, CustomerSource.API, profile)
        actor = self.directory.register(new_customer(created))
        await self.turns.durable(self.turns.commit(actor, [created]))
        return Done()

    async def command(self, lookup: CustomerLookup, command: Command) -> Reply:
        """Run `command` on an existing customer; 404 semantics when there is none."""
        self.turns.admit(write=True)
        actor = self.directory.find(lookup)
        if actor is None:
            return Rejected(kind=RejectionKind.NOT_FOUND, message=CUSTOMER_NOT_FOUND)
        return await self.turns.turn(actor, command, self.context())

    async def command_on_owner(self, entity_id: uuid.UUID, command: Command, missing: str) -> Reply:
        """Run `command` on the customer owning a subscription or invoice."""
        self.turns.admit(write=True)
        actor = self.directory.owner(entity_id)
        if actor is None:
            return Rejected(kind=RejectionKind.NOT_FOUND, message=missing)
        return await self.turns.turn(actor, command, self.context())

    async def evaluate(
        self,
        external_id: str,
        feature_key: str,
        requested: Decimal | None,
        audit: EvaluationContext,
    ) -> Decision:
        """checkEntitlement / evaluateEntitlement, writing the audit record (ENT-30..ENT-34).

        A plain check that the customer's last answer still holds (`remembered_check`) builds
        nothing: no context, command or record; its record's parts go to the audit ring."""
        turns = self.turns
        turns.admit(write=False)
        actor = self.directory.find(CustomerLookup(external_id=external_id))
        if actor is None:
            return unknown_customer_decision(requested)  # ENT-5, ENT-34: no audit record
        now = self._clock.now()
        decision = None
        if requested is None:
            decision = actor.remembered_check(feature_key, self.catalog, now)
        if decision is None:
            command = EvaluateEntitlement(feature_key=feature_key, requested_units=requested)
            # A read's turn: its catch-up is journalled, never awaited (`Turns.turn`).
            decision, _ = turns.run(actor, command, self.context(now=now))
        else:
            turns.answered(actor)
        assert isinstance(decision, Decision)
        if audit.idempotency_key is None or self._audit_keys.first_sighting(audit.idempotency_key):
            customer_id = actor.state.id
            self.audits.append(now, customer_id, external_id, feature_key, requested, decision,
                               audit)  # fmt: skip
            if not decision.allowed:  # CON-26: the console shows a customer's latest
                self.denials.append(audit_record(now, customer_id, external_id, feature_key,
                                                 requested, decision, audit))  # fmt: skip
        return decision

    async def ingest(
        self, lookup: CustomerLookup, event: RecordUsage, feature_uuid: uuid.UUID | None
    ) -> Reply:
        """ingestEvent (EVT-*), acknowledged once its facts are durable."""
        return await self._ingestion.ingest(lookup, event, feature_uuid)

    async def ingest_batch(self, events: list[Event]) -> list[Reply]:
        """Many events, each judged exactly as `ingest` would, sharing one group commit."""
        return await ingest_batch(self, events)  # one record per customer (issue 21)

    def ingest_now(
        self, lookup: CustomerLookup, event: RecordUsage, feature_uuid: uuid.UUID | None
    ) -> tuple[Reply, int]:
        """One event, journalled but not awaited: the reply and the position to await."""
        return self._ingestion.ingest_now(lookup, event, feature_uuid)

    async def reserve(self, lookup: CustomerLookup, command: Reserve | Preflight) -> Reply:
        """RSV-1..RSV-6 (runtime/reservations.py)."""
        return await self._reservations.reserve(lookup, command)

    async def settle(
        self, reservation_id: str, command: SettleCommand, customer: CustomerLookup | None
    ) -> Reply:
        """Commit, release or extend a reservation (RSV-12..RSV-20)."""
        return await self._reservations.settle(reservation_id, command, customer)

    async def read_reservation(
        self, reservation_id: str, customer: CustomerLookup | None, projector: Projector[T]
    ) -> T | Rejected:
        """`projector` on the state of the reservation's customer (RSV-21, RSV-28)."""
        return await self._reservations.read(reservation_id, customer, projector)

    async def upsert_catalog(self, update: CatalogUpdated) -> Catalog:
        """Check, journal and apply a catalog change (PLN-10, PLN-12).

        Raises:
            CatalogInvalid: nothing changed.
        """
        self.turns.admit(write=True)
        catalog, fact = update_catalog(self.catalog, update, frozenset(self.plans_in_use))
        position = self.turns.commit_catalog(fact)
        self.catalog = catalog
        await self.turns.durable(position)
        return catalog

    async def replace_prices(self, table: PriceTable) -> PriceTable:
        return await replace_prices(self, table)  # OPS-D6

    async def record_unapplied_payment(self, record: PaymentRecord) -> PaymentRecord:
        return await record_unapplied_payment(self, record)  # MNY-C3

    async def claim_keys(self, claims: list[KeyClaim]) -> list[bool]:
        return await claim_keys(self, claims)  # SCL-81, as the keys' home shard

    # -- OpenMeter (runtime/openmeter.py) ------------------------------------------------------

    async def ingest_cloud_events(self, events: list[CloudEvent]) -> int:
        return await self.openmeter.ingest(events)

    async def change_catalog(self, change: CatalogChange) -> Catalog:
        return await self.openmeter.change_catalog(change)

    async def create_openmeter_customer(
        self, key: str | None, details: OpenMeterDetails, projector: Projector[T]
    ) -> T | Rejected:
        return await self.openmeter.create_customer(key, details, projector)

    async def update_openmeter_customer(
        self,
        lookup: CustomerLookup,
        change: Callable[[CustomerState, datetime], OpenMeterDetails],
        projector: Projector[T],
    ) -> T | Rejected:
        return await self.openmeter.update_customer(lookup, change, projector)

    async def credit_note(self, command: CreditNoteCommand) -> Reply:
        return await run_credit_note(self, command)  # issue 18

    async def openmeter_turn(
        self, target: OmTarget, command: OpenMeterCommand | None, view: OmView[T]
    ) -> T | Rejected:
        return await self.om_entitlements.turn(target, command, view)

    # -- time ----------------------------------------------------------------------------------

    async def run_due(self) -> int:
        """Apply every transition due by now (SCH-1), in batches of customers whose facts share
        one durable wait. A customer whose catch-up raises is logged and tried again later;
        the others go on. Returns the number of customers that had something due."""
        self.turns.admit(write=True)
        count = 0
        while batch := self.timers.pop_due(self._clock.now(), SWEEP_BATCH):
            last = 0
            for customer_id in batch:
                actor = self.directory.get(customer_id)
                assert actor is not None, customer_id
                last = max(last, self._sweep_one(actor))
            count += len(batch)
            if last:
                await self.turns.durable(last)
            else:
                await checkpoint()  # a long sweep never holds the loop for its whole length
        return count

    def _sweep_one(self, actor: CustomerActor) -> int:
        ctx = self.context()
        try:
            _, position = self.turns.run(actor, Tick(), ctx)
        except ShardUnavailable:
            raise
        except Exception:
            logger.exception("catch-up of customer %s failed; retrying later", actor.state.id)
            self.timers.postpone(actor.state.id, ctx.now + SWEEP_RETRY)
            return actor.state.journal_position  # what catch-up applied before it raised
        return position

    # -- recovery ------------------------------------------------------------------------------

    def restore(
        self,
        catalog: Catalog,
        states: list[CustomerState],
        keys: dict[date, list[bytes]],
        stored: Iterable[tuple[uuid.UUID, bytes]] = (),
        stored_keys: Iterable[Keys] = (),
    ) -> None:
        recovery.restore(self, catalog, states, keys, stored, stored_keys)

    def customer_order(self) -> list[uuid.UUID]:
        return self.directory.ids_in_order()

    def stored_customer(self, customer_id: uuid.UUID) -> bytes | CustomerState:
        return self.directory.stored_or_state(customer_id)

    async def hold_catalog_version(self, version: int) -> None:
        """SCL-77: journal that this shard holds catalog `version` (durable before it counts),
        so a restart recovers it rather than starting at 0."""
        if version > self.catalog_version:
            self.turns.admit(write=True)
            position = self.turns.commit_catalog(CatalogVersionHeld(at=self.now(), version=version))
            self.catalog_version = version
            await self.turns.durable(position)

    def numbers_taken(self) -> dict[str, int]:
        return self.turns.sequences.taken()

    def restore_numbers(self, taken: dict[str, int]) -> None:
        self.turns.sequences.restore(taken)

    def replay(self, record: JournalRecord) -> None:
        recovery.replay(self, record)
        outbox = self.turns.outbox
        if outbox is not None and record.customer_id is not None and record.facts:
            actor = self.directory.find(CustomerLookup(customer_id=record.customer_id))
            external_id = actor.state.external_id if actor is not None else None
            outbox.committed(record.position, record.customer_id, external_id, record.facts, None)

    async def notifications_logged(self, position: int) -> None:
        if self.turns.outbox is not None:
            await self.turns.outbox.logged_through(position)

    def reindex(self) -> None:
        recovery.reindex(self)
