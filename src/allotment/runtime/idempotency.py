"""Idempotency indexes.

Event keys (EVT-35..EVT-38) are scoped to the environment, not the customer, so they live
beside the customers rather than inside one. A key is reserved before the turn and released if
the turn rejects the event, so check-and-insert is atomic (EVT-37): nothing awaits in between.

By default keys are kept forever (EVT-38), so there are many: 100 per customer is 100M keys at
1M customers. A Python set of 16-byte digests costs about 91 bytes per key, and one set per day
would make every lookup probe every day kept. So keys live packed: 16-byte BLAKE2b digests, each
with the UTC day it was accepted on, in open-addressing tables inside bytearrays (18 bytes a
slot, at most 3/4 full: 24-48 bytes a key). The digest's low 12 bits pick one of 4,096 tables,
so growing one rehashes 1/4,096 of the keys, and a snapshot stores the tables as they are, so
recovery copies them instead of re-inserting every key.

An operator may bound memory with a window (`idempotency_window_days`, at least the 35 days
clients may retry for): days older than the window are then forgotten, and a retry older than
the window is accepted as new.
"""

from __future__ import annotations

import functools
import hashlib
from collections import Counter, OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime

from allotment.persistence.store_ports import KeyTables

__all__ = ("TABLES", "AuditKeyWindow", "EventKeyIndex", "key_digest")

TABLES = 4096
_TABLE_MASK = TABLES - 1  # a digest's low 12 bits pick its table; the bits above, its slot
_SLOT = 18  # digest (16 bytes) + day (uint16, little-endian)
_FREE = 0  # day 0 marks a slot never used: a probe stops there
_GONE = 0xFFFF  # a released key: a probe continues past it
_EPOCH = date(2000, 1, 1).toordinal() - 1  # day 1 is 2000-01-01
_SLOTS_MIN = 8
_MERGE_BATCH = 256  # keys merged after an export between two yields (about 1 ms)


def key_digest(key: str) -> bytes:
    return hashlib.blake2b(key.encode(), digest_size=16).digest()


@functools.lru_cache(maxsize=64)
def _day_number(day: date) -> int:
    return min(max(day.toordinal() - _EPOCH, 1), _GONE - 1)


