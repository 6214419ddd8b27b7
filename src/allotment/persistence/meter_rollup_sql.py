"""The SQL of the meter rollups (OM-54..OM-57, docs/openmeter.md "Queries and listing").

A level of a meter's rollup holds, per bucket (UTC epoch microseconds of its start), value of
every one of the meter's dimensions and, at the minute level, subject and customer, the
partial aggregates of the events the meter counts: how many have a value (`n`), the earliest
time among them (`first`), and what the meter's aggregation needs to be merged exactly:

    COUNT         n
    UNIQUE_COUNT  n, u (the distinct string values: an exact set, never a sketch)
    SUM AVG MIN MAX LATEST
                  n, s (sum), lo (min), hi (max), lv (the latest value) and lk (its key:
                  [epoch microseconds, journal position, place in the record], OM-46)

Events without a value are left out when the rollup is built (they count in no aggregate, and
a group with none has no row, OM-44), as are events before the meter's `eventFrom`.

A level answers every window size at least as long as its bucket, in every time zone whose
offsets over the range are whole buckets and change on bucket boundaries: a bucket then lies
inside one local window. 15 minutes divide every zone offset in use (Asia/Kolkata's +5:30,
Asia/Kathmandu's +5:45). Ranges that do not start and end on a bucket boundary, and zones with
offsets in seconds (local mean time before about 1900), are answered from the raw history
instead (`meter_sql.py`).
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

import msgspec

from allotment.domain.meter_queries import Filter, MeterQuery
from allotment.domain.meters import Meter, MeterAggregation
from allotment.persistence.meter_sql import counted_only, filter_sql, sql_path, value_sql
from allotment.persistence.meter_windows import key_sql, offset_sql

__all__ = ("LEVELS", "Level", "dimensions", "fingerprint", "partial_columns", "partials_sql",
           "rollup_sql")  # fmt: skip


class Level(msgspec.Struct, frozen=True):
    """One level of a rollup: its bucket and whether its rows are per subject and customer."""

    name: str
    bucket_us: int
    per_subject: bool


# Queries that neither group nor filter by subject or customer read the quarter-hour level,
# far smaller when there are many subjects (15 minutes divide every
# zone offset in use). The others, MINUTE windows too, read the minute level.
LEVELS: Final = (Level("quarter", 900_000_000, per_subject=False),
                 Level("minute", 60_000_000, per_subject=True))  # fmt: skip
_RESERVED: Final = ("subject", "customer_id")
_NUMERIC: Final = ("s", "lo", "hi", "lv", "lk")


def fingerprint(meter: Meter) -> str:
    """What the rollup's rows depend on: a changed definition is a new rollup (rebuilt)."""
    definition = [meter.event_type, meter.aggregation.value, meter.value_property,
                  sorted(meter.group_by.items()),
                  None if meter.event_from is None else meter.event_from.isoformat()]  # fmt: skip
    return hashlib.sha256(msgspec.json.encode(definition)).hexdigest()[:16]


def dimensions(meter: Meter) -> list[str]:
    """The meter's dimensions in the order of the rollup's columns d0, d1, ..."""
    return sorted(meter.group_by)


def _kind(meter: Meter) -> str:
    if counted_only(meter):
        return "count"
    return "unique" if meter.aggregation is MeterAggregation.UNIQUE_COUNT else "numeric"


def _keys(meter: Meter, level: Level) -> list[str]:
    reserved = list(_RESERVED) if level.per_subject else []
    return ["b", *reserved, *[f"d{i}" for i in range(len(meter.group_by))]]


def partial_columns(meter: Meter, level: Level) -> list[str]:
    """The columns of a level of the rollup, in order."""
    keys = _keys(meter, level)
    extra = {"count": [], "unique": ["u"], "numeric": list(_NUMERIC)}[_kind(meter)]
    return [*keys, "n", "first", *extra]


