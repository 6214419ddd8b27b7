"""OpenMeter's reads answered from the journal's CloudEvents, exactly up to the query's instant
(OM-40, docs/openmeter.md "Queries and listing").

An environment's CloudEvents are in two places at any moment:

1. the Parquet `events` history (`history/events/<env>-<first>-<last>.parquet`), every record up
   to the exporter's cursor, exported exactly once (docs/analytics.md);
2. the journal records after that cursor, up to the journal's durable position: every event
   acknowledged so far (ingest replies only once its record is durable).

A read takes the cursor first, then reads (1) keeping rows at or before it (an export running
meanwhile may add a file past it) and (2) from the journal after it, turns (2) into rows with the
exporter's own `event_rows`, and lets DuckDB answer over the union. A journal segment deleted
after an export that ran between the two steps shows as a gap after the cursor: the read is
then taken again from the new cursor.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, TypeVar

import anyio.to_thread
import duckdb
import msgspec
import pyarrow as pa

from allotment.domain.meter_queries import (
    EventQuery,
    MeterPart,
    MeterQuery,
    MeterRow,
    StoredCloudEvent,
)
from allotment.domain.meters import Meter
from allotment.persistence.analytics import to_arrow
from allotment.persistence.customer_events import latest_events
from allotment.persistence.errors import HistoryUnavailable
from allotment.persistence.history_cursor import cursor, table_dir
from allotment.persistence.journal_tail import TailRows
from allotment.persistence.meter_rollup import Rollup, levels, range_files, run_rollup_query
from allotment.persistence.meter_sql import distinct_sql, events_sql, meter_sql, parts_sql
from allotment.persistence.meter_windows import bounds, offsets
from allotment.persistence.reports import CustomerEvent

__all__ = (
    "CloudHistory",
    "cloud_events",
    "meter_rows",
    "run_meter_query",
    "run_parts_query",
    "stored_events",
)

# The columns of `ce` (persistence/meter_sql.py) from the `events` history's columns.
_PROJECTION: Final = (
    "source, id, type, subject, occurred_at AS time, accepted_at AS ingested_at, data,"
    " specversion, customer_id, validation_error, journal_position, fact_index"
)
R = TypeVar("R")


def _quoted(path: Path) -> str:
    return "'" + str(path.resolve()).replace("'", "''") + "'"


def cloud_events(
    connection: duckdb.DuckDBPyConnection, files: list[Path], upto: int, tail: pa.Table
) -> None:
    """Define the view `ce` on `connection`: the CloudEvent rows of `files` up to journal
    position `upto`, and the rows of `tail` (the `events` history's schema)."""
    connection.register("tail", tail)
    parts = [f"SELECT {_PROJECTION} FROM tail WHERE source IS NOT NULL"]  # noqa: S608
    if files:
        listed = ", ".join(_quoted(f) for f in files)
        source = f"read_parquet([{listed}], union_by_name = true)"
        parts.insert(
            0,
            f"SELECT {_PROJECTION} FROM {source}"  # noqa: S608
            f" WHERE source IS NOT NULL AND journal_position <= {int(upto)}",
        )
    connection.execute(f"CREATE TEMP VIEW ce AS {' UNION ALL '.join(parts)}")


class CloudHistory:
    """`runtime.meter_reads.CloudEventHistory` over a data directory. `durable(environment)`
    is the environment's journal durable position now; `rollups=False` answers every meter
    query from the raw rows (the reference the rollups are tested and measured against)."""

    def __init__(
        self, data_dir: Path | None, durable: Callable[[str], int], *, rollups: bool = True
    ) -> None:
        self._data_dir = data_dir
        self._durable = durable
        self._rollups = rollups
        self._tails: dict[str, TailRows] = {}  # each environment's unexported journal rows

    def _connect(self, environment: str, since: int = 0) -> duckdb.DuckDBPyConnection:
        """A connection with the view `ce` of the environment's CloudEvents up to the
        journal's durable position; with `since`, only the history files past it are read
        (the caller reads nothing at or before it from `ce`)."""
        exported, tail, directory = self._tail(environment)
        files = [path for _, last, path in range_files(directory, environment) if last > since]
        connection = duckdb.connect()
        connection.execute("SET TimeZone = 'UTC'")
        cloud_events(connection, files, exported, tail)
        return connection

    def _tail(self, environment: str) -> tuple[int, pa.Table, Path]:
        """The exporter's cursor, the `events` rows of the journal after it up to the durable
        position, and the history's directory. The rows are kept between reads, so a read
        decodes only what became durable since the last (persistence/journal_tail.py)."""
        if self._data_dir is None:
            raise HistoryUnavailable("allotment runs without a data directory: no history")
        upto = self._durable(environment)
        directory = table_dir(self._data_dir, "events")
        tail = self._tails.get(environment)
        if tail is None:
            tail = self._tails.setdefault(
                environment, TailRows(self._data_dir / "journal" / environment)
            )
        exported, columns = tail.rows(lambda: cursor(directory, environment), upto)
        return exported, to_arrow(columns, environment), directory

    def _customer_events(
        self, environment: str, customer_id: uuid.UUID, limit: int
    ) -> list[CustomerEvent]:
        exported, tail, directory = self._tail(environment)
        files = range_files(directory, environment)
        return latest_events(tail, files, exported, str(customer_id), limit)

    async def customer_events(
        self, environment: str, customer_id: uuid.UUID, limit: int
    ) -> list[CustomerEvent]:
        return await anyio.to_thread.run_sync(
            self._customer_events, environment, customer_id, limit
        )

    def _raw(self, environment: str, run: Callable[[duckdb.DuckDBPyConnection], R]) -> R:
        """`run` over a connection to every raw row (the journal's durable tail included)."""
        connection = self._connect(environment)
        try:
            return run(connection)
        finally:
            connection.close()

    def _run(self, environment: str, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        return self._raw(environment, lambda c: c.execute(sql, params).fetchall())

    def _query_meter(self, environment: str, meter: Meter, query: MeterQuery) -> list[MeterRow]:
        """From the meter's rollup when it has one and the query allows (OM-56), else from
        the raw rows."""
        for level in levels(query) if self._data_dir is not None and self._rollups else []:
            assert self._data_dir is not None
            rollup = Rollup(self._data_dir, environment, meter, level)
            if rollup.exists:
                connection = self._connect(environment, rollup.position)
                try:
                    rows = run_rollup_query(connection, meter, query, rollup)
                except duckdb.IOException:
                    rows = None  # its files went away: the meter was just changed or deleted
                finally:
                    connection.close()
                if rows is not None:
                    return rows
        return self._raw(environment, lambda c: run_meter_query(c, meter, query))

    async def query_meter(
        self, environment: str, meter: Meter, query: MeterQuery
    ) -> list[MeterRow]:
        return await anyio.to_thread.run_sync(self._query_meter, environment, meter, query)

    def _meter_parts(self, environment: str, meter: Meter, query: MeterQuery) -> list[MeterPart]:
        """From the raw rows: a rollup keeps no distinct values nor the latest's time."""
        return self._raw(environment, lambda c: run_parts_query(c, meter, query))

    async def meter_parts(
        self, environment: str, meter: Meter, query: MeterQuery
    ) -> list[MeterPart]:
        return await anyio.to_thread.run_sync(self._meter_parts, environment, meter, query)

    async def list_events(self, environment: str, query: EventQuery) -> list[StoredCloudEvent]:
        sql, params = events_sql(query)
        rows = await anyio.to_thread.run_sync(self._run, environment, sql, params)
        return stored_events(rows)

    async def distinct_values(
        self,
        environment: str,
        meter: Meter,
        dimension: str,
        start: datetime | None,
        end: datetime | None,
    ) -> list[str]:
        sql, params = distinct_sql(meter, dimension, start, end)
        rows = await anyio.to_thread.run_sync(self._run, environment, sql, params)
        return [row[0] for row in rows]


def _zone_pairs(
    connection: duckdb.DuckDBPyConnection, meter: Meter, query: MeterQuery
) -> list[tuple[int | None, int]]:
    """A zone other than UTC needs its offsets over the range: the query's, else that of the
    meter's events."""
    if query.window_size is None or query.time_zone == "UTC":
        return [(None, 0)]
    low, high = query.start, query.end
    if low is None or high is None:
        first, last = connection.execute(
            "SELECT min(time), max(time) FROM ce WHERE type = ?", [meter.event_type]
        ).fetchone() or (None, None)
        low, high = low or first or query.now, high or last or query.now
    return offsets(query.time_zone, low - timedelta(days=1), high + timedelta(days=1))


def run_meter_query(
    connection: duckdb.DuckDBPyConnection, meter: Meter, query: MeterQuery
) -> list[MeterRow]:
    """The meter query over the view `ce` of `connection`."""
    sql, params = meter_sql(meter, query, _zone_pairs(connection, meter, query))
    return meter_rows(connection.execute(sql, params).fetchall(), query)


def run_parts_query(
    connection: duckdb.DuckDBPyConnection, meter: Meter, query: MeterQuery
) -> list[MeterPart]:
    """As `run_meter_query`, each row with what merging it with other shards' needs (SCL-60)."""
    sql, params = parts_sql(meter, query, _zone_pairs(connection, meter, query))
    found = connection.execute(sql, params).fetchall()
    rows = meter_rows([row[:-1] for row in found], query)
    return [MeterPart(row=row, part=found[i][-1]) for i, row in enumerate(rows)]


def meter_rows(rows: list[tuple[Any, ...]], query: MeterQuery) -> list[MeterRow]:
    """The SQL's rows as `MeterRow`s. Without a window size, every row spans the query's range:
    from `start` (else the earliest event's time) to `end` (else the query's instant)."""
    earliest = min((row[-2] for row in rows), default=query.now)
    result = []
    for row in rows:
        key, offset, *groups, _, value = row
        if query.window_size is None:
            start = query.start or earliest
            end = query.end or query.now
        else:
            start, end = bounds(query.window_size, query.time_zone, key, offset)
        named = dict(zip(query.group_by, groups, strict=True))
        result.append(
            MeterRow(
                value=float(value) if value is not None else 0.0,
                window_start=start.astimezone(UTC),
                window_end=end.astimezone(UTC),
                subject=named.pop("subject", None),
                customer_id=named.pop("customer_id", None),
                groups=named,
            )
        )
    return result


_DATA: Final = msgspec.json.Decoder(dict[str, Any])


def stored_events(rows: list[tuple[Any, ...]]) -> list[StoredCloudEvent]:
    """The listing SQL's rows (`meter_sql.events_sql`) as events."""
    return [_stored(row) for row in rows]


def _stored(row: tuple[Any, ...]) -> StoredCloudEvent:
    source, id_, type_, subject, time, ingested, data, spec, customer, error, position, index = row
    return StoredCloudEvent(
        source=source, id=id_, type=type_, subject=subject, time=time.astimezone(UTC),
        ingested_at=ingested.astimezone(UTC), journal_position=position, fact_index=index,
        specversion=spec or "1.0", data=None if data is None else _DATA.decode(data),
        customer_id=customer, validation_error=error,
    )  # fmt: skip
