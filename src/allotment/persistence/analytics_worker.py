"""The analytics worker: a child process that turns the server's stream into the analytics
files. `python -m allotment.persistence.analytics_worker DATA_DIR` reads `analytics_stream` frames
on stdin, appends the audit records to their Parquet history, exports each environment's
journal to the `events` and `credit_transactions` histories (`history_export`), rolls the
meters' rollups forward (`meter_rollup_build`), rebuilds
`analytics.duckdb`, and prints a JSON line after each of these steps.

It decodes and converts one chunk at a time, so it holds the Arrow tables (columnar, compact)
but never all the customers as Python objects.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import duckdb
import msgspec
import pyarrow as pa

from allotment.persistence.analytics import build_database, to_arrow, write_history
from allotment.persistence.analytics_rows import Columns, StateRows, audit_rows, catalog_rows
from allotment.persistence.analytics_rows.payments import unapplied_payment_rows as payments
from allotment.persistence.analytics_stream import (
    AuditChunk,
    End,
    EnvironmentStart,
    Frame,
    StateChunk,
    read_frame,
)
from allotment.persistence.history_export import export_history, write_schema_files
from allotment.persistence.meter_rollup_build import update_rollups

__all__ = ("build_from_stream",)


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
    """Consume the stream, then write the audit history, export the journal histories and
    write the database, reporting each step on its own line as soon as it is done: the server
    re-queues only the audit records of environments no line names.

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
    for start in build.environments:
        exported = export_history(data_dir, start.environment, start.durable_position)
        _report(report, {"exported": msgspec.to_builtins(exported)})
        _roll_up(data_dir, start, report)
    write_schema_files(data_dir)  # the views need them, also with no environment at all
    _report(report, {"database": str(build.write_database(frame))})


def _roll_up(data_dir: Path, start: EnvironmentStart, report: TextIO) -> None:
    """Roll the meters' rollups forward (OM-55), the meters as of the snapshot: one defined
    since is rolled up by the next run. Rollups only make queries faster, and what a failed
    run wrote is complete or ignored: a full disk here must not cost the analytics database."""
    try:
        rolled = update_rollups(data_dir, start.environment, start.catalog.meters.values())
    except (OSError, duckdb.Error) as error:
        _report(report, {"rollup_failed": [start.environment, str(error)]})
    else:
        _report(report, {"rolled_up": [start.environment, rolled]})


def _report(report: TextIO, line: dict[str, Any]) -> None:
    report.write(msgspec.json.encode(line).decode() + "\n")
    report.flush()


class _Build:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.tables: dict[str, list[pa.Table]] = {}
        self.environments: list[EnvironmentStart] = []
        self.audits: dict[str, list[pa.Table]] = {}  # environment -> audit record batches

    def add(self, frame: Frame) -> None:
        if isinstance(frame, EnvironmentStart):
            self.environments.append(frame)
            self._tables(catalog_rows(frame.catalog), frame.environment)
            self._tables(
                {"unapplied_payments": payments(frame.unapplied_payments)}, frame.environment
            )
            if frame.customers == 0:  # empty tables still fix the schema
                self._tables(StateRows().tables, frame.environment)
        elif isinstance(frame, StateChunk):
            start = self.environments[-1]
            rows = StateRows()
            for state in frame.states:
                rows.add(state, start.catalog)
            self._tables(rows.tables, start.environment)
        elif isinstance(frame, AuditChunk):
            environment = self.environments[-1].environment
            batch = to_arrow(audit_rows(frame.records), environment)
            self.audits.setdefault(environment, []).append(batch)

    def write_history(self, written: Callable[[list[Any]], None]) -> None:
        """Append every environment's audit records to their Parquet history, calling
        `written` with [environment, table, rows] after each environment."""
        for start in self.environments:
            empty = to_arrow(audit_rows([]), start.environment)  # fixes the schema
            batches = [empty, *self.audits.get(start.environment, [])]
            rows = write_history(self.data_dir, "entitlement_checks", batches)
            written([start.environment, "entitlement_checks", rows])

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
