"""The audit ring (runtime/audit_ring.py): the bound, drop-oldest overflow, FIFO drains across
the wrap-around, requeued records first; and, against the path it replaced (an `AuditRecord`
built per check into a `BoundedBuffer`), the same records and the same history rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allotment.domain.decisions import Decision, DenialReason, Simulation
from allotment.persistence.analytics_rows import audit_rows
from allotment.persistence.store_ports import AuditRecord
from allotment.runtime.audit_ring import AuditRing
from allotment.runtime.buffers import BoundedBuffer
from allotment.runtime.records import EvaluationContext

NOW = datetime(2025, 1, 15, 12, tzinfo=UTC)
CUSTOMER = uuid.UUID(int=7)
ALLOWED = Decision(allowed=True)
GET = EvaluationContext(method="GET")

Parts = tuple[
    datetime, uuid.UUID, str, str, Decimal | None, Decision, EvaluationContext
]  # what `AuditRing.append` takes


def _parts(i: int) -> Parts:
    return (NOW + timedelta(seconds=i), CUSTOMER, f"c{i}", "api_calls", None, ALLOWED, GET)


def _old_record(parts: Parts) -> AuditRecord:
    """The record as `LocalShard.evaluate` built it for every check before the ring: a copy of
    that code on purpose (not `records.audit_record`), so the oracle cannot move with it."""
    at, customer_id, external_id, feature_key, requested, decision, audit = parts
    return AuditRecord(
        at=at,
        customer_id=customer_id,
        external_id=external_id,
        feature_key=feature_key,
        allowed=decision.allowed,
        method=audit.method,
        reason=decision.reason,
        requested_units=requested,
        would_exceed_limit=decision.simulation.would_exceed_limit if decision.simulation else None,
        event_name=audit.event_name,
        meta=audit.meta,
        flow_id=audit.flow_id,
        idempotency_key=audit.idempotency_key,
    )


def test_a_full_ring_drops_its_oldest_record_and_counts_it() -> None:
    ring = AuditRing(3)
    for i in range(5):
        ring.append(*_parts(i))
    stats = ring.statistics()
    assert (stats.size, stats.size_max, stats.appended, stats.dropped) == (3, 3, 5, 2)
    assert [r.external_id for r in ring.drain(2)] == ["c2", "c3"]
    assert [r.external_id for r in ring.drain()] == ["c4"]
    assert len(ring) == 0
    assert ring.drain() == []


def test_drains_keep_the_order_across_the_wrap_around() -> None:
    ring = AuditRing(4)
    seen: list[str] = []
    for i in range(11):  # the write position passes the end of the slots twice
        ring.append(*_parts(i))
        if i % 3 == 2:
            seen += [r.external_id or "" for r in ring.drain(3)]
    seen += [r.external_id or "" for r in ring.drain()]
    assert seen == [f"c{i}" for i in range(11)]
    assert ring.statistics().dropped == 0


def test_a_drained_slot_keeps_nothing_alive() -> None:
    ring = AuditRing(2)
    ring.append(*_parts(0))
    ring.drain()
    assert all(value is None for part in ring._parts() for value in part)


def test_requeued_records_come_back_first_and_overflow_is_counted() -> None:
    ring = AuditRing(4)
    for i in range(3):
        ring.append(*_parts(i))
    taken = ring.drain()
    ring.append(*_parts(10))
    ring.requeue(taken)  # a failed write puts its rows back ahead of newer ones
    ring.requeue([_old_record(_parts(98))])  # no room: dropped and counted
    assert ring.statistics().dropped == 1
    ring.append(*_parts(11))  # full: the oldest, a requeued record, makes way
    assert [r.external_id for r in ring.drain()] == ["c1", "c2", "c10", "c11"]
    assert ring.statistics().dropped == 2


def test_a_ring_needs_a_positive_bound() -> None:
    with pytest.raises(ValueError, match="size_max"):
        AuditRing(0)


_decimals = st.none() | st.decimals(min_value=0, max_value=10**6, places=3)
_decisions = st.builds(
    Decision,
    allowed=st.booleans(),
    reason=st.none() | st.sampled_from(DenialReason),
    simulation=st.none()
    | st.builds(
        Simulation,
        requested_usage=st.decimals(min_value=0, max_value=100, places=2),
        projected_usage=st.decimals(min_value=0, max_value=100, places=2),
        would_exceed_limit=st.booleans(),
    ),
)
_texts = st.none() | st.text(max_size=5)
_contexts = st.builds(
    EvaluationContext,
    method=st.sampled_from(["GET", "POST"]),
    event_name=_texts,
    meta=st.none() | st.dictionaries(st.text(max_size=3), st.integers() | st.text(max_size=3)),
    flow_id=_texts,
    idempotency_key=_texts,
)
_checks = st.tuples(
    st.datetimes(timezones=st.just(UTC)),
    st.uuids(),
    st.text(min_size=1, max_size=5),
    st.sampled_from(["api_calls", "seats"]),
    _decimals,
    _decisions,
    _contexts,
)
# An operation: a check's parts to append, a drain of so many records, or a drain whose records
# the consumer fails to write and puts back (`requeue`).
_operations = st.lists(
    _checks | st.tuples(st.just("drain"), st.integers(0, 5)) | st.just("fail"), max_size=40
)


@settings(max_examples=200, deadline=None)
@given(size_max=st.integers(1, 6), operations=_operations)
def test_the_ring_drains_the_records_and_rows_of_the_old_buffer(
    size_max: int, operations: list[object]
) -> None:
    ring = AuditRing(size_max)
    old: BoundedBuffer[AuditRecord] = BoundedBuffer(size_max)
    drained: list[AuditRecord] = []
    old_drained: list[AuditRecord] = []
    for operation in operations:
        if operation == "fail":
            ring.requeue(ring.drain(2))
            old.requeue(old.drain(2))
        elif isinstance(operation, tuple) and operation[0] == "drain":
            drained += ring.drain(operation[1])
            old_drained += old.drain(operation[1])
            assert drained == old_drained
        else:
            parts: Parts = operation  # type: ignore[assignment]
            ring.append(*parts)
            old.append(_old_record(parts))
        assert ring.statistics() == old.statistics()
    drained += ring.drain()
    old_drained += old.drain()
    assert drained == old_drained
    assert audit_rows(drained) == audit_rows(old_drained)  # the history's rows, every column
