"""`ShardRouter`: one environment's customers split over N shards, behind the `Shard` protocol.

The front door talks to a router exactly as to one shard (no route changes). A call naming
one customer goes to that customer's shard alone, found in O(1) from the call's arguments
(runtime/placement.py: the reference id's hash, or the tag in a minted id; SCL-1..SCL-6); a
cross-customer read scatters to every shard and gathers (SCL-10..SCL-12); a catalog or price
change is broadcast under a new catalog version, and a shard refuses a call stamped with an
older version than its own, which the router retries once the change is everywhere
(runtime/catalog_versions.py, SCL-13..SCL-16). docs/scale-out.md explains the choices.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TypeVar

import anyio
import msgspec

from allotment.domain.catalog import Catalog
from allotment.domain.catalog_facts import CatalogUpdated
from allotment.domain.cloud_usage import dedup_key
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
from allotment.domain.credit_note_commands import CreateCreditNote, CreditNoteCommand
from allotment.domain.meters import CloudEvent
from allotment.domain.om_commands import OpenMeterCommand
from allotment.domain.payment_records import PaymentRecord
from allotment.domain.replies import Decision, Rejected, Reply
from allotment.domain.state import CustomerState, OpenMeterDetails, Profile
from allotment.runtime.broadcast_change import Alike
from allotment.runtime.catalog_versions import CatalogVersions, ShardMember
from allotment.runtime.environment_wide import (
    DUPLICATE,
    EnvironmentWide,
    commit_keys,
    holds,
    per_shard,
)
from allotment.runtime.key_claims import reservation_key
from allotment.runtime.keyed_routes import KeyedRoutes
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
from allotment.runtime.reservations import (
    not_this_customers,
    reservation_not_found,
    reservation_taken,
)
from allotment.runtime.sharded_search import ShardedSearch, could_be_email

__all__ = ("ShardRouter",)

T = TypeVar("T")
R = TypeVar("R")
Event = tuple[CustomerLookup, RecordUsage, uuid.UUID | None]


class ShardRouter:
    """The `Shard` of one environment whose customers live on `members` (SCL-2)."""

    def __init__(
        self,
        environment: str,
        members: Sequence[ShardMember],
        now: Callable[[], datetime] | None = None,
    ) -> None:
        assert members, "a router needs at least one shard"
        self.environment = environment
        self._now = now  # the time a broadcast catalog change is decided at, on every shard
        self.members = list(members)
        self.versions = CatalogVersions(self.members)
        self.routes = KeyedRoutes(environment, len(self.members))
        self.shared = EnvironmentWide(self.routes, self.versions, self.members)  # SCL-80

    # -- reaching one shard --------------------------------------------------------------------

    async def _on(self, index: int, call: Callable[[Shard], Awaitable[R]]) -> R:
        """`call` on shard `index`, stamped with the catalog version (SCL-14)."""
        return await self.versions.call(index, call)

    async def _gather(self, call: Callable[[Shard], Awaitable[R]]) -> list[R]:
        """`call` on every shard at once, results in shard order (SCL-10)."""
        return await self._gather_each(lambda _, shard: call(shard))

    async def _gather_each(self, call: Callable[[int, Shard], Awaitable[R]]) -> list[R]:
        """As `_gather`, `call` told which shard it runs on."""
        results: list[R | None] = [None] * len(self.members)

        async def one(index: int) -> None:
            results[index] = await self._on(index, lambda shard: call(index, shard))

        async with anyio.create_task_group() as tg:
            for index in range(len(self.members)):
                tg.start_soon(one, index)
        return results  # type: ignore[return-value]  # every slot filled by its task

    async def _find(self, lookup: CustomerLookup) -> int | None:
        """The shard of a customer named by id, reference or Stripe id (SCL-5, SCL-7)."""
        index = self.routes.of_lookup(lookup)
        if index is not None or lookup.stripe_customer_id is None:
            return index
        return await self._search(lambda shard: shard.read(lookup, _exists), self.routes.stripe,
                                  lookup.stripe_customer_id)  # fmt: skip

    async def _search(
        self,
        probe: Callable[[Shard], Awaitable[object]],
        learned: dict[str, int],
        key: str,
    ) -> int | None:
        """SCL-8: a key chosen outside allotment that this router never saw placed (a Stripe
        id, a reservation id of another front door): asked of every shard once, then kept."""
        found = [i for i, hit in enumerate(await self._gather(probe)) if hit not in (None, False)]
        self.routes.searches += 1
        if found:
            learned[key] = found[0]
            return found[0]
        return None

    # -- the Shard protocol: one customer --------------------------------------------------------

    @property
    def catalog(self) -> Catalog:
        return self.versions.catalog

    def customer_count(self) -> int:
        return sum(member.customer_count() for member in self.members)

    async def create_customer(self, external_id: str, profile: Profile) -> Reply:
        index = self.routes.of_reference(external_id)
        return await self._on(index, lambda s: s.create_customer(external_id, profile))

    async def command(self, lookup: CustomerLookup, command: Command) -> Reply:
        index = await self._find(lookup)
        if index is None:
            return await self._on(0, lambda s: s.command(lookup, command))  # its NOT_FOUND
        return await self._on(index, lambda s: s.command(lookup, command))

    async def command_on_owner(self, entity_id: uuid.UUID, command: Command, missing: str) -> Reply:
        index = self.routes.of_id(entity_id)
        return await self._on(index, lambda s: s.command_on_owner(entity_id, command, missing))

    async def evaluate(
        self, external_id: str, feature_key: str, requested: Decimal | None,
        audit: EvaluationContext,
    ) -> Decision:  # fmt: skip
        index = self.routes.of_reference(external_id)
        return await self._on(index, lambda s: s.evaluate(external_id, feature_key, requested,
                                                           audit))  # fmt: skip

    async def ingest(
        self, lookup: CustomerLookup, event: RecordUsage, feature_uuid: uuid.UUID | None
    ) -> Reply:
        """The key claimed on its home first (SCL-81), then the customer's own turn; a feature
        the turn auto-created broadcast before the reply (SCL-87)."""
        index = await self._find(lookup) or 0
        leased = await self.shared.lease(index, event.idempotency_key)
        if leased is False:
            return DUPLICATE  # EVT-35: another shard's customer holds the key
        reply = await self._on(index, lambda s: s.ingest(lookup, event, feature_uuid))
        if isinstance(reply, Rejected):
            if leased:  # SCL-82: the key is free again, as in one process
                await self.shared.give_back(index, event.idempotency_key)
        elif event.feature_key is not None:
            await self.shared.share_features([(lookup, event, feature_uuid)], [reply])
        return reply

    async def ingest_batch(self, events: list[Event]) -> list[Reply]:
        """The keys claimed on their homes, one call per home (SCL-85); then each shard's
        events in one call, the shards at once; replies in the batch's order."""
        claims = [KeyClaim(event.idempotency_key, await self._find(lookup) or 0)
                  for lookup, event, _ in events]  # fmt: skip
        leased = await self.shared.ask_homes(claims)
        replies: list[Reply] = [DUPLICATE] * len(events)
        groups: dict[int, list[int]] = {}
        for position, (claim, lease) in enumerate(zip(claims, leased, strict=True)):
            if lease is not False:
                groups.setdefault(claim.shard, []).append(position)

        async def run(index: int, positions: list[int]) -> list[Reply]:
            part = [events[p] for p in positions]
            return await self._on(index, lambda s: s.ingest_batch(part))

        if groups:
            await per_shard(groups, run, replies)
        kept = [not isinstance(reply, Rejected) for reply in replies]
        await self.shared.settle_leases(claims, leased, kept)
        await self.shared.share_features(events, replies)
        return replies

    async def read(self, lookup: CustomerLookup, projector: Projector[T]) -> T | None:
        index = await self._find(lookup)
        if index is None:
            return None
        return await self._on(index, lambda s: s.read(lookup, projector))

    async def read_on_owner(self, entity_id: uuid.UUID, projector: Projector[T]) -> T | None:
        index = self.routes.of_id(entity_id)
        return await self._on(index, lambda s: s.read_on_owner(entity_id, projector))

    async def reserve(self, lookup: CustomerLookup, command: Reserve | Preflight) -> Reply:
        """The id claimed on its home first (SCL-84), then the customer's own turn."""
        index = await self._find(lookup) or 0
        held = command if isinstance(command, Reserve) else command.reserve
        key = reservation_key(held.reservation_id)
        leased = await self.shared.lease(index, key)
        if leased is False:
            return reservation_taken(held.reservation_id)  # RSV-1: another shard's customer's
        reply = await self._on(index, lambda s: s.reserve(lookup, command))
        if leased and not holds(reply):  # SCL-84: nothing held, the id is free again
            await self.shared.give_back(index, key)
        if isinstance(command, Reserve):
            self.routes.reservations[command.reservation_id] = index  # SCL-7
        return reply

    async def _reservation_shard(self, reservation_id: str, customer: CustomerLookup | None) -> int:
        if customer is not None:
            return await self._find(customer) or 0
        return await self._holder(reservation_id) or 0

    async def _holder(self, reservation_id: str) -> int | None:
        """The shard holding a reservation id, learned or searched (SCL-7, SCL-8)."""
        index = self.routes.reservations.get(reservation_id)
        if index is None:
            index = await self._search(
                lambda s: s.read_reservation(reservation_id, None, _exists),
                self.routes.reservations, reservation_id,
            )  # fmt: skip
        return index

    async def _on_reservation(
        self, reservation_id: str, customer: CustomerLookup | None,
        call: Callable[[Shard], Awaitable[R]],
    ) -> R | Rejected:  # fmt: skip
        """`call` on the shard of the reservation, or of the customer the body names. That
        customer's shard not knowing the id, while another shard holds it, is the answer one
        process gives a body naming another customer than the holder (RSV-28, SCL-84)."""
        index = await self._reservation_shard(reservation_id, customer)
        answer = await self._on(index, call)
        if customer is None or answer != reservation_not_found(reservation_id):
            return answer
        holder = await self._holder(reservation_id)
        return answer if holder in (None, index) else not_this_customers(reservation_id)

    async def settle(
        self,
        reservation_id: str,
        command: CommitReservation | ReleaseReservation | ExtendReservation,
        customer: CustomerLookup | None,
    ) -> Reply:
        if isinstance(command, CommitReservation):
            return await self._commit(reservation_id, command, customer)
        return await self._on_reservation(
            reservation_id, customer, lambda s: s.settle(reservation_id, command, customer)
        )

    async def _commit(
        self, reservation_id: str, command: CommitReservation, customer: CustomerLookup | None
    ) -> Reply:
        """SCL-88: the event keys the commit would record, read from the reservation, claimed
        on their homes; a key another shard holds goes to the turn as a duplicate (RSV-13), and
        the leases of a refused commit are given back."""
        index = await self._reservation_shard(reservation_id, customer)
        keys = await self._on(index, lambda s: s.read_reservation(
            reservation_id, customer, functools.partial(commit_keys, command)))  # fmt: skip
        claims = [KeyClaim(key, index) for key in keys] if isinstance(keys, list) else []
        leased = await self.shared.ask_homes(claims)
        refused = frozenset(
            c.key for c, lease in zip(claims, leased, strict=True) if lease is False
        )
        if refused:
            command = msgspec.structs.replace(command, duplicate_keys=refused)
        reply = await self._on_reservation(
            reservation_id, customer, lambda s: s.settle(reservation_id, command, customer)
        )
        kept = [not isinstance(reply, Rejected)] * len(claims)
        await self.shared.settle_leases(claims, leased, kept)
        return reply

    async def read_reservation(
        self, reservation_id: str, customer: CustomerLookup | None, projector: Projector[T]
    ) -> T | Rejected:
        return await self._on_reservation(
            reservation_id, customer,
            lambda s: s.read_reservation(reservation_id, customer, projector),
        )  # fmt: skip

    async def credit_note(self, command: CreditNoteCommand) -> Reply:
        entity = command.invoice_id if isinstance(command, CreateCreditNote) else command.note_id
        return await self._on(self.routes.of_id(entity), lambda s: s.credit_note(command))

    # -- the environment: broadcast (SCL-13) and scatter-gather (SCL-10) -------------------------

    async def upsert_catalog(self, update: CatalogUpdated) -> Catalog:
        return await self.versions.broadcast(lambda s: s.upsert_catalog(update))

    async def change_catalog(self, change: CatalogChange) -> Catalog:
        """Every shard decides the same fact: one time, the same new ids (a meter, feature or
        rule has one id environment-wide)."""
        alike = Alike(change, None if self._now is None else self._now())
        return await self.versions.broadcast(lambda s: s.change_catalog(alike))

    @property
    def price_table(self) -> PriceTable:
        return self.members[0].price_table

    async def replace_prices(self, table: PriceTable) -> PriceTable:
        tables = await self.versions.broadcast_all(lambda s: s.replace_prices(table))
        return tables[0]

    async def record_unapplied_payment(self, record: PaymentRecord) -> PaymentRecord:
        """Kept by the shard its checkout session places (SCL-9), so a retry finds it."""
        index = self.routes.of_reference("payment\x00" + record.payment.session_id)
        return await self._on(index, lambda s: s.record_unapplied_payment(record))

    async def claim_keys(self, claims: list[KeyClaim]) -> list[bool]:
        """Each key claimed on its home for the shard named with it (SCL-81)."""
        return [answer is not False for answer in await self.shared.ask_homes(claims)]

    async def list_unapplied_payments(self) -> list[PaymentRecord]:
        lists = await self._gather(lambda s: s.list_unapplied_payments())
        return sorted((r for records in lists for r in records), key=_recorded_at)

    async def all_customers(self, projector: Projector[T]) -> list[T]:
        """Every shard's customers, merged back into creation order (SCL-11)."""

        def stamped(state: CustomerState, catalog: Catalog, now: datetime) -> tuple[
            datetime, int, T]:  # fmt: skip
            return state.created_at, state.id.int, projector(state, catalog, now)

        lists = await self._gather(lambda s: s.all_customers(stamped))
        return [view for _, _, view in sorted((r for rows in lists for r in rows),
                                              key=lambda row: row[:2])]  # fmt: skip

    async def find_customers(
        self, search: CustomerSearch, projector: Projector[T]
    ) -> CustomerPage[T]:
        """A reference id from its own shard; an email or the whole list from every shard,
        their pages merged, the next page's cursor one position per shard (SCL-100)."""
        if search.text and not could_be_email(search.text):
            index = self.routes.of_reference(search.text)
            return await self._on(index, lambda s: s.find_customers(search, projector))
        merging = ShardedSearch(search, projector, len(self.members))
        keyed = merging.keyed()
        pages = await self._gather_each(lambda i, s: s.find_customers(merging.part(i), keyed))
        return merging.merge(pages)

    async def recent_denials(self, lookup: CustomerLookup, limit: int) -> list[AuditRecord]:
        """From the customer's shard alone: its checks all ran there (SCL-101)."""
        index = await self._find(lookup)
        if index is None:
            return []
        return await self._on(index, lambda s: s.recent_denials(lookup, limit))

    # -- OpenMeter ---------------------------------------------------------------------------------

    async def ingest_cloud_events(self, events: list[CloudEvent]) -> int:
        """Each event's (source, id) claimed on its home (SCL-86), then each event to its
        subject's shard (SCL-6), every shard's part at once; one another shard holds is a
        duplicate, as its own shard's would be (OM-6)."""
        claims = [KeyClaim(dedup_key(e.source, e.event_id), self.routes.of_subject(e.subject),
                           "keep") for e in events]  # fmt: skip
        kept = await self.shared.ask_homes(claims)
        parts: dict[int, list[CloudEvent]] = {}
        for event, claim, keep in zip(events, claims, kept, strict=True):
            if keep is not False:
                parts.setdefault(claim.shard, []).append(event)
        counts = [0] * len(self.members)  # each shard's new events, at its own index

        async def run(index: int, _: list[int]) -> list[int]:
            return [await self._on(index, lambda s: s.ingest_cloud_events(parts[index]))]

        if parts:
            await per_shard({index: [index] for index in parts}, run, counts)
        return sum(counts)

    async def create_openmeter_customer(
        self, key: str | None, details: OpenMeterDetails, projector: Projector[T]
    ) -> T | Rejected:
        index = self.routes.of_new_customer(key)
        view = await self._on(index, lambda s: s.create_openmeter_customer(key, details,
                                                                            projector))  # fmt: skip
        if not isinstance(view, Rejected):
            for subject in details.subject_keys:
                self.routes.subjects[subject] = index  # SCL-6
        return view

    async def update_openmeter_customer(
        self,
        lookup: CustomerLookup,
        change: Callable[[CustomerState, datetime], OpenMeterDetails],
        projector: Projector[T],
    ) -> T | Rejected:
        index = await self._find(lookup) or 0
        return await self._on(index, lambda s: s.update_openmeter_customer(lookup, change,
                                                                            projector))  # fmt: skip

    async def openmeter_turn(
        self, target: OmTarget, command: OpenMeterCommand | None, view: OmView[T]
    ) -> T | Rejected:
        index = self.routes.of_om_target(target)
        return await self._on(index, lambda s: s.openmeter_turn(target, command, view))


def _exists(state: CustomerState, catalog: Catalog, now: datetime) -> bool:
    return True


def _recorded_at(record: PaymentRecord) -> datetime:
    return record.recorded_at
