"""The history exporter: the `events`, `credit_transactions` and `reservation_history` histories
are projections of each environment's journal, written to Parquet exactly once.

Per history table (`history_rows.JOURNAL_HISTORIES`) and environment:

    <data-dir>/history/<table>/<env>-<first:020d>-<last:020d>.parquet   rows of records first..last
    <data-dir>/history/<table>/<env>.position                            the cursor file
    <data-dir>/history/<table>/schema.parquet                            no rows: fixes the schema

The cursor of (environment, table) (`history_cursor`), the last journal position whose rows
are in that table's files, is the larger of the cursor file and the last position any of the
table's file names covers. A file is written under a temporary name, fsync'd, renamed into
place and its directory fsync'd before the cursor file moves on, so a crash anywhere leaves
either no file for a range (exported again next time) or a complete file that the cursor
already covers (never exported twice). A range without rows moves the cursor file only.

The exporter reads the journal only, and only up to the position the caller says is durable,
so it can run beside the server (in the analytics worker process). Two exports of one data
directory must not run at once; the server serialises them.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import BinaryIO

import msgspec
import pyarrow.parquet as pq

from allotment.persistence.analytics import to_arrow
from allotment.persistence.analytics_rows import Columns
from allotment.persistence.file_modes import private_opener
from allotment.persistence.history_cursor import (
    ExportReport,
    cursor,
    cursor_file,
    range_file,
    table_dir,
)
from allotment.persistence.history_rows import JOURNAL_HISTORIES
from allotment.persistence.journal import iter_records
from allotment.persistence.ports import JournalRecord

__all__ = ("export_history", "main", "write_durably", "write_schema_files")

logger = logging.getLogger("allotment.history")

ROWS_PER_FILE_MAX = 50_000  # a longer range is split into files of whole records


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(final: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write through `write(file)` to a temporary name, fsync it, rename it to `final` and
    fsync the directory: `final` then exists complete, or not at all, after any crash."""
    temporary = final.with_name(f".{final.name}.tmp")
    with open(temporary, "wb", opener=private_opener) as file:
        write(file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, final)
    _fsync_directory(final.parent)


def write_schema_files(data_dir: Path) -> None:
    """An empty `schema.parquet` per table, so its view resolves before the first export."""
    for table, (columns, _) in JOURNAL_HISTORIES.items():
        path = table_dir(data_dir, table) / "schema.parquet"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            empty = to_arrow({name: [] for name in columns}, "")
            write_durably(path, partial(pq.write_table, empty))


class _TableExport:
    """The rows of one history table since its cursor, written out in whole records."""

    def __init__(self, data_dir: Path, table: str, environment: str) -> None:
        self.directory = table_dir(data_dir, table)
        self.table = table
        self.environment = environment
        self.columns, self._add = JOURNAL_HISTORIES[table]
        for leftover in self.directory.glob(f".{environment}-*.tmp"):
            leftover.unlink()  # a crash mid-write: the range is exported again, maybe longer
        self.cursor = cursor(self.directory, environment)
        self.rows: Columns = self._empty()
        self.count = 0
        self.written = 0
        self.files = 0

    def _empty(self) -> Columns:
        return {name: [] for name in self.columns}

    def add(self, record: JournalRecord) -> None:
        if record.position > self.cursor:
            self.count += self._add(record, self.rows)

    def flush(self, last: int) -> None:
        """Write the rows gathered (records up to `last`) and move the cursor to `last`."""
        if last <= self.cursor:
            return
        if self.count:
            arrow = to_arrow(self.rows, self.environment)
            path = range_file(self.directory, self.environment, self.cursor + 1, last)
            write_durably(path, partial(pq.write_table, arrow))
            self.files += 1
        position = cursor_file(self.directory, self.environment)
        write_durably(position, lambda file: file.write(f"{last}\n".encode()))
        self.cursor, self.written = last, self.written + self.count
        self.rows, self.count = self._empty(), 0


def export_history(data_dir: Path, environment: str, upto: int) -> ExportReport:
    """Export the records of `environment` after each table's cursor and up to `upto` into
    the history tables; afterwards `exported_position(data_dir, environment) >= upto`.

    Args:
        data_dir: the server's data directory (the journal is `journal/<environment>/`).
        environment: "test" or "live".
        upto: a position the journal holds durably (the writer's durable position): records
            after it may still be in flight and are left for the next export.

    Raises:
        JournalCorrupt: damage in the middle of the journal; nothing past it is exported.
        OSError: a file could not be written; what was written is complete and counted.
    """
    write_schema_files(data_dir)
    tables = [_TableExport(data_dir, table, environment) for table in JOURNAL_HISTORIES]
    after = min(table.cursor for table in tables)
    expected = after + 1
    for record in iter_records(data_dir / "journal" / environment, after, upto):
        if record.position != expected:
            # Segments were deleted before their export (a server from before the exporter).
            logger.warning(
                "history of %s: positions %d..%d are no longer in the journal",
                environment, expected, record.position - 1,
            )  # fmt: skip
        expected = record.position + 1
        for table in tables:
            table.add(record)
            if table.count >= ROWS_PER_FILE_MAX:
                table.flush(record.position)  # files end on whole records
    for table in tables:
        table.flush(upto)
    written = {table.table: table.written for table in tables}
    return ExportReport(
        environment=environment,
        position=min(table.cursor for table in tables),
        events=written["events"],
        credit_transactions=written["credit_transactions"],
        reservation_history=written["reservation_history"],
        files=sum(table.files for table in tables),
    )


def main(arguments: list[str] | None = None) -> None:
    """`python -m allotment.persistence.history_export DATA_DIR ENV=POSITION...`: export each
    environment up to its position, printing one JSON `ExportReport` per line."""
    data_dir, *targets = sys.argv[1:] if arguments is None else arguments
    for target in targets:
        environment, _, position = target.rpartition("=")
        report = export_history(Path(data_dir), environment, int(position))
        sys.stdout.write(msgspec.json.encode(report).decode() + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
