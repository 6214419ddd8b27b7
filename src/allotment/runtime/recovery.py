"""Loading a shard from disk: a snapshot's contents, then the journal's records through
`evolve`, then the indexes and timers rebuilt from the states. Replay is idempotent per
customer: a record a customer's snapshot already holds is skipped."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from allotment.domain.catalog import Catalog
from allotment.domain.catalog_facts import evolve_catalog
from allotment.domain.evolve import evolve, new_customer
from allotment.domain.facts import CustomerCreated, UsageRecorded
from allotment.domain.state import CustomerState
from allotment.persistence.ports import JournalRecord
from allotment.runtime.idempotency import key_digest

if TYPE_CHECKING:
    from allotment.runtime.local_shard import LocalShard

__all__ = ("reindex", "replay", "restore")


def restore(
    shard: LocalShard, catalog: Catalog, states: list[CustomerState], keys: dict[date, list[bytes]]
) -> None:
    """Load a snapshot's contents into an empty shard."""
    shard.catalog = catalog
    for state in states:
        shard.directory.register(state)
    for day, digests in keys.items():
        for digest in digests:
            shard.event_keys.remember(digest, day)


def replay(shard: LocalShard, record: JournalRecord) -> None:
    """Apply one journal record, skipping what a customer's snapshot already holds."""
    for catalog_fact in record.catalog:
        shard.catalog = evolve_catalog(shard.catalog, catalog_fact)
    if record.customer_id is None:
        return
    for fact in record.facts:  # keys first: a snapshot's key list may predate its customers
        if isinstance(fact, UsageRecorded):
            shard.event_keys.remember(key_digest(fact.idempotency_key), fact.at.date())
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


def reindex(shard: LocalShard) -> None:
    """Rebuild the indexes and timers from the customers' states after recovery."""
    shard.directory.reindex()
    shard.timers.rebuild(
        (actor.state.id, actor.state.next_due_at)
        for actor in shard.directory.actors()
        if actor.state.next_due_at is not None
    )
