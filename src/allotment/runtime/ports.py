"""What the front door sees of the runtime: the `Shard` protocol and the values it takes.

HTTP depends on these only. `LocalShard` (runtime/local_shard.py) is the in-process implementation;
`QueuedShard` (runtime/queued_shard.py) forwards every call through a mailbox, as a shard in
another process (a Ray actor) would be reached. Sharding over Ray adds a class, not a rewrite.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Generic, Protocol, TypeVar

import msgspec

from allotment.domain.catalog import Catalog
from allotment.domain.catalog_facts import CatalogFact, CatalogUpdated
from allotment.domain.commands import (
    Command,
    CommitReservation,
    ExtendReservation,
    Preflight,
    RecordUsage,
    ReleaseReservation,
    Reserve,
)
from allotment.domain.context import TurnContext
from allotment.domain.cost import PriceTable
from allotment.domain.credit_note_commands import CreditNoteCommand
from allotment.domain.credit_note_facts import RefundRequested
from allotment.domain.credit_note_state import RefundStatus
from allotment.domain.meters import CloudEvent
from allotment.domain.om_commands import OpenMeterCommand
from allotment.domain.payment_records import PaymentRecord
from allotment.domain.replies import Decision, Rejected, Reply
from allotment.domain.state import CustomerState, OpenMeterDetails, Profile
from allotment.persistence.ports import ApiKey, KeyAdmin, KeyAuthority, KeyRefused
from allotment.persistence.store_ports import AuditRecord
from allotment.runtime.key_claims import KeyClaim
from allotment.runtime.records import EvaluationContext

__all__ = (
    "ApiKey",
    "AuditRecord",
    "CatalogChange",
    "CustomerLookup",
    "CustomerPage",
    "CustomerSearch",
    "KeyAdmin",
    "KeyAuthority",
    "KeyClaim",
    "KeyRefused",
    "OmTarget",
    "OmView",
    "Projector",
    "RefundAnswer",
    "RefundIssuer",
    "Shard",
)

T = TypeVar("T")
Projector = Callable[[CustomerState, Catalog, datetime], T]
CatalogChange = Callable[[Catalog, TurnContext], CatalogFact]
"""Decides a catalog fact against the current catalog, or raises to refuse (OpenMeter)."""
OmView = Callable[[CustomerState, Reply | None, datetime], T]
"""What an OpenMeter entitlement route makes of the customer's state after its turn, given
the turn's reply (None for a read)."""


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


class CustomerSearch(msgspec.Struct, frozen=True, kw_only=True):
    """A page of customers (the console's search, CON-20): `text` empty lists every customer
    in creation order; otherwise the customer whose reference id is exactly `text`, and those
    whose email is `text` (case-insensitive). Both are index lookups, never a scan."""

    text: str = ""
    offset: int = 0
    limit: int = 25
    after: str = ""
    """A previous page's `CustomerPage.next`: the page starts where that one ended, and
    `offset` is ignored. Opaque: one shard writes a position, a router one per shard
    (SCL-100), so a deep page costs what the first does."""

    def start(self) -> int:
        """Where a single shard's page starts: `after` when it is one shard's position."""
        return int(self.after) if self.after.isdigit() else self.offset


class CustomerPage(msgspec.Struct, Generic[T], frozen=True, kw_only=True):
    total: int  # every customer matching, across pages
    items: list[T]
    next: str = ""  # `CustomerSearch.after` for the following page; "" after the last


class OmTarget:
    """Whose OpenMeter entitlements a request names (OM-107, OM-108): exactly one of a
    customer's id or key (`customerIdOrKey`), a subject key or customer id or key
    (`subjectIdOrKey` of the deprecated subject paths), an entitlement id, whoever owns it
    (`/api/v1/entitlements/{entitlementId}`), or a grant id, whoever owns it
    (`/api/v1/grants/{grantId}`, OM-121)."""

    __slots__ = ("customer", "entitlement_id", "grant_id", "subject")

    def __init__(
        self,
        *,
        customer: str | None = None,
        subject: str | None = None,
        entitlement_id: str | None = None,
        grant_id: str | None = None,
    ) -> None:
        named = (customer, subject, entitlement_id, grant_id)
        assert named.count(None) == len(named) - 1, "name exactly one"
        self.customer = customer
        self.subject = subject
        self.entitlement_id = entitlement_id
        self.grant_id = grant_id


