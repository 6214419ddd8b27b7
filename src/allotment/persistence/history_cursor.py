"""Where the history exporter stands: the cursor of each (environment, history table).

Kept apart from `history_export` so that the server (whose checkpoint asks how far the export
went before deleting journal segments) never imports pyarrow.

The cursor of (environment, table), the last journal position whose rows are in that table's
files, is the larger of its cursor file `<data-dir>/history/<table>/<env>.position` and the last
position named by any of the table's files `<env>-<first:020d>-<last:020d>.parquet`.
"""

from __future__ import annotations

import re
from pathlib import Path

from allotment.persistence.reports import ExportReport

__all__ = (
    "JOURNAL_TABLES",
    "ExportReport",
    "cursor",
    "cursor_file",
    "exported_position",
    "range_file",
    "table_dir",
)

# The histories exported from the journal (`history_rows.JOURNAL_HISTORIES` builds them).
JOURNAL_TABLES = ("events", "credit_transactions", "reservation_history")
_RANGE_FILE = re.compile(r"^(?P<environment>.+)-(?P<first>\d{20})-(?P<last>\d{20})\.parquet$")


def table_dir(data_dir: Path, table: str) -> Path:
    return data_dir / "history" / table


def range_file(directory: Path, environment: str, first: int, last: int) -> Path:
    """The file holding the rows of the records `first..last` of `environment`."""
    return directory / f"{environment}-{first:020d}-{last:020d}.parquet"


def cursor_file(directory: Path, environment: str) -> Path:
    return directory / f"{environment}.position"


def cursor(directory: Path, environment: str) -> int:
    """The last position of `environment` whose rows are in the files under `directory`."""
    position = 0
    path = cursor_file(directory, environment)
    if path.exists():
        position = int(path.read_text())
    if directory.exists():
        for entry in directory.iterdir():
            match = _RANGE_FILE.match(entry.name)
            if match and match["environment"] == environment:
                position = max(position, int(match["last"]))
    return position


def exported_position(data_dir: Path, environment: str) -> int:
    """The journal position up to which every record of `environment` is in every journal
    history (0 before the first export): journal segments up to here may be deleted.

    Cheap: a directory listing and a small read per table; no Parquet file is opened.
    """
    return min(cursor(table_dir(data_dir, table), environment) for table in JOURNAL_TABLES)
