"""Every customer of a shard and the indexes that find one: by external id, by Stripe customer
id, and the owner of each subscription and invoice. Kept in step with the facts applied."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence

from allotment.domain.facts import (
    CreditNoteCreated,
    CreditNoteFinalized,
    CustomerOpenMeterSet,
    CustomerProfileSet,
    Fact,
    InvoiceIssued,
    PaymentRecorded,
    StripeCustomerLinked,
    SubscriptionStarted,
)
from allotment.domain.om_facts import EntitlementCreated, GrantIssued
from allotment.domain.payment_records import PaymentStatus
from allotment.domain.reservation_facts import (
    ReservationCommitted,
    ReservationExpired,
    ReservationHeld,
    ReservationReleased,
)
from allotment.domain.state import CustomerState
from allotment.runtime.actor import CustomerActor
from allotment.runtime.ports import CustomerLookup

__all__ = ("CustomerDirectory",)

_SETTLING = (ReservationCommitted, ReservationReleased, ReservationExpired)  # may forget (RSV-27)
# Every fact type `index` reads. Facts are final structs, never subclassed, so one set lookup
# passes over the usage and credit facts of every event without the chain of isinstance.
_INDEXED = frozenset(
    (
        SubscriptionStarted,
        InvoiceIssued,
        StripeCustomerLinked,
        PaymentRecorded,
        CustomerOpenMeterSet,
        CustomerProfileSet,
        ReservationHeld,
        *_SETTLING,
        CreditNoteCreated,
        CreditNoteFinalized,
        EntitlementCreated,
        GrantIssued,
    )
)


class CustomerDirectory:
    __slots__ = (
        "_actors",
        "_by_email",
        "_by_external_id",
        "_by_stripe_id",
        "_by_subject",
        "_entitlement_owner",
        "_grant_owner",
        "_note_keys",
        "_order",
        "_owner_of",
        "_reservation_owner",
        "_subjects_of",
        "note_numbers",
        "plans_in_use",
        "with_unapplied_payments",
    )

    def __init__(self) -> None:
        self._actors: dict[uuid.UUID, CustomerActor] = {}
        self._by_external_id: dict[str, uuid.UUID] = {}
        self._by_stripe_id: dict[str, uuid.UUID] = {}
        # The console's search (CON-20): creation order for its pages, and emails (lowercase)
        # -> every customer that ever had it; `search` keeps those that still have it.
        self._order: list[uuid.UUID] = []
        self._by_email: dict[str, set[uuid.UUID]] = {}
        # OM-8: CloudEvent subjects of live OpenMeter customers (`usageAttribution.subjectKeys`)
        self._by_subject: dict[str, uuid.UUID] = {}
        self._subjects_of: dict[uuid.UUID, tuple[str, ...]] = {}
        # subscription, invoice and credit note id -> customer
        self._owner_of: dict[uuid.UUID, uuid.UUID] = {}
        self._note_keys: dict[str, uuid.UUID] = {}  # CN-12: idempotency key -> customer
        self.note_numbers: set[str] = set()  # CN-22: every credit note number given
        self._reservation_owner: dict[str, uuid.UUID] = {}  # RSV-28: reservation id -> customer
        # OM-108: OpenMeter entitlement id -> customer (ids are the environment's; never removed,
        # as a deleted entitlement stays readable by id)
        self._entitlement_owner: dict[str, uuid.UUID] = {}
        # OM-121: OpenMeter grant id (its ULID) -> customer; never removed either, as a voided
        # grant, or one of a deleted entitlement, stays listed and answers a second void (409)
        self._grant_owner: dict[str, uuid.UUID] = {}
        self.plans_in_use: set[uuid.UUID] = set()  # PLN-12: their priced fields are frozen
        # Customers holding an unapplied payment: the admin listing reads only these (MNY-C3).
        self.with_unapplied_payments: set[uuid.UUID] = set()

    def __len__(self) -> int:
        return len(self._actors)

    def actors(self) -> Iterator[CustomerActor]:
        return iter(self._actors.values())

    def get(self, customer_id: uuid.UUID) -> CustomerActor | None:
        return self._actors.get(customer_id)

    def find(self, lookup: CustomerLookup) -> CustomerActor | None:
        """The customer a request names (EVT-10: by exactly one of the three identifiers)."""
        if lookup.external_id is not None:
            customer_id = self._by_external_id.get(lookup.external_id)
        elif lookup.stripe_customer_id is not None:
            customer_id = self._by_stripe_id.get(lookup.stripe_customer_id)
        else:
            customer_id = lookup.customer_id
        return self._actors.get(customer_id) if customer_id is not None else None

    def by_subject(self, subject: str) -> CustomerActor | None:
        """The live customer a CloudEvent subject is attributed to (OM-8)."""
        customer_id = self._by_subject.get(subject)
        return self._actors.get(customer_id) if customer_id is not None else None

    def _index_subjects(self, state: CustomerState) -> None:
        for subject in self._subjects_of.pop(state.id, ()):
            if self._by_subject.get(subject) == state.id:
                del self._by_subject[subject]
        details = state.openmeter
        if details is not None and details.deleted_at is None:
            self._subjects_of[state.id] = details.subject_keys
            for subject in details.subject_keys:
                self._by_subject[subject] = state.id

    def note_key_owner(self, key: str) -> CustomerActor | None:
        """The customer holding a credit note made with idempotency key `key` (CN-12)."""
        customer_id = self._note_keys.get(key)
        return self._actors[customer_id] if customer_id is not None else None

    def owner(self, entity_id: uuid.UUID) -> CustomerActor | None:
        """The customer owning a subscription, an invoice or a credit note."""
        customer_id = self._owner_of.get(entity_id)
        return self._actors[customer_id] if customer_id is not None else None

    def reservation_owner(self, reservation_id: str) -> CustomerActor | None:
        """The customer holding a reservation the environment still keeps (RSV-28)."""
        customer_id = self._reservation_owner.get(reservation_id)
        return self._actors[customer_id] if customer_id is not None else None

    def entitlement_owner(self, entitlement_id: str) -> CustomerActor | None:
        """The customer of an OpenMeter entitlement, deleted or not (OM-108)."""
        customer_id = self._entitlement_owner.get(entitlement_id)
        return self._actors[customer_id] if customer_id is not None else None

    def grant_owner(self, grant_id: str) -> CustomerActor | None:
        """The customer of an OpenMeter grant, voided or not (OM-121)."""
        customer_id = self._grant_owner.get(grant_id)
        return self._actors[customer_id] if customer_id is not None else None

    def search(self, text: str, offset: int, limit: int) -> tuple[int, list[CustomerActor]]:
        """How many customers match and the page [offset, offset + limit) of them (see
        `ports.CustomerSearch`): a slice of the creation order, or two index lookups."""
        if not text:
            page = self._order[offset : offset + limit]
            return len(self._order), [self._actors[customer_id] for customer_id in page]
        found: list[CustomerActor] = []
        by_reference = self.find(CustomerLookup(external_id=text))
        if by_reference is not None:
            found.append(by_reference)
        email = text.strip().lower()
        for customer_id in sorted(self._by_email.get(email, ()), key=str):
            actor = self._actors[customer_id]
            now = actor.state.profile.email
            if now is not None and now.lower() == email and actor is not by_reference:
                found.append(actor)
        return len(found), found[offset : offset + limit]

    def _index_email(self, state: CustomerState) -> None:
        if state.profile.email:
            self._by_email.setdefault(state.profile.email.lower(), set()).add(state.id)

    def register(self, state: CustomerState) -> CustomerActor:
        actor = CustomerActor(state)
        self._actors[state.id] = actor
        self._order.append(state.id)
        self._index_email(state)
        if state.external_id is not None:
            self._by_external_id[state.external_id] = state.id
        if state.stripe_customer_id is not None:
            self._by_stripe_id[state.stripe_customer_id] = state.id
        return actor

    def index(self, state: CustomerState, facts: Sequence[Fact]) -> None:
        """Index what `facts`, just applied to `state`, introduced."""
        for fact in facts:
            if type(fact) not in _INDEXED:
                continue
            # The facts of a reserve and a commit first: they come on every such turn.
            if isinstance(fact, ReservationHeld):
                self._reservation_owner[fact.reservation_id] = state.id
            elif isinstance(fact, _SETTLING):
                for forgotten in fact.forgets:  # RSV-27: the index stays bounded too
                    self._reservation_owner.pop(forgotten, None)
            elif isinstance(fact, SubscriptionStarted):
                self._owner_of[fact.subscription.id] = state.id
                self.plans_in_use.add(fact.subscription.plan_id)
            elif isinstance(fact, InvoiceIssued):
                self._owner_of[fact.invoice.id] = state.id
            elif isinstance(fact, CustomerOpenMeterSet | CustomerProfileSet):
                self._index_subjects(state)  # both idempotent: the one that did not change
                self._index_email(state)  # indexes the same again
            elif isinstance(
                fact, EntitlementCreated | GrantIssued | CreditNoteCreated | CreditNoteFinalized
            ):
                self._index_named(state, fact)
            elif isinstance(fact, StripeCustomerLinked):
                self._by_stripe_id[fact.stripe_customer_id] = state.id
            elif (
                isinstance(fact, PaymentRecorded) and fact.record.status is PaymentStatus.UNAPPLIED
            ):
                self.with_unapplied_payments.add(state.id)

    def _index_named(
        self,
        state: CustomerState,
        fact: EntitlementCreated | GrantIssued | CreditNoteCreated | CreditNoteFinalized,
    ) -> None:
        """Entities a request may name without their customer: OpenMeter entitlements and
        grants (issue 17), credit notes, their keys and numbers (issue 18)."""
        if isinstance(fact, EntitlementCreated | GrantIssued):
            self._index_openmeter(state, fact)
        else:
            self._index_note(state, fact)

    def _index_note(
        self, state: CustomerState, fact: CreditNoteCreated | CreditNoteFinalized
    ) -> None:
        if isinstance(fact, CreditNoteFinalized):
            self.note_numbers.add(fact.number)
            return
        note = fact.note
        self._owner_of[note.id] = state.id
        if note.idempotency_key is not None:
            self._note_keys[note.idempotency_key] = state.id
        if note.number is not None:
            self.note_numbers.add(note.number)

    def _index_openmeter(
        self, state: CustomerState, fact: EntitlementCreated | GrantIssued
    ) -> None:
        """OM-108, OM-121: the ids a request may name without its customer."""
        if isinstance(fact, EntitlementCreated):
            self._entitlement_owner[fact.definition.id] = state.id
        else:
            self._grant_owner[fact.grant.public_id] = state.id

    def reindex(self) -> None:
        """Rebuild every index from the customers' states (after recovery, whose replay
        applies facts without indexing them)."""
        for actor in self._actors.values():
            state = actor.state
            self._index_email(state)
            if state.external_id is not None:
                self._by_external_id[state.external_id] = state.id
            if state.stripe_customer_id is not None:
                self._by_stripe_id[state.stripe_customer_id] = state.id
            if state.openmeter is not None:
                self._index_subjects(state)
            for sub in state.subscriptions.values():
                self._owner_of[sub.id] = state.id
                self.plans_in_use.add(sub.plan_id)
            for invoice_id in state.invoices:
                self._owner_of[invoice_id] = state.id
            for note in state.credit_notes.values():
                self._index_note(state, CreditNoteCreated(at=note.created_at, note=note))
            if any(p.status is PaymentStatus.UNAPPLIED for p in state.payments.values()):
                self.with_unapplied_payments.add(state.id)
            for reservation_id in state.reservations:
                self._reservation_owner[reservation_id] = state.id
            for entitlement_id, ent in state.entitlements.items():
                self._entitlement_owner[entitlement_id] = state.id
                for grant in ent.grants.values():
                    self._grant_owner[grant.public_id] = state.id
