"""`CustomerDirectory.reindex` after a lazy recovery: a snapshot's recorded keys for the
customers replay left alone, the current ones for those it changed (issue 21)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from allotment.domain.evolve import new_customer
from allotment.domain.facts import CustomerCreated
from allotment.domain.state import CustomerSource, CustomerState
from allotment.persistence.compact_state import encode_stored, keys_of
from allotment.runtime.directory import CustomerDirectory
from allotment.runtime.ports import CustomerLookup

AT = datetime(2025, 1, 15, tzinfo=UTC)


def _created(n: int) -> CustomerState:
    fact = CustomerCreated(
        at=AT, customer_id=uuid.UUID(int=n), external_id=f"c{n}", source=CustomerSource.API
    )
    return new_customer(fact)


def test_a_customer_replay_changed_and_put_back_is_indexed_from_its_new_form() -> None:
    states = [_created(n) for n in (1, 2, 3)]
    directory = CustomerDirectory(warm_max=1)
    for state in states:
        directory.register_stored(state.id, encode_stored(state))
    directory.expect_keys(keys_of(s) for s in states)
    changed = directory.get(states[0].id)  # replay touches c1 and changes it ...
    assert changed is not None
    changed.state.external_id = "renamed"
    changed.state.journal_position += 1
    assert directory.get(states[1].id) is not None  # ... then c2 puts it back, re-encoded
    indexed = list(directory.reindex())
    assert [customer_id for customer_id, _ in indexed] == [s.id for s in states]
    assert [keys.external_id for _, keys in indexed] == ["renamed", "c2", "c3"]
    found = directory.find(CustomerLookup(external_id="renamed"))
    assert found is not None and found.state.id == states[0].id
    assert directory.find(CustomerLookup(external_id="c3")) is not None
