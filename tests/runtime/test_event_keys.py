"""The packed event-key index behaves as a map from digest to day (EVT-35..EVT-38).

A Hypothesis state machine drives the index and a plain dict side by side through claims,
releases, restores, window expiry, growth and a snapshot round trip (export, import)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from allotment.runtime.idempotency import EventKeyIndex, key_digest

START = datetime(2025, 1, 15, 12, tzinfo=UTC)
WINDOW = 35
keys = st.integers(min_value=0, max_value=3000).map(lambda n: f"evt-{n}")
days = st.integers(min_value=0, max_value=80)


class KeyIndexMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.index = EventKeyIndex(window_days=WINDOW)
        self.model: dict[str, date] = {}
        self.today = 0

    def _at(self, offset: int) -> datetime:
        return START + timedelta(days=offset)

    @rule(key=keys)
    def reserve(self, key: str) -> None:
        claimed = self.index.reserve(key, self._at(self.today))
        assert claimed == (key not in self.model)
        self.model.setdefault(key, self._at(self.today).date())

    @rule(many=st.lists(keys, min_size=50, max_size=400))
    def reserve_many(self, many: list[str]) -> None:  # makes tables grow
        for key in many:
            self.reserve(key)

    @rule(key=keys)
    def release_a_claim_just_made(self, key: str) -> None:
        """A rejected turn gives back the key it just claimed (EVT-37)."""
        if self.index.reserve(key, self._at(self.today)):
            self.index.release(key, self._at(self.today))
        assert (key in self.index) == (key in self.model)

    @rule(key=keys, day=days)
    def remember(self, key: str, day: int) -> None:
        if key not in self.model:
            self.index.remember(key_digest(key), self._at(day).date())
            self.model[key] = self._at(day).date()

    @rule(step=st.integers(min_value=1, max_value=20))
    def a_day_passes_and_old_days_expire(self, step: int) -> None:
        self.today += step
        today = self._at(self.today).date()
        forgotten = self.index.expire(today)
        old = [k for k, d in self.model.items() if (today - d).days > WINDOW]
        assert forgotten == len(old)
        for key in old:
            del self.model[key]

    @rule(during=st.lists(keys, max_size=20), rejected=st.lists(keys, max_size=5))
    def restart_from_a_snapshot_taken_while_keys_arrive(
        self, during: list[str], rejected: list[str]
    ) -> None:
        """The snapshot holds the keys as of its start; what is claimed or released while it
        copies the tables lands in the live index, and the journal's replay (remember) brings
        a restarted index level."""
        before = dict(self.model)
        with self.index.exported() as exported:
            tables = []
            for n, table in enumerate(exported.tables):
                tables.append(table)
                if n == 1000:
                    for key in during:
                        self.reserve(key)
                    for key in rejected:
                        self.release_a_claim_just_made(key)
                    self.same_keys()
            restored = EventKeyIndex(window_days=WINDOW)
            restored.import_tables(tables, exported.slots_used, exported.keys_per_day)
        assert len(restored) == len(before)
        assert not any(key in restored for key in self.model if key not in before)
        for key, day in self.model.items():
            if key not in before:
                restored.remember(key_digest(key), day)
        self.index = restored

    @invariant()
    def same_keys(self) -> None:
        assert len(self.index) == len(self.model)
        sample = list(self.model)[:50]
        assert all(key in self.index for key in sample)

    @invariant()
    def memory_within_64_bytes_a_key(self) -> None:
        if len(self.model) > 20_000:  # the fixed 4,096 empty tables dominate small indexes
            assert self.index.memory_bytes() <= 64 * len(self.model)


TestKeyIndex = KeyIndexMachine.TestCase
TestKeyIndex.settings = settings(max_examples=40, stateful_step_count=40, deadline=None)


def test_keys_kept_forever_never_expire_evt_38() -> None:
    index = EventKeyIndex()
    for n in range(5000):
        assert index.reserve(f"k{n}", START)
    assert index.expire((START + timedelta(days=3650)).date()) == 0
    assert not index.reserve("k17", START + timedelta(days=3650))
    assert len(index) == 5000


def test_many_keys_are_all_remembered_and_memory_is_accounted() -> None:
    """Every key is found after the tables grow. What a key costs in memory is measured by
    bench/bench_scale.py (issue 10 moved the 1M-key figure out of the test suite)."""
    index = EventKeyIndex()
    for n in range(50_000):
        index.remember(key_digest(f"evt-{n}"), START.date())
    assert len(index) == 50_000
    assert all(f"evt-{n}" in index for n in range(0, 50_000, 97)) and "evt-x" not in index
    assert index.memory_bytes() > 0


def test_tables_of_the_wrong_shape_are_refused() -> None:
    index = EventKeyIndex()
    with index.exported() as exported:
        tables = list(exported.tables)
        tables[3] = tables[3][:-1]
        with pytest.raises(ValueError, match="key table 3"):
            EventKeyIndex().import_tables(tables, exported.slots_used, exported.keys_per_day)


def test_a_key_released_and_claimed_again_during_an_export_is_kept() -> None:
    index = EventKeyIndex()
    assert index.reserve("k", START)
    with index.exported():
        index.release("k", START)
        assert "k" not in index
        assert index.reserve("k", START)
        assert "k" in index and len(index) == 1
    assert "k" in index and len(index) == 1


def test_keys_claimed_during_an_export_are_merged_a_batch_at_a_time() -> None:
    """Issue 21: a checkpoint merges what was claimed and released while it copied the tables
    in batches, letting requests run between them; claims and releases made between batches
    count at once and are merged too."""
    index = EventKeyIndex()
    for n in range(300):
        assert index.reserve(f"old{n}", START)
    with index.exported() as exported:
        copied = EventKeyIndex()  # what the snapshot holds: the keys as of the export's start
        copied.import_tables(list(exported.tables), exported.slots_used, exported.keys_per_day)
        for n in range(1000):
            assert index.reserve(f"new{n}", START)
        for n in range(0, 300, 3):
            index.release(f"old{n}", START)  # in the tables: released when merged
        steps = 0
        for _ in index.merge_pending():
            steps += 1
            assert index.reserve(f"between{steps}", START)
            assert not index.reserve("new5", START) and not index.reserve("old1", START)
            assert "old3" not in index
        assert steps >= 1000 // 256  # batches, not all at once
    assert len(index) == 1000 + steps + 200
    assert all(f"new{n}" in index for n in range(1000))
    assert all(f"between{s}" in index for s in range(1, steps + 1))
    assert all((f"old{n}" in index) == (n % 3 != 0) for n in range(300))
    assert len(copied) == 300 and "new0" not in copied and "old3" in copied
    with index.exported() as again:  # the overlay ended: another export may start
        assert sum(again.keys_per_day.values()) == len(index)
