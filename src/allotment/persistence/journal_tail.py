"""The `events` rows of an environment's journal after the history exporter's cursor, kept
between reads (persistence/cloud_history.py).

Every read of OpenMeter's listing, a meter query or the console's recent events needs the
journal's unexported tail as rows. Decoding it record by record costs as much as the tail is
long, and the tail is every record since the last export. So the rows are kept, and a read
decodes only the records that became durable since the last one, and drops those the
exporter has written to Parquet meanwhile. A read that cannot continue where the last one
stopped (the exporter passed it, or a segment went away) decodes the tail afresh, as before.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

from allotment.persistence.history_rows import EVENT_COLUMNS, event_rows
from allotment.persistence.journal import iter_records

__all__ = ("Columns", "TailRows")

_ATTEMPTS: Final = 5
Columns = dict[str, list[Any]]


class TailRows:
    """One environment's unexported journal rows, read up to a durable position."""

    def __init__(
        self, journal: Path, read: Callable[[Path, int, int], Iterable[Any]] = iter_records
    ) -> None:
        self._journal = journal
        self._read = read
        self._lock = threading.Lock()  # reads run on worker threads
        self._exported = -1  # the cursor the kept rows start after
        self._upto = -1  # the durable position the kept rows reach
        self._columns: Columns = _empty()

    def rows(self, exported: Callable[[], int], upto: int) -> tuple[int, Columns]:
        """The cursor and a copy of the rows of the records in (cursor, upto]."""
        with self._lock:
            cursor = exported()
            if not (self._exported <= cursor <= self._upto and self._extend(upto)):
                cursor = self._afresh(exported, upto)
            self._drop_through(cursor)
            return cursor, {name: list(values) for name, values in self._columns.items()}

    def _extend(self, upto: int) -> bool:
        """Append the records in (kept upto, upto]; False when they do not follow on."""
        if upto <= self._upto:
            return True
        first, columns = self._decode(self._upto, upto)
        if first is not None and first != self._upto + 1:
            return False  # a segment went away: read afresh from the cursor
        for name, values in columns.items():
            self._columns[name].extend(values)
        self._upto = upto
        return True

    def _afresh(self, exported: Callable[[], int], upto: int) -> int:
        """The tail decoded from the cursor, taken again when a segment went away after an
        export that ran meanwhile (the first record then is not the cursor's next)."""
        cursor, columns = -1, _empty()
        for _ in range(_ATTEMPTS):
            cursor = exported()
            first, columns = self._decode(cursor, upto)
            if first is None or first == cursor + 1:
                break
        self._exported, self._upto, self._columns = cursor, max(upto, cursor), columns
        return cursor

    def _decode(self, after: int, upto: int) -> tuple[int | None, Columns]:
        """The rows of the records in (after, upto], and the first record's position (None
        when there is none): a first past `after + 1` means a segment went away."""
        columns = _empty()
        first = None
        for record in self._read(self._journal, after, upto):
            first = record.position if first is None else first
            event_rows(record, columns)
        return first, columns

    def _drop_through(self, cursor: int) -> None:
        """Forget the rows the exporter has written (positions at or before `cursor`)."""
        if cursor <= self._exported:
            return
        cut = bisect_right(self._columns["journal_position"], cursor)
        for values in self._columns.values():
            del values[:cut]
        self._exported = cursor


def _empty() -> Columns:
    return {name: [] for name in EVENT_COLUMNS}
