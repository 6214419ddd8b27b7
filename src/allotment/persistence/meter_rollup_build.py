"""Keeping the meter rollups up to date (OM-55): after each export of the `events` history, the
analytics worker rolls every meter's rollup forward to the history's cursor.

Per meter (its id and the fingerprint of its definition, `meter_rollup.rollup_dir`), the
records after the rollup's cursor and up to the history's are read from the history files,
turned into partial rows (`meter_rollup_sql.partials_sql`) and written as one range file, like
the exporter's: a temporary name, fsync, rename, fsync of the directory, then the cursor file.
A crash leaves no file for the range (built again next time) or a complete one the cursor
already covers (never counted twice). A new meter, or a changed definition, has a new
directory whose cursor is 0: it is built from the whole history. Directories of deleted meters
and of replaced definitions are removed. One worker runs at a time (the server serialises
the analytics runs), so a range is never written by two.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from functools import partial
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from allotment.domain.meters import Meter
from allotment.persistence.analytics import to_arrow
from allotment.persistence.cloud_history import cloud_events
from allotment.persistence.history_cursor import cursor, cursor_file, range_file, table_dir
from allotment.persistence.history_export import write_durably
from allotment.persistence.history_rows import EVENT_COLUMNS
from allotment.persistence.meter_rollup import range_files, rollup_dir, rollup_root
from allotment.persistence.meter_rollup_sql import LEVELS, Level, partial_columns, partials_sql

__all__ = ("update_rollup", "update_rollups")

_ROW_GROUP = 100_000  # rows: small enough for the statistics to skip most of a large file


def update_rollups(data_dir: Path, environment: str, meters: Iterable[Meter]) -> int:
    """Roll the rollup of every meter not deleted forward to the `events` history's cursor,
    and remove the others. Returns the number of partial rows written."""
    live = {m.id: m for m in meters if not m.deleted}
    kept = {rollup_dir(data_dir, environment, m).name for m in live.values()}
    root = rollup_root(data_dir, environment)
    if root.exists():
        for directory in root.iterdir():
            if directory.name not in kept:
                shutil.rmtree(directory)  # a deleted meter or a replaced definition
    upto = cursor(table_dir(data_dir, "events"), environment)
    return sum(update_rollup(data_dir, environment, m, upto) for m in live.values())


def update_rollup(data_dir: Path, environment: str, meter: Meter, upto: int) -> int:
    """Roll every level of `meter`'s rollup forward to position `upto` of the `events`
    history (which must hold it). Returns the number of partial rows written."""
    return sum(_update_level(data_dir, environment, meter, level, upto) for level in LEVELS)


def _update_level(data_dir: Path, environment: str, meter: Meter, level: Level, upto: int) -> int:
    directory = rollup_dir(data_dir, environment, meter) / level.name
    directory.mkdir(parents=True, exist_ok=True)
    for leftover in directory.glob(f".{environment}-*.tmp"):
        leftover.unlink()  # a crash mid-write: the range is built again
    since = cursor(directory, environment)
    if upto <= since:
        return 0
    history = table_dir(data_dir, "events")
    files = [p for first, last, p in range_files(history, environment)
             if last > since and first <= upto]  # fmt: skip
    connection = duckdb.connect()
    try:
        connection.execute("SET TimeZone = 'UTC'")
        empty = to_arrow({name: [] for name in EVENT_COLUMNS}, environment)
        cloud_events(connection, files, upto, empty)
        sql, params = partials_sql(meter, level, since)
        names = ", ".join(partial_columns(meter, level))
        # by subject, then time: a query for a few subjects reads a few row groups
        order = "subject, customer_id, b" if level.per_subject else "b"
        select = f"SELECT {names} FROM ({sql}) ORDER BY {order}"  # noqa: S608
        table = connection.sql(select, params=params).to_arrow_table()
    finally:
        connection.close()
    if table.num_rows:
        path = range_file(directory, environment, since + 1, upto)
        write_durably(path, partial(pq.write_table, table, row_group_size=_ROW_GROUP))
    write_durably(cursor_file(directory, environment), lambda f: f.write(f"{upto}\n".encode()))
    return int(table.num_rows)