class Shard(Protocol):
    """The customers of one environment (or a slice of them), each call one customer turn.

    Every coroutine may raise `runtime.errors.ShardUnavailable` (the shard is being rebuilt
    from disk) and, for changes, `runtime.errors.Overloaded` (the journal's backlog is over
    its bound); nothing changed in either case. A change is returned only once durable.
    """

    @property
    def catalog(self) -> Catalog:
        """The environment's current catalog (plans, features, credit models)."""
        ...

    def customer_count(self) -> int: ...

    async def create_customer(self, external_id: str, profile: Profile) -> Reply:
        """createCustomer (CUS-1..CUS-6): a new customer, or the profile of an existing one."""
        ...

    async def command(self, lookup: CustomerLookup, command: Command) -> Reply:
        """Run `command` on an existing customer; a NOT_FOUND rejection when there is none."""
        ...

    async def command_on_owner(self, entity_id: uuid.UUID, command: Command, missing: str) -> Reply:
        """Run `command` on the customer owning a subscription or invoice; NOT_FOUND with
        `missing` as its message when nobody owns `entity_id`."""
        ...

    async def evaluate(
        self,
        external_id: str,
        feature_key: str,
        requested: Decimal | None,
        audit: EvaluationContext,
    ) -> Decision:
        """checkEntitlement (`requested` None) or evaluateEntitlement, with its audit record."""
        ...

    async def ingest(
        self, lookup: CustomerLookup, event: RecordUsage, feature_uuid: uuid.UUID | None
    ) -> Reply:
        """ingestEvent (EVT-*): idempotent by the event's key (a CONFLICT rejection)."""
        ...

    async def ingest_batch(
        self, events: list[tuple[CustomerLookup, RecordUsage, uuid.UUID | None]]
    ) -> list[Reply]:
        """Many events, each judged as `ingest` would, acknowledged together."""
        ...

    async def read(self, lookup: CustomerLookup, projector: Projector[T]) -> T | None:
        """`projector` applied to one customer's caught-up state; None when there is none."""
        ...

    async def read_on_owner(self, entity_id: uuid.UUID, projector: Projector[T]) -> T | None:
        """As `read`, for the customer owning a subscription or invoice."""
        ...

    async def reserve(self, lookup: CustomerLookup, command: Reserve | Preflight) -> Reply:
        """Hold every item of `command` or none (RSV-1..RSV-6); NOT_FOUND for no customer, a
        CONFLICT for an id another customer uses."""
        ...

    async def settle(
        self,
        reservation_id: str,
        command: CommitReservation | ReleaseReservation | ExtendReservation,
        customer: CustomerLookup | None,
    ) -> Reply:
        """Commit, release or extend a reservation found by id (RSV-12..RSV-20, RSV-28)."""
        ...

    async def read_reservation(
        self, reservation_id: str, customer: CustomerLookup | None, projector: Projector[T]
    ) -> T | Rejected:
        """`projector` on the caught-up state of a reservation's customer, or NOT_FOUND."""
        ...

    async def upsert_catalog(self, update: CatalogUpdated) -> Catalog:
        """Check, journal and apply a catalog change (PLN-10, PLN-12).

        Raises:
            CatalogInvalid: nothing changed.
        """
        ...

    @property
    def price_table(self) -> PriceTable:
        """The model prices events are priced with now (OPS-D6)."""
        ...

    async def replace_prices(self, table: PriceTable) -> PriceTable:
        """Check, journal and apply a new model price table (OPS-D6).

        Raises:
            ValueError: the table is invalid (each problem named); nothing changed.
        """
        ...

    async def record_unapplied_payment(self, record: PaymentRecord) -> PaymentRecord:
        """Keep a payment that no customer of the environment owns (MNY-C3), durably; the
        record already kept for the same checkout session, if any, is returned instead."""
        ...

    async def list_unapplied_payments(self) -> list[PaymentRecord]:
        """Every unapplied payment of the environment, its own and its customers', oldest
        first (MNY-C3)."""
        ...

    async def claim_keys(self, claims: list[KeyClaim]) -> list[bool]:
        """Keys the environment holds once, claimed on (or given back to) their home shard
        for the shard each names, durably: True where that shard may use the key, False where
        another holds it (runtime/key_claims.py; docs/scale-out.md SCL-80..SCL-86)."""
        ...

    # -- OpenMeter (issue 16, runtime/openmeter.py) ----------------------------------------

    async def ingest_cloud_events(self, events: list[CloudEvent]) -> int:
        """Journal the CloudEvents not seen before (by source and id), in one group commit;
        returns how many were new (OM-5..OM-9)."""
        ...

    async def change_catalog(self, change: CatalogChange) -> Catalog:
        """Journal and apply the catalog fact `change` decides against the current catalog
        (meters, OpenMeter features). Whatever `change` raises refuses the change."""
        ...

    async def create_openmeter_customer(
        self, key: str | None, details: OpenMeterDetails, projector: Projector[T]
    ) -> T | Rejected:
        """createCustomer through OpenMeter (OM-20, OM-21)."""
        ...

    async def update_openmeter_customer(
        self,
        lookup: CustomerLookup,
        change: Callable[[CustomerState, datetime], OpenMeterDetails],
        projector: Projector[T],
    ) -> T | Rejected:
        """updateCustomer and deleteCustomer through OpenMeter (OM-22..OM-24)."""
        ...

    async def all_customers(self, projector: Projector[T]) -> list[T]:
        """`projector` over every customer of the environment, in creation order."""
        ...

    async def find_customers(
        self, search: CustomerSearch, projector: Projector[T]
    ) -> CustomerPage[T]:
        """One page of `search`'s customers, `projector` over each (no catch-up: a listing,
        like `all_customers`, but bounded by the page and found through indexes)."""
        ...

    async def recent_denials(self, lookup: CustomerLookup, limit: int) -> list[AuditRecord]:
        """The customer's latest check denials since the server started, newest first, from
        a bounded ring of the environment's last denials (CON-26; the analytics history keeps
        every audit record); [] when there is no such customer."""
        ...

    # -- OpenMeter entitlements (issue 17, runtime/om_desk.py) -----------------------------

    async def openmeter_turn(
        self, target: OmTarget, command: OpenMeterCommand | None, view: OmView[T]
    ) -> T | Rejected:
        """Run `command` (None: only catch up, a read) on the customer `target` names, then
        `view` its state, once durable; NOT_FOUND (field named) when nobody answers to
        `target`, the turn's own rejection when refused (nothing changed)."""
        ...

    # -- credit notes (issue 18, runtime/credit_notes.py) -----------------------------------

    async def credit_note(self, command: CreditNoteCommand) -> Reply:
        """Run a credit-note command on the customer owning its invoice or note (a create
        with a known idempotency key goes to the customer holding the key, CN-12); NOT_FOUND
        when nobody owns it. Replies `CreditNoteShown` or `Rejected` (docs/credit-notes.md)."""
        ...


class RefundIssuer(Protocol):
    """Sends a REFUND note's refund to the payment provider (CN-8, CN-9). The refund edge
    (payments/) implements it; the shard's refund desk calls it for each `RefundRequested` not
    yet settled, and records the answer with `RecordRefund`."""

    async def issue(self, request: RefundRequested, idempotency_key: str) -> RefundAnswer:
        """Ask the provider for the refund. `idempotency_key` is stable per note, so a retry
        after a crash never refunds twice."""
        ...


class RefundAnswer(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """The provider's answer: its refund id, and the status it reported."""

    status: RefundStatus
    reference: str | None = None
