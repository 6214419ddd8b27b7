"""A version-3 snapshot's customers as recovery loads them (`snapshots.StoredCustomers`): ids
and stored forms at load, keys decoded only when asked, one chunk at a time (issue 21)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from allotment.domain.evolve import new_customer
from allotment.domain.facts import CustomerCreated
from allotment.domain.state import CustomerSource, CustomerState
from allotment.persistence.compact_state import decode_state, keys_of
from allotment.persistence.errors import SnapshotCorrupt
from allotment.persistence.snapshots import StoredCustomers, encode_customers

AT = datetime(2025, 1, 15, tzinfo=UTC)


def _created(n: int) -> CustomerState:
    fact = CustomerCreated(
        at=AT, customer_id=uuid.UUID(int=n), external_id=f"c{n}", source=CustomerSource.API
    )
    return new_customer(fact)


def _chunk(states: list[CustomerState]) -> tuple[bytearray, bytearray]:
    """A chunk's two frames' payloads, as the reader hands them over."""
    _, index, _, forms = encode_customers(states)
    return bytearray(index), bytearray(forms)


def test_ids_and_forms_at_load_keys_in_the_same_order_when_asked() -> None:
    states = [_created(n) for n in range(1, 8)]
    stored = StoredCustomers()
    for start in range(0, len(states), 3):  # chunks of 3, 3 and 1
        stored.add(*_chunk(states[start : start + 3]))
    assert len(stored) == len(states)
    assert stored.ids == [s.id for s in states]
    assert [decode_state(f).external_id for f in stored.forms] == [s.external_id for s in states]
    assert list(stored.keys()) == [keys_of(s) for s in states]
    assert list(stored.keys()) == []  # read once: the encoded keys are let go


def test_forms_that_do_not_match_their_index_are_refused() -> None:
    index, forms = _chunk([_created(1), _created(2)])
    with pytest.raises(SnapshotCorrupt):
        StoredCustomers().add(index, forms + b"\x00")
