"""Loading a shard from disk: a snapshot's contents, then the journal's records through
`evolve`, then the indexes and timers rebuilt from the states. Replay is idempotent per
customer: a record a customer's snapshot already holds is skipped.

The catalog is rebuilt from what was recorded (the snapshot's catalog, then the journal's
catalog facts), starting from nothing: the catalog file only adds, and journals, what was never
recorded (`seed_catalog`). Starting from the file would stamp its plans with this start's time
and lose the `createdAt` recorded at the first start (PLN-3, MNY-C5)."""

from __future__ import annotations

import itertools
import logging
import uuid
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from typing import TYPE_CHECKING

from allotment.domain.catalog import Catalog
from allotment.domain.catalog_facts import evolve_catalog, unrecorded_part, update_catalog
from allotment.domain.catalog_rules import CatalogInvalid
from allotment.domain.cloud_usage import dedup_key
from allotment.domain.cost import PricesReplaced
from allotment.domain.evolve import evolve, new_customer
from allotment.domain.facts import (
    CatalogVersionHeld,
    CloudEventRecorded,
    CustomerCreated,
    KeysClaimed,
    PaymentRecorded,
    UsageRecorded,
)
from allotment.domain.state import CustomerState
from allotment.persistence.compact_state import Keys, encode_stored, keys_of
from allotment.persistence.ports import JournalRecord
from allotment.runtime.idempotency import key_digest
from allotment.runtime.key_claims import remember_claims

if TYPE_CHECKING:
    from allotment.runtime.local_shard import LocalShard

__all__ = ("reindex", "replay", "restore", "seed_catalog")

logger = logging.getLogger("allotment.recovery")
_NOTHING = Catalog(features={}, credit_models={}, plans={})


def restore(
    shard: LocalShard,
    catalog: Catalog,
    states: list[CustomerState],
    keys: dict[date, list[bytes]],
    stored: Iterable[tuple[uuid.UUID, bytes]] = (),
    stored_keys: Iterable[Keys] = (),
) -> None:
    """Load a snapshot's contents into an empty shard: the customers of an older snapshot
    decoded (`states`), put in their stored form; those of a snapshot with an index left
    stored (`stored`), decoded on their first touch, their keys (`stored_keys`, in the same
    order) read only by `reindex`."""
    shard.catalog = shard.recorded_catalog = catalog
    directory = shard.directory
    for state in states:
        directory.register_stored(state.id, encode_stored(state))
    for customer_id, form in stored:
        directory.register_stored(customer_id, form)
    directory.expect_keys(itertools.chain([keys_of(state) for state in states], stored_keys))
    for day, digests in keys.items():
        for digest in digests:
            shard.event_keys.remember(digest, day)


def replay(shard: LocalShard, record: JournalRecord) -> None:
    """Apply one journal record, skipping what a customer's snapshot already holds."""
    if record.catalog:
        _replay_environment(shard, record)
    if record.customer_id is None:
        return
    for fact in record.facts:  # keys first: a snapshot's key list may predate its customers
        if isinstance(fact, UsageRecorded):
            shard.event_keys.remember(key_digest(fact.idempotency_key), fact.at.date())
        elif isinstance(fact, CloudEventRecorded):
            _remember(shard, fact)
    actor = shard.directory.get(record.customer_id)
    facts = record.facts
    if actor is None:
        first = facts[0]
        assert isinstance(first, CustomerCreated), f"record {record.position} has no customer"
        actor = shard.directory.register(new_customer(first))
        facts = facts[1:]
    elif actor.state.journal_position >= record.position:
        return
    for fact in facts:
        evolve(actor.state, fact)
    actor.state.journal_position = record.position


def _replay_environment(shard: LocalShard, record: JournalRecord) -> None:
    recorded = shard.recorded_catalog or _NOTHING
    for environment_fact in record.catalog:
        if isinstance(environment_fact, PaymentRecorded):
            shard.environment_payments.add(environment_fact.record)
        elif isinstance(environment_fact, CatalogVersionHeld):  # SCL-77
            shard.catalog_version = max(shard.catalog_version, environment_fact.version)
        elif isinstance(environment_fact, PricesReplaced):
            shard.prices.apply(environment_fact)
        elif isinstance(environment_fact, CloudEventRecorded):
            _remember(shard, environment_fact)  # OM-6, OM-9
        elif isinstance(environment_fact, KeysClaimed):
            remember_claims(shard.event_keys, environment_fact)  # SCL-81
        else:
            recorded = evolve_catalog(recorded, environment_fact)
    shard.catalog = shard.recorded_catalog = recorded


def _remember(shard: LocalShard, fact: CloudEventRecorded) -> None:
    """OM-6: a CloudEvent's (source, id) stays claimed across restarts."""
    key = dedup_key(fact.source, fact.event_id)
    shard.event_keys.remember(key_digest(key), fact.at.date())


def reindex(shard: LocalShard) -> None:
    """Rebuild the indexes and timers from the customers' states after recovery, and add
    the catalog file's unrecorded entities (`seed_catalog`)."""
    dues: dict[uuid.UUID, datetime] = {}  # one table, not an object per customer

    def every() -> Iterator[Keys]:  # read once: a chunk of snapshot keys at a time
        for customer_id, keys in shard.directory.reindex():
            if keys.next_due_at is not None:
                dues[customer_id] = keys.next_due_at
            yield keys

    shard.turns.sequences.recover(every())  # CN-21
    seed_catalog(shard)
    newer = shard.prices.newer_file(shard.now())
    if newer is not None:  # OPS-D6; not awaited, as `seed_catalog`: a lost record seeds again
        shard.turns.commit_catalog(newer)
        shard.prices.apply(newer)
    shard.timers.rebuild(dues.items())


def seed_catalog(shard: LocalShard) -> None:
    """End recovery's catalog: what was recorded, plus the catalog file's entities it lacks,
    journalled now so that the next start finds them recorded with today's `createdAt`.

    The record is not awaited: until it is durable nothing refers to its `createdAt` durably
    (a later record is durable only after it), and a start that lost it seeds again. An
    unrecorded part the recorded catalog refuses (say, a file plan whose key an admin gave to
    another plan) is left out and logged: the recorded catalog wins.
    """
    recorded = shard.recorded_catalog or _NOTHING
    shard.recorded_catalog = None
    shard.catalog = recorded
    update = unrecorded_part(recorded, shard.seed_catalog, shard.now())
    if update is None:
        return
    try:
        catalog, fact = update_catalog(recorded, update, frozenset(shard.plans_in_use))
    except CatalogInvalid as invalid:
        logger.warning("catalog file entities not added (the recorded catalog wins): %s", invalid)
        return
    shard.turns.commit_catalog(fact)
    shard.catalog = catalog