def partials_sql(meter: Meter, level: Level, since: int) -> tuple[str, list[Any]]:
    """The rows of a level of the rollup of the events of `ce` (persistence/meter_sql.py)
    after journal position `since`."""
    kind = _kind(meter)
    paths = [] if kind == "count" else [meter.value_property or ""]
    for name in dimensions(meter):
        if meter.group_by[name] not in paths:
            paths.append(meter.group_by[name])
    extracted = ", ".join(sql_path(p) for p in paths)
    j = f"json_extract_string(data, [{extracted}])" if paths else "CAST(NULL AS VARCHAR[])"
    dims = [f"j[{paths.index(meter.group_by[n]) + 1}] AS d{i}"
            for i, n in enumerate(dimensions(meter))]  # fmt: skip
    params: list[Any] = [meter.event_type, since]
    conditions = ["type = ?", "journal_position > ?"]
    if meter.event_from is not None:
        conditions.append("time >= ?")
        params.append(meter.event_from)
    keys = ", ".join(_keys(meter, level))
    aggregates = ["count(*) AS n", "min(time) AS first"]
    counted = "TRUE"
    if kind == "unique":
        aggregates.append("list(DISTINCT v) AS u")
        counted = "v IS NOT NULL"
    elif kind == "numeric":
        aggregates += ["sum(v) AS s", "min(v) AS lo", "max(v) AS hi",
                       "arg_max(v, [t, journal_position, fact_index]) AS lv",
                       "max([t, journal_position, fact_index]) AS lk"]  # fmt: skip
        counted = "isfinite(v)"
    n = level.bucket_us
    bucket = f"t - (((t % {n}) + {n}) % {n})"  # floor, also before 1970
    sql = (
        f"WITH m AS (SELECT *, epoch_us(time) AS t, {j} AS j FROM ce"  # noqa: S608
        f" WHERE {' AND '.join(conditions)}),"
        f" w AS (SELECT {bucket} AS b, subject, customer_id, {', '.join([*dims, ''])}"
        f" {value_sql(meter) or 'NULL'} AS v, t, time, journal_position, fact_index FROM m)"
        f" SELECT {keys}, {', '.join(aggregates)} FROM w WHERE {counted} GROUP BY {keys}"
    )
    return sql, params


def _merged(aggregation: MeterAggregation, kind: str) -> str:
    """The aggregate over the partial rows of a window and group."""
    if kind == "count":
        return "CAST(sum(n) AS DOUBLE)"
    if kind == "unique":
        return "CAST(len(list_distinct(flatten(list(u)))) AS DOUBLE)"
    return {
        MeterAggregation.SUM: "sum(s)",
        MeterAggregation.AVG: "sum(s) / CAST(sum(n) AS DOUBLE)",
        MeterAggregation.MIN: "min(lo)",
        MeterAggregation.MAX: "max(hi)",
        MeterAggregation.LATEST: "arg_max(lv, lk)",
    }[aggregation]


def rollup_sql(
    meter: Meter, query: MeterQuery, zone_offsets: list[tuple[int | None, int]]
) -> tuple[str, list[Any]]:
    """The meter query over `r`, a relation of partial rows defined by a `WITH` the caller
    puts before this SQL (which goes on with `, p AS ...`), with the
    columns and order of `meter_sql.meter_sql`. The caller has checked that `query`'s bounds
    are whole minutes and `zone_offsets` whole minutes changing on whole minutes."""
    names = dimensions(meter)

    def column(name: str) -> str:
        return name if name in _RESERVED else f"d{names.index(name)}"

    params: list[Any] = []
    conditions = ["TRUE"]
    for bound, op in ((query.start, ">="), (query.end, "<")):
        if bound is not None:
            conditions.append(f"b {op} epoch_us(CAST(? AS TIMESTAMPTZ))")
            params.append(bound)
    if query.subjects:
        conditions.append(filter_sql("subject", Filter("in", list(query.subjects)), params))
    if query.customer_ids:
        conditions.append(filter_sql("customer_id", Filter("in", list(query.customer_ids)), params))
    for name, node in sorted(query.group_filters.items()):
        conditions.append(filter_sql(column(name), node, params))
    if query.window_size is None:
        key, offset = "CAST(NULL AS BIGINT)", "CAST(NULL AS BIGINT)"
    else:
        key, offset = key_sql(query.window_size, offset_sql(zone_offsets))
    groups = [f"{column(name)} AS g{i}" for i, name in enumerate(query.group_by)]
    columns = ", ".join(["wk", "wo", *[f"g{i}" for i in range(len(groups))]])
    value = _merged(meter.aggregation, _kind(meter))
    sql = (
        f"p AS (SELECT *, b AS t FROM r WHERE {' AND '.join(conditions)}),"  # noqa: S608
        f" w AS (SELECT {key} AS wk, {offset} AS wo, {', '.join([*groups, ''])} * FROM p)"
        f" SELECT {columns}, min(first) AS first, {value} AS value FROM w GROUP BY {columns}"
        f" HAVING sum(n) > 0 ORDER BY {columns} NULLS FIRST"
    )
    return sql, params
