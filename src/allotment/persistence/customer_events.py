"""One customer's latest events from the `events` history (the console's customer page, CON-80).

Customer state keeps usage counters, not events; the events are in the journal, whose
accepted usage (`UsageRecorded`) and CloudEvents the exporter writes to the Parquet `events`
history. `persistence/cloud_history.py` reads the journal's unexported tail for OpenMeter's
listing (OM-40); the newest events are there, so it is read first, then the history's range
files newest first, a few at a time, stopping once `limit` are found. An active customer's
page so reads the tail and perhaps one file; one idle for long reads further back, each file
by its `customer_id` column alone (DuckDB reads the other columns of matching rows only).
"""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import duckdb
import pyarrow as pa

from allotment.persistence.reports import CustomerEvent

__all__ = ("latest_events",)

# Range files asked at once: 1, then 4, then 16 ... (a query costs more than a small file).
_FIRST_BATCH: Final = 1
_GROWTH: Final = 4
_COLUMNS: Final = (
    "journal_position, fact_index, occurred_at, accepted_at, coalesce(event_name, type),"
    " coalesce(idempotency_key, id), feature_key, usage_units, source"
)


def latest_events(
    tail: pa.Table,
    files: list[tuple[int, int, Path]],
    exported: int,
    customer_id: str,
    limit: int,
) -> list[CustomerEvent]:
    """The customer's newest `limit` events: `tail` (the unexported journal rows), then
    `files` ((first, last, path) range files) newest first, rows past `exported` left out."""
    connection = duckdb.connect()
    try:
        connection.execute("SET TimeZone = 'UTC'")
        connection.register("tail", tail)
        found = _rows(connection, "tail", customer_id, limit, None)
        newest_first = [path for _, _, path in sorted(files, reverse=True)]
        size = _FIRST_BATCH
        while len(found) < limit and newest_first:
            batch, newest_first = newest_first[:size], newest_first[size:]
            listed = ", ".join("'" + str(p.resolve()).replace("'", "''") + "'" for p in batch)
            source = f"read_parquet([{listed}], union_by_name = true)"
            found += _rows(connection, source, customer_id, limit - len(found), exported)
            size *= _GROWTH
        return [_event(row) for row in found]
    finally:
        connection.close()


def _rows(
    connection: duckdb.DuckDBPyConnection,
    source: str,
    customer_id: str,
    limit: int,
    upto: int | None,
) -> list[tuple[Any, ...]]:
    bound = "" if upto is None else f" AND journal_position <= {int(upto)}"
    sql = (
        f"SELECT {_COLUMNS} FROM {source} WHERE customer_id = ?{bound}"  # noqa: S608
        " ORDER BY journal_position DESC, fact_index DESC LIMIT ?"
    )
    return connection.execute(sql, [customer_id, limit]).fetchall()


def _event(row: tuple[Any, ...]) -> CustomerEvent:
    position, index, occurred, accepted, name, key, feature, units, source = row
    return CustomerEvent(
        journal_position=position, fact_index=index, occurred_at=occurred.astimezone(UTC),
        accepted_at=accepted.astimezone(UTC), name=name or "", key=key or "", feature=feature,
        units=None if units is None else _plain(Decimal(str(units))), source=source,
    )  # fmt: skip


def _plain(units: Decimal) -> Decimal:
    """The history's fixed scale (1.000000000000) as the API writes units: 1, 2.5."""
    return units.to_integral() if units == units.to_integral() else units.normalize()
