"""The bounded buffers between the hot path and analytics: an explicit bound, drop-oldest."""

from __future__ import annotations

import pytest

from allotment.runtime.buffers import BoundedBuffer
from allotment.runtime.idempotency import AuditKeyWindow, EventKeyIndex


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
    assert keys.reserve("k") is True
    assert keys.reserve("k") is False
    keys.release("k")
    assert keys.reserve("k") is True


def test_ent32_audit_key_window_forgets_the_least_recently_seen_key() -> None:
    window = AuditKeyWindow(2)
    assert window.first_sighting("a") and window.first_sighting("b")
    assert not window.first_sighting("a")  # "a" is now the most recent
    assert window.first_sighting("c")  # evicts "b"
    assert window.first_sighting("b")
    assert not window.first_sighting("c")
