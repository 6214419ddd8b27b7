"""Every customer of a shard and the indexes that find one: by external id, by Stripe customer
id, and the owner of each subscription and invoice. Kept in step with the facts applied.

Customers are kept compact (issue 21): a bounded warm set as actors, every other customer in
its stored form (persistence/compact_state.py), decoded into an actor on its first touch (any
lookup here). When the warm set is full, the customer warmed longest ago is put back in its
stored form: encoded again only if a turn changed it since it was decoded. Every state is
journalled, so this loses nothing. An actor that anything still holds (a turn awaiting the
disk, a reply being built) is never put back: it stays the one actor of its customer.
"""

from __future__ import annotations

import sys
import uuid
from collections import deque
from collections.abc import Iterable, Iterator, Sequence

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
from allotment.persistence.compact_state import (
    Keys,
    decode_state,
    encode_stored,
    keys_of,
    read_keys,
)
from allotment.runtime.actor import CustomerActor
from allotment.runtime.ports import CustomerLookup

__all__ = ("WARM_CUSTOMERS_MAX", "CustomerDirectory")

WARM_CUSTOMERS_MAX = 131_072  # the default `Settings.warm_customers_max`
# References to an actor (or its state) that only the directory's own bookkeeping holds while
# `_evict` looks at it: the dict's (or the actor's slot), the local name, getrefcount's argument.
_ONLY_OURS = 3
_TRIES = 64  # warm customers looked at per admission

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
        "_clean",
        "_entitlement_owner",
        "_grant_owner",
        "_note_keys",
        "_order",
        "_owner_of",
        "_recorded_keys",
        "_reservation_owner",
        "_restaged",
        "_stored",
        "_subjects_of",
        "_warm_order",
        "note_numbers",
        "plans_in_use",
        "warm_max",
        "with_unapplied_payments",
    )

    def __init__(self, warm_max: int = WARM_CUSTOMERS_MAX) -> None:
        self.warm_max = max(1, warm_max)
        self._actors: dict[uuid.UUID, CustomerActor] = {}  # the warm set, decoded
        # The stored form of every customer not warm, and of warm ones decoded and unchanged
        # since: `_clean` holds the journal position each was decoded at.
        self._stored: dict[uuid.UUID, bytes] = {}
        self._clean: dict[uuid.UUID, int] = {}
        self._warm_order: deque[uuid.UUID] = deque()  # oldest warmed first
        # A lazy recovery's: the keys its snapshot recorded for its first customers, in order,
        # read by `reindex`, and those put back re-encoded since (their recorded keys are stale).
        self._recorded_keys: tuple[int, Iterator[Keys]] = (0, iter(()))
        self._restaged: set[uuid.UUID] = set()
        self._by_external_id: dict[str, uuid.UUID] = {}
        self._by_stripe_id: dict[str, uuid.UUID] = {}
        # The console's search (CON-20): creation order for its pages, and emails (lowercase)
        # -> every customer that ever had it; `search` keeps those that still have it.
        self._order: list[uuid.UUID] = []
        # (one customer's id alone, not a set: a set per customer was 216 bytes of each 1.6 KB)
        self._by_email: dict[str, uuid.UUID | set[uuid.UUID]] = {}
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
        return len(self._order)

    @property
    def warm(self) -> int:
        """How many customers are decoded now."""
        return len(self._actors)

    def states(self) -> Iterator[CustomerState]:
        """Every customer's state now, in creation order (customers created while the caller
        iterates are not included). Cold ones are decoded for the caller only: a full scan
        (an analytics snapshot, a listing) warms nobody, and holds one at a time."""
        return self._states(self._order[:])

    def _states(self, order: list[uuid.UUID]) -> Iterator[CustomerState]:
        for customer_id in order:
            actor = self._actors.get(customer_id)
            yield actor.state if actor is not None else decode_state(self._stored[customer_id])

    def ids_in_order(self) -> list[uuid.UUID]:
        """Every customer's id in creation order, copied (customers are never removed)."""
        return self._order[:]

    def stored_or_state(self, customer_id: uuid.UUID) -> bytes | CustomerState:
        """The customer's stored form when current, else its state (a checkpoint writes the
        one and encodes the other). A checkpoint asks customer by customer as it encodes:
        asking for all of them at once held the loop 85 ms at 100k customers."""
        actor = self._actors.get(customer_id)
        if actor is None or self._clean.get(customer_id) == actor.state.journal_position:
            return self._stored[customer_id]
        return actor.state

    def get(self, customer_id: uuid.UUID) -> CustomerActor | None:
        actor = self._actors.get(customer_id)
        return actor if actor is not None else self._warm(customer_id)

    def _warm(self, customer_id: uuid.UUID) -> CustomerActor | None:
        stored = self._stored.get(customer_id)
        if stored is None:
            return None
        actor = CustomerActor(decode_state(stored))
        self._clean[customer_id] = actor.state.journal_position
        self._admit(customer_id, actor)
        return actor

    def _admit(self, customer_id: uuid.UUID, actor: CustomerActor) -> None:
        self._actors[customer_id] = actor
        self._warm_order.append(customer_id)
        if len(self._actors) > self.warm_max:
            self._evict(len(self._actors) - self.warm_max)

    def _evict(self, count: int) -> None:
        """Put `count` of the oldest warmed customers back in their stored form, skipping
        (for a later round) those something outside the directory still holds. At most
        `_TRIES` are looked at: while a scan holds many states (an analytics snapshot's list),
        the warm set may pass its bound for a while rather than every touch scan it whole."""
        order, tries = self._warm_order, min(len(self._warm_order), _TRIES)
        while count > 0 and tries > 0:
            tries -= 1
            customer_id = order.popleft()
            actor = self._actors[customer_id]
            state = actor.state
            if sys.getrefcount(actor) > _ONLY_OURS or sys.getrefcount(state) > _ONLY_OURS:
                order.append(customer_id)
                continue
            if self._clean.pop(customer_id, None) != state.journal_position:
                self._stored[customer_id] = encode_stored(state)
                if self._recorded_keys[0]:  # replay changed it: its snapshot's keys are stale
                    self._restaged.add(customer_id)
            del self._actors[customer_id], actor, state
            count -= 1

    def find(self, lookup: CustomerLookup) -> CustomerActor | None:
        """The customer a request names (EVT-10: by exactly one of the three identifiers)."""
        if lookup.external_id is not None:
            customer_id = self._by_external_id.get(lookup.external_id)
        elif lookup.stripe_customer_id is not None:
            customer_id = self._by_stripe_id.get(lookup.stripe_customer_id)
        else:
            customer_id = lookup.customer_id
        if customer_id is None:
            return None
        actor = self._actors.get(customer_id)  # `get` inlined: every check comes through here
        return actor if actor is not None else self._warm(customer_id)

    def by_subject(self, subject: str) -> CustomerActor | None:
        """The live customer a CloudEvent subject is attributed to (OM-8)."""
        customer_id = self._by_subject.get(subject)
        return self.get(customer_id) if customer_id is not None else None

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
        return self.get(customer_id) if customer_id is not None else None

    def owner(self, entity_id: uuid.UUID) -> CustomerActor | None:
        """The customer owning a subscription, an invoice or a credit note."""
        customer_id = self._owner_of.get(entity_id)
        return self.get(customer_id) if customer_id is not None else None

    def reservation_owner(self, reservation_id: str) -> CustomerActor | None:
        """The customer holding a reservation the environment still keeps (RSV-28)."""
        customer_id = self._reservation_owner.get(reservation_id)
        return self.get(customer_id) if customer_id is not None else None

    def entitlement_owner(self, entitlement_id: str) -> CustomerActor | None:
        """The customer of an OpenMeter entitlement, deleted or not (OM-108)."""
        customer_id = self._entitlement_owner.get(entitlement_id)
        return self.get(customer_id) if customer_id is not None else None

    def grant_owner(self, grant_id: str) -> CustomerActor | None:
        """The customer of an OpenMeter grant, voided or not (OM-121)."""
        customer_id = self._grant_owner.get(grant_id)
        return self.get(customer_id) if customer_id is not None else None

    def search(self, text: str, offset: int, limit: int) -> tuple[int, list[CustomerActor]]:
        """How many customers match and the page [offset, offset + limit) of them (see
        `ports.CustomerSearch`): a slice of the creation order, or two index lookups."""
        if not text:
            page = self._order[offset : offset + limit]
            return len(self._order), [self._touch(customer_id) for customer_id in page]
        found: list[CustomerActor] = []
        by_reference = self.find(CustomerLookup(external_id=text))
        if by_reference is not None:
            found.append(by_reference)
        email = text.strip().lower()
        held = self._by_email.get(email, ())
        for customer_id in sorted((held,) if isinstance(held, uuid.UUID) else held, key=str):
            actor = self._touch(customer_id)
            now = actor.state.profile.email
            if now is not None and now.lower() == email and actor is not by_reference:
                found.append(actor)
        return len(found), found[offset : offset + limit]

    def _touch(self, customer_id: uuid.UUID) -> CustomerActor:
        actor = self.get(customer_id)
        assert actor is not None, customer_id  # every indexed id is a customer's
        return actor

    def _index_email(self, state: CustomerState) -> None:
        self._email(state.id, state.profile.email)

    def _email(self, customer_id: uuid.UUID, email: str | None) -> None:
        if email:
            key = email.lower()
            held = self._by_email.get(key)
            if held is None or held == customer_id:
                self._by_email[key] = customer_id
            elif isinstance(held, set):
                held.add(customer_id)
            else:
                self._by_email[key] = {held, customer_id}

    def register(self, state: CustomerState) -> CustomerActor:
        actor = CustomerActor(state)
        self._order.append(state.id)
        self._index_email(state)
        if state.external_id is not None:
            self._by_external_id[state.external_id] = state.id
        if state.stripe_customer_id is not None:
            self._by_stripe_id[state.stripe_customer_id] = state.id
        self._admit(state.id, actor)
        return actor

    def register_stored(self, customer_id: uuid.UUID, stored: bytes) -> None:
        """A customer of a snapshot, left in its stored form; `reindex` indexes it (after
        replay) from the keys `expect_keys` names, unless replay changed it."""
        self._order.append(customer_id)
        self._stored[customer_id] = stored

    def expect_keys(self, keys: Iterable[Keys]) -> None:
        """The keys of every customer registered so far, in their order, as the snapshot
        recorded them: iterated once, by `reindex`."""
        self._recorded_keys = (len(self._order), iter(keys))

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

    def reindex(self) -> Iterator[tuple[uuid.UUID, Keys]]:
        """Rebuild every index from the customers (after recovery, whose replay applies facts
        without indexing them): a warm one's from its state, a cold one's from the keys its
        snapshot recorded (or its stored form holds). Yields every customer's id and keys as
        it indexes them (the timers and sequences are rebuilt from them)."""
        (recorded, pending), restaged = self._recorded_keys, self._restaged
        self._recorded_keys, self._restaged = (0, iter(())), set()
        for position, customer_id in enumerate(self._order):
            snapshot_keys = next(pending) if position < recorded else None
            # The id kept is the directory's: the snapshot's copy is freed with its keys.
            assert snapshot_keys is None or snapshot_keys.id == customer_id, customer_id
            actor = self._actors.get(customer_id)
            if actor is not None:
                keys = keys_of(actor.state)
            elif snapshot_keys is not None and customer_id not in restaged:
                keys = snapshot_keys
            else:
                keys = read_keys(self._stored[customer_id])
            self._index_keys(customer_id, keys)
            yield customer_id, keys

    def _index_keys(self, customer_id: uuid.UUID, keys: Keys) -> None:
        self._email(customer_id, keys.email)
        if keys.external_id is not None:
            self._by_external_id[keys.external_id] = customer_id
        if keys.stripe_customer_id is not None:
            self._by_stripe_id[keys.stripe_customer_id] = customer_id
        if keys.subjects:
            self._subjects_of[customer_id] = keys.subjects
            for subject in keys.subjects:
                self._by_subject[subject] = customer_id
        self._owner_of.update(dict.fromkeys(keys.owned, customer_id))
        self.plans_in_use.update(keys.plans)
        self._note_keys.update(dict.fromkeys(keys.note_keys, customer_id))
        self.note_numbers.update(keys.note_numbers)
        if keys.unapplied:
            self.with_unapplied_payments.add(customer_id)
        self._reservation_owner.update(dict.fromkeys(keys.reservations, customer_id))
        self._entitlement_owner.update(dict.fromkeys(keys.entitlements, customer_id))
        self._grant_owner.update(dict.fromkeys(keys.grants, customer_id))
