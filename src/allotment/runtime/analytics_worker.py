"""The analytics worker: a child process that turns the server's stream into the analytics
files. `python -m allotment.runtime.analytics_worker DATA_DIR` reads `analytics_stream` frames
on stdin, appends the history records to the Parquet history, rebuilds `analytics.duckdb`,
and prints a JSON line after each table of history written and after the database.

It decodes and converts one chunk at a time, so it holds the Arrow tables (columnar, compact)
but never all the customers as Python objects.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import msgspec
import pyarrow as pa

from allotment.persistence.analytics import build_database, to_arrow, write_history
from allotment.persistence.analytics_rows import (
    Columns,
    StateRows,
    audit_rows,
    catalog_rows,
    event_rows,
    ledger_rows,
)
from allotment.runtime.analytics_stream import (
    AuditChunk,
    End,
    EnvironmentStart,
    EventChunk,
    Frame,
    LedgerChunk,
    StateChunk,
    read_frame,
)

__all__ = ("build_from_stream",)

_HISTORY: dict[type[Any], tuple[str, Callable[[list[Any]], Columns]]] = {
    EventChunk: ("events", event_rows),
    AuditChunk: ("entitlement_checks", audit_rows),
    LedgerChunk: ("credit_transactions", ledger_rows),
}


def _reader(stream: BinaryIO) -> Callable[[int], bytes]:
    def read_exactly(size: int) -> bytes:
        chunks, got = [], 0
        while got < size:
            chunk = stream.read(size - got)
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    return read_exactly


def build_from_stream(data_dir: Path, stream: BinaryIO, report: TextIO) -> None:
    """Consume the stream, then write the history and the database, reporting each table on
    its own line as soon as it is written: the server re-queues only the history of tables no
    line names.

    Raises:
        EOFError: the stream ended before its `End` frame (the server went away).
    """
    read = _reader(stream)
    build = _Build(data_dir)
    while True:
        frame = read_frame(read)
        if frame is None:
            raise EOFError("the analytics stream ended before its end frame")
        if isinstance(frame, End):
            break
        build.add(frame)
    build.write_history(lambda written: _report(report, {"history": written}))
    _report(report, {"database": str(build.write_database(frame))})


def _report(report: TextIO, line: dict[str, Any]) -> None:
    report.write(msgspec.json.encode(line).decode() + "\n")
    report.flush()


class _Build:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.tables: dict[str, list[pa.Table]] = {}
        self.environments: list[EnvironmentStart] = []
        self.history: dict[tuple[str, str], list[pa.Table]] = {}  # (environment, table)

    def add(self, frame: Frame) -> None:
        if isinstance(frame, EnvironmentStart):
            self.environments.append(frame)
            self._tables(catalog_rows(frame.catalog), frame.environment)
            if frame.customers == 0:  # empty tables still fix the schema
                self._tables(StateRows().tables, frame.environment)
        elif isinstance(frame, StateChunk):
            start = self.environments[-1]
            rows = StateRows()
            for state in frame.states:
                rows.add(state, start.catalog)
            self._tables(rows.tables, start.environment)
        elif isinstance(frame, EventChunk | AuditChunk | LedgerChunk):
            table, to_rows = _HISTORY[type(frame)]
            environment = self.environments[-1].environment
            batch = to_arrow(to_rows(frame.records), environment)
            self.history.setdefault((environment, table), []).append(batch)

    def write_history(self, written: Callable[[list[Any]], None]) -> None:
        """Append every environment's history to the Parquet files, calling `written` with
        [environment, table, rows] after each table."""
        for start in self.environments:
            for table, to_rows in _HISTORY.values():
                empty = to_arrow(to_rows([]), start.environment)  # fixes the schema
                batches = [empty, *self.history.get((start.environment, table), [])]
                rows = write_history(self.data_dir, table, batches)
                written([start.environment, table, rows])

    def write_database(self, end: End) -> Path:
        info = [
            to_arrow(
                {
                    "journal_position": [start.journal_position],
                    "snapshot_taken_at": [end.taken_at],
                    "customers": [start.customers],
                },
                start.environment,
            )
            for start in self.environments
        ]
        return build_database(self.data_dir, self.tables, info)

    def _tables(self, tables: dict[str, Columns], environment: str) -> None:
        for name, columns in tables.items():
            self.tables.setdefault(name, []).append(to_arrow(columns, environment))


def main() -> None:
    build_from_stream(Path(sys.argv[1]), sys.stdin.buffer, sys.stdout)


if __name__ == "__main__":
    main()
