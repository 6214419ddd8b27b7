"""OpenMeter's writes into a shard (issue 16, docs/openmeter.md): CloudEvents, meters and
features, and OpenMeter's view of customers. Every change is a turn or an environment fact,
journalled before it is acknowledged, as every other change of the shard.

CloudEvents (OM-6..OM-9): the event's (source, id) is claimed in the environment's event key
index before anything is journalled, as a Tanso event's idempotency key is, so a duplicate is
dropped whatever came between (a retry, a crash and recovery: keys are rebuilt from the
journal's `CloudEventRecorded` facts and kept in snapshots). An event whose subject a live
customer claims goes in that customer's record together with the usage it makes
(`cloud_usage`), in one record: both or neither survive a crash. Any other event is an
environment fact of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from allotment.domain.catalog import Catalog
from allotment.domain.catalog_facts import (
    CatalogUpdated,
    evolve_catalog,
    update_catalog,
)
from allotment.domain.cloud_usage import (
    NO_CUSTOMER,
    NO_METER,
    CountingIndex,
    counting_index,
    dedup_key,
    usage_of,
)
from allotment.domain.commands import RecordCloudEvent, SetOpenMeterDetails
from allotment.domain.evolve import evolve, new_customer
from allotment.domain.facts import CustomerOpenMeterSet, Fact
from allotment.domain.meters import CloudEvent, CloudEventRecorded
from allotment.domain.replies import Rejected, RejectionKind
from allotment.domain.state import CustomerSource, CustomerState, OpenMeterDetails, Profile
from allotment.runtime.actor import CustomerActor
from allotment.runtime.batch_ingest import run_batch
from allotment.runtime.batch_turns import BatchTurns
from allotment.runtime.ports import CatalogChange, CustomerLookup, Projector

if TYPE_CHECKING:
    from allotment.runtime.local_shard import LocalShard
    from allotment.runtime.turns import Turns

__all__ = ("OpenMeterDesk", "subject_conflict")

T = TypeVar("T")


class OpenMeterDesk:
    """The OpenMeter writes of one shard."""

    __slots__ = ("_counting", "_shard")

    def __init__(self, shard: LocalShard) -> None:
        self._shard = shard
        # The counting index of the catalog it was computed for; catalogs are replaced whole,
        # so a new catalog object is the only reason to compute it again.
        self._counting: tuple[Catalog, CountingIndex, frozenset[str]] | None = None

    def _index(self, catalog: Catalog) -> tuple[CountingIndex, frozenset[str]]:
        cached = self._counting
        if cached is None or cached[0] is not catalog:
            metered = frozenset(m.event_type for m in catalog.meters.values() if not m.deleted)
            cached = self._counting = (catalog, counting_index(catalog), metered)
        return cached[1], cached[2]

    # -- CloudEvents ---------------------------------------------------------------------------

    async def ingest(self, events: list[CloudEvent]) -> int:
        """Journal every event not seen before, one record per customer per stretch and one
        durable wait (OM-5, issue 21); returns how many were new. Acknowledged once the last
        is durable."""

        def judge(turns: BatchTurns) -> Callable[[CloudEvent], int]:
            return lambda event: self.ingest_now(event, turns)

        return sum(1 for position in await run_batch(self._shard, events, judge) if position)

    def ingest_now(self, event: CloudEvent, turns: Turns | BatchTurns) -> int:
        """Claim, attribute and journal one event through `turns`; the position to await
        (PENDING through a batch's turns), 0 for a duplicate."""
        shard = self._shard
        now = shard.now()
        key = dedup_key(event.source, event.event_id)
        if not shard.event_keys.reserve(key, now):
            return 0  # OM-6: already journalled, the first one counts
        try:
            return self._journal(event, key, now, turns)
        except BaseException:
            shard.event_keys.release(key, now)
            raise

    def _journal(
        self, event: CloudEvent, key: str, now: datetime, turns: Turns | BatchTurns
    ) -> int:
        shard = self._shard
        actor = shard.directory.by_subject(event.subject)
        counting, metered = self._index(shard.catalog)
        if actor is None:
            error = NO_CUSTOMER.format(subject=event.subject)
        elif event.event_type not in metered:
            error = NO_METER.format(event_type=event.event_type)
        else:
            error = None
        recorded = CloudEventRecorded(
            at=now,
            source=event.source,
            event_id=event.event_id,
            event_type=event.event_type,
            subject=event.subject,
            time=event.time or now,  # OM-4
            specversion=event.specversion,
            data=event.data,
            datacontenttype=event.datacontenttype,
            dataschema=event.dataschema,
            customer_id=actor.state.id if actor else None,
            validation_error=error,
        )
        if actor is None:
            return turns.commit_catalog(recorded)  # OM-9
        # The turn runs at the event's ingest time: the usage it makes is stamped with the
        # time the event was, and one clock read less per event.
        ctx = shard.context(now=now)
        pairs = counting.get(event.event_type, ())

        def step(applied: list[Fact]) -> None:
            actor.turn(RecordCloudEvent(event=recorded), ctx, applied)
            for command in usage_of(recorded, pairs, key):  # OM-30
                actor.turn(command, ctx, applied)

        _, position = turns.applying(actor, step)
        return position

    # -- meters and features -------------------------------------------------------------------

    async def change_catalog(self, change: CatalogChange) -> Catalog:
        """Journal and apply the fact `change` decides against the current catalog. Run with
        no await in between, so the check it makes (a slug taken, a meter in use) holds.

        Raises:
            whatever `change` raises to refuse (nothing changed), and CatalogInvalid.
        """
        shard = self._shard
        shard.turns.admit(write=True)
        fact = change(shard.catalog, shard.context())
        if isinstance(fact, CatalogUpdated):
            catalog, fact = update_catalog(shard.catalog, fact, frozenset(shard.plans_in_use))
        else:
            catalog = evolve_catalog(shard.catalog, fact)
        position = shard.turns.commit_catalog(fact)
        shard.catalog = catalog
        await shard.turns.durable(position)
        return catalog

    # -- customers -----------------------------------------------------------------------------

    async def create_customer(
        self, key: str | None, details: OpenMeterDetails, projector: Projector[T]
    ) -> T | Rejected:
        """createCustomer (OM-20, OM-21): a new allotment customer whose reference id is `key`,
        or a customer with that key no other OpenMeter customer holds (one auto-created by
        an event, or deleted through OpenMeter: OM-24)."""
        shard = self._shard
        shard.turns.admit(write=True)
        existing = shard.directory.find(CustomerLookup(external_id=key)) if key else None
        conflict = subject_conflict(shard, details, existing.state.id if existing else None)
        if conflict is not None:
            return conflict
        if existing is not None:
            state = existing.state
            live = state.openmeter is not None and state.openmeter.deleted_at is None
            if live or (state.openmeter is None and state.source is CustomerSource.API):
                message = f"a customer with key {key!r} already exists"
                return Rejected(kind=RejectionKind.CONFLICT, message=message)
            return await self._set(existing, details, projector)
        # OM-25: the Tanso profile shows what OpenMeter's customer has of it: the email
        created = shard.created(key, CustomerSource.API, Profile(email=details.primary_email))
        actor = shard.directory.register(new_customer(created))
        details_set = CustomerOpenMeterSet(at=created.at, details=details)
        evolve(actor.state, details_set)
        position = shard.turns.commit(actor, [created, details_set])
        await shard.turns.durable(position)
        return projector(actor.state, shard.catalog, created.at)

    async def update_customer(
        self,
        lookup: CustomerLookup,
        change: Callable[[CustomerState, datetime], OpenMeterDetails],
        projector: Projector[T],
    ) -> T | Rejected:
        """updateCustomer / deleteCustomer (OM-22..OM-24): `change` gives the new details from
        the customer's state."""
        shard = self._shard
        shard.turns.admit(write=True)
        actor = shard.directory.find(lookup)
        if actor is None:
            return Rejected(kind=RejectionKind.NOT_FOUND, message="customer not found")
        details = change(actor.state, shard.now())
        conflict = subject_conflict(shard, details, actor.state.id)
        if conflict is not None:
            return conflict
        return await self._set(actor, details, projector)

    async def _set(
        self, actor: CustomerActor, details: OpenMeterDetails, projector: Projector[T]
    ) -> T | Rejected:
        shard = self._shard
        ctx = shard.context()
        reply = await shard.turns.turn(actor, SetOpenMeterDetails(details=details), ctx)
        if isinstance(reply, Rejected):
            return reply
        return projector(actor.state, shard.catalog, ctx.now)

    def all_customers(self, projector: Projector[T]) -> list[T]:
        """`projector` over every customer, in creation order (no catch-up: a listing)."""
        shard = self._shard
        shard.turns.admit(write=False)
        now = shard.now()
        return [projector(state, shard.catalog, now) for state in shard.directory.states()]


def subject_conflict(
    shard: LocalShard, details: OpenMeterDetails, customer_id: uuid.UUID | None
) -> Rejected | None:
    """OM-21: a subject key belongs to at most one live customer of the environment."""
    if details.deleted_at is not None:
        return None
    for subject in details.subject_keys:
        owner = shard.directory.by_subject(subject)
        if owner is not None and owner.state.id != customer_id:
            message = f"subject key {subject!r} is already attributed to another customer"
            return Rejected(kind=RejectionKind.CONFLICT, message=message)
    return None
