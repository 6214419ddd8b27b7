"""Meter queries from a meter's rollup plus the raw rows after it (OM-54..OM-57).

A rollup (`meter_rollup_sql.py` says what it holds) lives beside the history:

    <data-dir>/history/meter_rollups/<env>/<meter id>-<fingerprint>/<env>-<first>-<last>.parquet
    <data-dir>/history/meter_rollups/<env>/<meter id>-<fingerprint>/<env>.position

with the exporter's file names and cursor (`history_cursor`): the files hold the partial rows
of the `events` history's records up to the rollup's cursor `R`, each record exactly once. The
fingerprint names the meter's definition: a new or changed meter has no rollup until one is
built from the whole history (`meter_rollup_build.py`), and is answered from the raw rows
meanwhile.

A query reads `R` first, then the rollup files up to `R`, and builds the partial rows of every
CloudEvent after `R` at query time from the raw `ce` (the history files past `R` and the
journal tail, `cloud_history.py`) with the same SQL: the union is every event up to the instant
of the query, once (OM-40).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

import duckdb

from allotment.domain.meter_queries import MeterQuery, MeterRow, WindowSize
from allotment.domain.meters import Meter
from allotment.persistence.history_cursor import cursor
from allotment.persistence.meter_rollup_sql import (
    LEVELS,
    Level,
    fingerprint,
    partial_columns,
    partials_sql,
    rollup_sql,
)
from allotment.persistence.meter_windows import EPOCH, offsets

__all__ = ("Rollup", "levels", "range_files", "rollup_dir", "rollup_root", "run_rollup_query")

_RANGE: Final = re.compile(r"^(?P<environment>.+)-(?P<first>\d{20})-(?P<last>\d{20})\.parquet$")
_US: Final = timedelta(microseconds=1)
_MINUTE_US: Final = 60_000_000


def rollup_root(data_dir: Path, environment: str) -> Path:
    return data_dir / "history" / "meter_rollups" / environment


def rollup_dir(data_dir: Path, environment: str, meter: Meter) -> Path:
    return rollup_root(data_dir, environment) / f"{meter.id}-{fingerprint(meter)}"


def range_files(directory: Path, environment: str) -> list[tuple[int, int, Path]]:
    """(first, last, path) of `environment`'s range files under `directory`, by first."""
    found = []
    if directory.exists():
        for entry in directory.iterdir():
            match = _RANGE.match(entry.name)
            if match and match["environment"] == environment:
                found.append((int(match["first"]), int(match["last"]), entry))
    return sorted(found)


def levels(query: MeterQuery) -> list[Level]:
    """The levels of a rollup that can answer `query`, smallest first, before its zone is
    looked at: the quarter-hour level has no subject or customer, and no minute windows."""
    per_subject = bool(query.subjects or query.customer_ids or
                       {"subject", "customer_id"} & set(query.group_by))  # fmt: skip
    minutes = query.window_size is WindowSize.MINUTE
    return [level for level in LEVELS
            if _aligned(query.start, level) and _aligned(query.end, level)
            and (level.per_subject or not per_subject)
            and (level.bucket_us <= _MINUTE_US or not minutes)]  # fmt: skip


class Rollup:
    """A level of a meter's rollup as a query finds it: its cursor, then its files up to the
    cursor (a file written meanwhile lies past it and is left to the raw rows)."""

    def __init__(self, data_dir: Path, environment: str, meter: Meter, level: Level) -> None:
        self.level = level
        directory = rollup_dir(data_dir, environment, meter) / level.name
        self.exists = directory.exists()
        self.position = cursor(directory, environment) if self.exists else 0
        self.files = [p for _, last, p in range_files(directory, environment)
                      if last <= self.position]  # fmt: skip


def _aligned(at: datetime | None, level: Level) -> bool:
    return at is None or (at - EPOCH) // _US % level.bucket_us == 0


def _whole_buckets(zone_name: str, pairs: list[tuple[int | None, int]], bucket: int) -> bool:
    """Whether every offset is whole buckets and every change happens on a bucket boundary;
    snaps the changes (found to the second by `offsets`) to their boundary in place."""
    if any(offset % bucket for _, offset in pairs):
        return False
    zone = ZoneInfo(zone_name)
    for index in range(1, len(pairs)):
        found, offset = pairs[index]
        assert found is not None
        minute = found - found % bucket
        at = EPOCH + minute * _US
        before = (at - _US).astimezone(zone).utcoffset()
        after = at.astimezone(zone).utcoffset()
        if before is None or after is None or after // _US != offset:
            return False
        if before // _US != pairs[index - 1][1]:
            return False
        pairs[index] = (minute, offset)
    return True


def run_rollup_query(
    connection: duckdb.DuckDBPyConnection, meter: Meter, query: MeterQuery, rollup: Rollup
) -> list[MeterRow] | None:
    """The meter query over `rollup` and the events of the view `ce` after its cursor, or
    None when the query needs the raw rows (bounds or zone offsets not whole buckets)."""
    from allotment.persistence.cloud_history import meter_rows  # noqa: PLC0415 (a cycle)

    level = rollup.level
    if rollup.level not in levels(query):
        return None
    names = ", ".join(partial_columns(meter, level))
    sql, params = partials_sql(meter, level, rollup.position)
    parts = [f"SELECT {names} FROM ({sql})"]  # noqa: S608
    if rollup.files:
        listed = ", ".join("'" + str(f.resolve()).replace("'", "''") + "'" for f in rollup.files)
        parts.insert(0, f"SELECT {names} FROM read_parquet([{listed}])")  # noqa: S608
    partials = f"WITH r AS ({' UNION ALL '.join(parts)})"
    pairs: list[tuple[int | None, int]] = [(None, 0)]
    if query.window_size is not None and query.time_zone != "UTC":
        low, high = query.start, query.end
        if low is None or high is None:
            span = partials + " SELECT min(b), max(b) FROM r"  # noqa: S608
            first, last = connection.execute(span, params).fetchone() or (None, None)
            earliest = None if first is None else EPOCH + first * _US
            latest = None if last is None else EPOCH + (last + level.bucket_us) * _US
            low, high = low or earliest or query.now, high or latest or query.now
        pairs = offsets(query.time_zone, low - timedelta(days=1), high + timedelta(days=1))
        if not _whole_buckets(query.time_zone, pairs, level.bucket_us):
            return None
    sql, more = rollup_sql(meter, query, pairs)
    return meter_rows(connection.execute(partials + ", " + sql, [*params, *more]).fetchall(), query)
