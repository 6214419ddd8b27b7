"""The bounded buffers between the hot path and analytics: an explicit bound, drop-oldest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from allotment.runtime.buffers import BoundedBuffer
from allotment.runtime.idempotency import AuditKeyWindow, EventKeyIndex

NOW = datetime(2025, 1, 15, 12, tzinfo=UTC)


def test_a_full_buffer_drops_its_oldest_record_and_counts_it() -> None:
    buffer: BoundedBuffer[int] = BoundedBuffer(3)
    for i in range(5):
        buffer.append(i)
    assert list(buffer) == [2, 3, 4]
    stats = buffer.statistics()
    assert (stats.size, stats.size_max, stats.appended, stats.dropped) == (3, 3, 5, 2)
    assert buffer.drain(2) == [2, 3]
    assert buffer.drain() == [4]
    assert len(buffer) == 0


def test_a_buffer_needs_a_positive_bound() -> None:
    with pytest.raises(ValueError, match="size_max"):
        BoundedBuffer[int](0)


def test_evt37_a_key_is_claimed_once_and_a_released_key_can_be_claimed_again() -> None:
    keys = EventKeyIndex()
    assert keys.reserve("k", NOW) is True
    assert keys.reserve("k", NOW + timedelta(days=3)) is False
    keys.release("k", NOW)
    assert keys.reserve("k", NOW) is True
    assert len(keys) == 1


def test_duplicate_window_forgets_whole_days_older_than_the_window() -> None:
    keys = EventKeyIndex(window_days=35)
    keys.reserve("old", NOW)
    keys.reserve("new", NOW + timedelta(days=30))
    assert keys.expire((NOW + timedelta(days=35)).date()) == 0
    assert keys.expire((NOW + timedelta(days=36)).date()) == 1
    assert "old" not in keys and "new" in keys
    assert keys.reserve("old", NOW + timedelta(days=36)) is True  # older than the window: new again


def test_keys_kept_forever_without_a_window() -> None:
    keys = EventKeyIndex(window_days=None)
    keys.reserve("k", NOW)
    assert keys.expire((NOW + timedelta(days=3650)).date()) == 0
    assert keys.reserve("k", NOW + timedelta(days=3650)) is False


def test_ent32_audit_key_window_forgets_the_least_recently_seen_key() -> None:
    window = AuditKeyWindow(2)
    assert window.first_sighting("a") and window.first_sighting("b")
    assert not window.first_sighting("a")  # "a" is now the most recent
    assert window.first_sighting("c")  # evicts "b"
    assert window.first_sighting("b")
    assert not window.first_sighting("c")


def test_requeued_records_come_back_first_and_overflow_is_counted() -> None:
    buffer: BoundedBuffer[int] = BoundedBuffer(4)
    for i in range(3):
        buffer.append(i)
    taken = buffer.drain()
    buffer.append(10)
    buffer.requeue(taken)  # a failed write puts its rows back ahead of newer ones
    assert list(buffer) == [0, 1, 2, 10]
    buffer.requeue([98, 99])  # no room: dropped and counted
    assert list(buffer) == [0, 1, 2, 10]
    assert buffer.statistics().dropped == 2
