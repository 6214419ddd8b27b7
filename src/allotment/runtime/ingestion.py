"""Usage events into a shard (EVT-*): idempotency keys claimed before the turn, customers and
features auto-created with their first accepted event (batches: runtime/batch_ingest.py)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import msgspec

from allotment.domain.catalog import Catalog, Feature, feature_id
from allotment.domain.catalog_facts import FeatureAutoCreated
from allotment.domain.commands import RecordUsage
from allotment.domain.evolve import new_customer
from allotment.domain.facts import CustomerCreated, Fact
from allotment.domain.reference_ids import reference_id_problem
from allotment.domain.replies import Rejected, RejectionKind, Reply, UsageAccepted
from allotment.domain.state import CustomerSource, Profile
from allotment.runtime.actor import CustomerActor
from allotment.runtime.ports import CustomerLookup

if TYPE_CHECKING:
    from allotment.runtime.batch_turns import BatchTurns
    from allotment.runtime.local_shard import LocalShard
    from allotment.runtime.turns import Turns

__all__ = ("CUSTOMER_NOT_FOUND", "DUPLICATE_EVENT", "Ingestion", "auto_feature")

DUPLICATE_EVENT = "Duplicate event. An event with this idempotency key has already been processed."
CUSTOMER_NOT_FOUND = "Customer not found."

Event = tuple[CustomerLookup, RecordUsage, uuid.UUID | None]


class Ingestion:
    """The event paths of one shard."""

    __slots__ = ("_shard", "_turns")

    def __init__(self, shard: LocalShard, turns: Turns | BatchTurns | None = None) -> None:
        self._shard = shard
        # Where turns run and commit: the shard's own, or a batch's, which journals each
        # customer's facts once at the end of the batch (runtime/batch_turns.py).
        self._turns = turns or shard.turns

    async def ingest(
        self, lookup: CustomerLookup, event: RecordUsage, feature_uuid: uuid.UUID | None
    ) -> Reply:
        """ingestEvent (EVT-*), acknowledged once its facts are durable."""
        self._shard.turns.admit(write=True)
        reply, position = self.ingest_now(lookup, event, feature_uuid)
        if position:
            await self._shard.turns.durable(position)
        return reply

    def ingest_now(
        self, lookup: CustomerLookup, event: RecordUsage, feature_uuid: uuid.UUID | None
    ) -> tuple[Reply, int]:
        """Judge, apply and journal one event without waiting for durability. Returns the reply
        and the journal position to await (0 when nothing was appended). The key is claimed
        first, so a duplicate changes nothing (EVT-35..EVT-37)."""
        keys, now = self._shard.event_keys, self._shard.now()
        if not keys.reserve(event.idempotency_key, now):
            return Rejected(kind=RejectionKind.CONFLICT, message=DUPLICATE_EVENT), 0
        try:
            reply, position = self._ingest_claimed(lookup, event, feature_uuid)
        except BaseException:
            keys.release(event.idempotency_key, now)
            raise
        if isinstance(reply, Rejected):
            keys.release(event.idempotency_key, now)
        return reply, position

    def _ingest_claimed(
        self, lookup: CustomerLookup, event: RecordUsage, feature_uuid: uuid.UUID | None
    ) -> tuple[Reply, int]:
        shard = self._shard
        notes: list[str] = []
        catalog = shard.catalog
        if feature_uuid is not None:
            feature = catalog.feature_by_id(feature_uuid)
            if feature is None:
                message = "Unknown featureId."  # EVT-20: the spec's exact text
                return Rejected(kind=RejectionKind.INVALID, message=message), 0
            event = msgspec.structs.replace(event, feature_key=feature.key)
        new_feature = None
        if (
            feature_uuid is None
            and event.feature_key is not None
            and event.feature_key not in catalog.features
        ):
            new_feature = auto_feature(event.feature_key)  # EVT-21
            catalog = catalog.with_feature(new_feature)
            notes.append(f"Feature '{event.feature_key}' auto-created.")
        actor = shard.directory.find(lookup)
        if actor is not None:
            # Catch-up facts are journalled even when the event is then rejected or raises.
            reply, position = self._turns.run(actor, event, shard.context(catalog))
            if isinstance(reply, Rejected):
                return reply, position
        else:
            reply, position = self._auto_created(lookup, event, catalog)
            if isinstance(reply, Rejected):
                return reply, 0  # the new customer (and feature) is discarded with the event
            notes.append("Customer auto-created.")
        if new_feature is not None:  # after the customer's record: await this later position
            fact = FeatureAutoCreated(at=shard.now(), feature=new_feature)
            position = self._turns.commit_catalog(fact)
            shard.catalog = catalog
        if notes and isinstance(reply, UsageAccepted) and not reply.over_limit:
            return msgspec.structs.replace(reply, message=" ".join(notes)), position  # EVT-44
        return reply, position

    def _auto_created(
        self, lookup: CustomerLookup, event: RecordUsage, catalog: Catalog
    ) -> tuple[Reply, int]:
        """The event of a customer not known yet, who is created with it (EVT-11)."""
        if lookup.customer_id is not None:  # EVT-11: a UUID cannot be auto-created
            return Rejected(kind=RejectionKind.NOT_FOUND, message=CUSTOMER_NOT_FOUND), 0
        problem = lookup.external_id and reference_id_problem(lookup.external_id)
        if problem:  # OPS-K11: an auto-created customer's id obeys the creation rule
            message = f"Invalid field 'customerReferenceId': {problem}."
            return Rejected(kind=RejectionKind.INVALID, message=message), 0
        created = self._shard.created(
            lookup.external_id,
            CustomerSource.EVENT_AUTO_CREATED,
            Profile(),
            lookup.stripe_customer_id,
        )
        return self._first_event(created, event, catalog)

    def _first_event(
        self, created: CustomerCreated, event: RecordUsage, catalog: Catalog
    ) -> tuple[Reply, int]:
        """The first event of an auto-created customer (EVT-11): nothing is kept unless the
        event is accepted, then the customer's creation and the event are journalled as one."""
        shard = self._shard
        actor = CustomerActor(new_customer(created))
        applied: list[Fact] = [created]
        self._turns.turns_run += 1  # a turn, though not through `Turns.applying`
        # Should this raise, even StateCorrupted, the unregistered actor is simply dropped.
        reply = actor.turn(event, shard.context(catalog), applied)
        if isinstance(reply, Rejected):
            return reply, 0
        actor = shard.directory.register(actor.state)
        return reply, self._turns.commit(actor, applied)


def auto_feature(key: str) -> Feature:
    name = key.replace("_", " ").replace("-", " ")
    return Feature(id=feature_id(key), key=key, name=name, auto_created=True)