class EventKeyIndex:
    """Accepted event keys of one environment within the duplicate window."""

    def __init__(self, window_days: int | None = None) -> None:
        self._window_days = window_days  # None keeps keys forever (EVT-38)
        self._tables = [bytearray(_SLOTS_MIN * _SLOT) for _ in range(TABLES)]
        self._used = [0] * TABLES  # slots not free: live keys and released ones
        self._per_day: Counter[int] = Counter()  # live keys by day number, in the tables
        # While a snapshot copies the tables they must not change: keys claimed meanwhile wait
        # here, and releases of keys already in the tables wait in `_late_releases`.
        self._overlay: dict[bytes, int] | None = None
        self._late_releases: list[bytes] = []

    def reserve(self, key: str, at: datetime) -> bool:
        """Claim `key` at `at`. False when it was already claimed: the event is a duplicate."""
        return self._claim(key_digest(key), _day_number(at.date()))

    def release(self, key: str, at: datetime) -> None:
        """Give back a key whose event was rejected, so a corrected retry is accepted."""
        digest = key_digest(key)
        if self._overlay is not None:
            if self._overlay.pop(digest, None) is None and self._holds(digest):
                self._late_releases.append(digest)
            return
        self._release(digest)

    def remember(self, digest: bytes, day: date) -> None:
        """Restore a key from a snapshot or the journal (no duplicate check)."""
        self._claim(digest, _day_number(day))

    def expire(self, today: date) -> int:
        """Forget days older than the window; returns the number of keys forgotten."""
        return sum(self.expire_gradually(today))

    def expire_gradually(self, today: date) -> Iterator[int]:
        """`expire`, one table at a time (a caller on the event loop yields between them)."""
        if self._window_days is None:
            return
        oldest_kept = _day_number(today) - self._window_days
        if not any(day < oldest_kept for day in self._per_day):
            return
        for index in range(TABLES):
            if self._overlay is not None:  # a snapshot is copying the tables: next time
                return
            yield self._rebuild(index, len(self._tables[index]) // _SLOT, oldest_kept)

    def __contains__(self, key: str) -> bool:
        return self._holds(key_digest(key))

    def __len__(self) -> int:
        return sum(self._per_day.values()) + len(self._overlay or ()) - len(self._late_releases)

    def memory_bytes(self) -> int:
        """The bytes the tables hold (what the keys cost, without the fixed list overhead)."""
        return sum(len(table) for table in self._tables)

    # -- snapshots ---------------------------------------------------------------------------

    def live(self) -> Iterator[tuple[bytes, date]]:
        """Every key the tables hold and its day: `allotment reshard` merges shards' keys
        (SCL-24). Not while a snapshot exports the tables (the overlay is not included)."""
        for table in self._tables:
            for offset in range(0, len(table), _SLOT):
                day = table[offset + 16] | table[offset + 17] << 8
                if day not in (_FREE, _GONE):
                    yield bytes(table[offset : offset + 16]), date.fromordinal(day + _EPOCH)

    @contextmanager
    def exported(self) -> Iterator[KeyTables]:
        """The tables and their counts as of now, for a snapshot. The tables are copied one at
        a time as the caller iterates (it may yield between them); until they are all copied
        they do not change. What is claimed or released meanwhile is applied by
        `merge_pending`, which a caller on the event loop runs once the tables are copied,
        yielding between its batches; whatever it left is applied when the block ends."""
        if self._overlay is not None:
            raise RuntimeError("the key tables are already being exported")
        self._overlay = {}
        try:
            tables = (bytes(table) for table in self._tables)
            yield KeyTables(list(self._used), dict(self._per_day), tables)
        finally:
            for _ in self.merge_pending():
                pass

    def merge_pending(self) -> Iterator[None]:
        """Apply the keys claimed and released during an export, `_MERGE_BATCH` at a time,
        yielding after each batch. Claims and releases made between batches keep going to
        the overlay, so they are merged too; the overlay ends once it is empty. (Applied all at
        once, the 2,836 claims made during one checkpoint held the event loop 23 ms.)"""
        overlay = self._overlay
        if overlay is None:
            return
        while True:
            for _ in range(min(_MERGE_BATCH, len(self._late_releases))):
                self._release(self._late_releases.pop())
            for _ in range(min(_MERGE_BATCH, len(overlay))):
                digest, day = overlay.popitem()
                self._insert(digest, day)
            if not overlay and not self._late_releases:
                self._overlay = None
                return
            yield

    def import_tables(
        self, tables: Sequence[bytes | bytearray], used: list[int], day_counts: dict[int, int]
    ) -> None:
        """Load what `export_tables` and `counts` gave, into an empty index (bytearrays are
        kept as they are, not copied).

        Raises:
            ValueError: the tables do not have the shape export gives.
        """
        if len(tables) != TABLES or len(used) != TABLES or len(self):
            raise ValueError(f"expected {TABLES} key tables for an empty index")
        for index, table in enumerate(tables):
            slots = len(table) // _SLOT
            if slots < _SLOTS_MIN or slots & (slots - 1) or len(table) % _SLOT:
                raise ValueError(f"key table {index} has {len(table)} bytes")
            if not 0 <= used[index] <= slots:
                raise ValueError(f"key table {index} claims {used[index]} of {slots} slots")
        self._tables = [t if isinstance(t, bytearray) else bytearray(t) for t in tables]
        self._used = list(used)
        self._per_day = Counter(day_counts)

    # -- the tables --------------------------------------------------------------------------

    def _claim(self, digest: bytes, day: int) -> bool:
        if self._overlay is None:
            return self._insert(digest, day)
        if self._holds(digest):
            return False
        if digest in self._late_releases:  # released meanwhile, claimed again: it stays
            self._late_releases.remove(digest)
            return True
        self._overlay[digest] = day
        return True

    def _holds(self, digest: bytes) -> bool:
        if self._overlay is not None:
            if digest in self._overlay:
                return True
            if digest in self._late_releases:
                return False
        table = self._tables[int.from_bytes(digest, "little") & _TABLE_MASK]
        return self._find(table, digest) >= 0

    def _release(self, digest: bytes) -> None:
        table = self._tables[int.from_bytes(digest, "little") & _TABLE_MASK]
        offset = self._find(table, digest)
        if offset >= 0:
            day = table[offset + 16] | table[offset + 17] << 8
            table[offset + 16 : offset + 18] = _GONE.to_bytes(2, "little")
            self._forget(day, 1)

    def _find(self, table: bytearray, digest: bytes) -> int:
        """The offset of `digest`'s live slot, or -1."""
        mask = len(table) // _SLOT - 1
        slot = (int.from_bytes(digest, "little") >> 12) & mask
        while True:
            offset = slot * _SLOT
            day = table[offset + 16] | table[offset + 17] << 8
            if day == _FREE:
                return -1
            if day != _GONE and table.startswith(digest, offset):
                return offset
            slot = (slot + 1) & mask

    def _insert(self, digest: bytes, day: int) -> bool:
        hashed = int.from_bytes(digest, "little")  # BLAKE2b: every bit is uniform
        index = hashed & _TABLE_MASK
        table = self._tables[index]
        mask = len(table) // _SLOT - 1
        slot = (hashed >> 12) & mask
        while True:
            offset = slot * _SLOT
            found = table[offset + 16] | table[offset + 17] << 8
            if found == _FREE:
                break
            if found != _GONE and table.startswith(digest, offset):
                return False
            slot = (slot + 1) & mask
        table[offset : offset + 16] = digest
        table[offset + 16 : offset + 18] = day.to_bytes(2, "little")
        self._per_day[day] += 1
        self._used[index] += 1
        if self._used[index] * 4 > (mask + 1) * 3:
            self._rebuild(index, (mask + 1) * 2, 0)
        return True

    def _rebuild(self, index: int, slots: int, oldest_kept: int) -> int:
        """Rehash table `index` into `slots` slots, dropping released keys and keys of days
        before `oldest_kept`; returns the number of keys dropped for age."""
        old = self._tables[index]
        live = [
            (old[offset : offset + 16], day)
            for offset in range(0, len(old), _SLOT)
            if (day := old[offset + 16] | old[offset + 17] << 8) not in (_FREE, _GONE)
        ]
        kept = [(digest, day) for digest, day in live if day >= oldest_kept]
        while len(kept) * 4 > slots * 3 or (slots > _SLOTS_MIN and len(kept) * 8 < slots):
            slots = slots * 2 if len(kept) * 4 > slots * 3 else slots // 2
        table = bytearray(slots * _SLOT)
        mask = slots - 1
        for digest, day in kept:
            slot = (int.from_bytes(digest, "little") >> 12) & mask
            while table[slot * _SLOT + 16] | table[slot * _SLOT + 17] << 8:
                slot = (slot + 1) & mask
            offset = slot * _SLOT
            table[offset : offset + 16] = digest
            table[offset + 16 : offset + 18] = day.to_bytes(2, "little")
        self._tables[index] = table
        self._used[index] = len(kept)
        for _, day in live:
            if day < oldest_kept:
                self._forget(day, 1)
        return len(live) - len(kept)

    def _forget(self, day: int, count: int) -> None:
        self._per_day[day] -= count
        if self._per_day[day] <= 0:
            del self._per_day[day]


class AuditKeyWindow:
    """ENT-32: `context.idempotencyKey` de-duplicates audit records only. The window is bounded
    (least recently seen keys leave first) because a repeat only saves one audit row."""

    def __init__(self, size_max: int) -> None:
        self._keys: OrderedDict[str, None] = OrderedDict()
        self._size_max = size_max

    def first_sighting(self, key: str) -> bool:
        if key in self._keys:
            self._keys.move_to_end(key)
            return False
        self._keys[key] = None
        if len(self._keys) > self._size_max:
            self._keys.popitem(last=False)
        return True
