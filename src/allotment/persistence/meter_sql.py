"""The SQL of OpenMeter's reads (docs/openmeter.md "Queries and listing"), over a relation
`ce` of CloudEvents with the columns

    source, id, type, subject, time (TIMESTAMPTZ), ingested_at (TIMESTAMPTZ), data (JSON text),
    specversion, customer_id, validation_error, journal_position, fact_index

Every value the caller gives travels as a query parameter; only our own fragments (column
names, JSONPaths already checked against the `$.a.b` subset, interval units) are spliced in,
hence the S608 waivers.

Windows (OM-42, OM-43) are computed with integer arithmetic on epoch microseconds and the
zone's offsets over the range (`meter_windows.py`): ICU time zone conversions per event would
cost more than the rest of the query. Each event's `data` is parsed once: one
`json_extract_string` of every path the query reads.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from allotment.domain.meter_queries import EventQuery, Filter, MeterQuery
from allotment.domain.meters import Meter, MeterAggregation, parse_jsonpath
from allotment.persistence.meter_windows import key_sql, offset_sql

__all__ = (
    "counted_only",
    "distinct_sql",
    "events_sql",
    "filter_sql",
    "meter_sql",
    "parts_sql",
    "sql_path",
    "value_sql",
)

_COMPARE: Final = {
    "eq": "=", "ne": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=",
    "like": "LIKE", "nlike": "NOT LIKE", "ilike": "ILIKE", "nilike": "NOT ILIKE",
}  # fmt: skip
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)  # a placeholder `now`: unused by filters
_RESERVED: Final = {"subject": "subject", "customer_id": "customer_id"}


def sql_path(path: str) -> str:
    """A JSONPath of the checked subset as a SQL literal (its names are [A-Za-z0-9_-])."""
    if parse_jsonpath(path) is None:
        raise ValueError(f"unsupported JSONPath {path!r}")
    return "'" + path + "'"


def filter_sql(column: str, node: Filter, params: list[Any]) -> str:
    """`node` as a SQL condition on `column`, its values appended to `params`."""
    if node.op in ("and", "or"):
        parts = [filter_sql(column, child, params) for child in node.value]
        return "(" + f" {node.op.upper()} ".join(parts or ["TRUE"]) + ")"
    if node.op in ("in", "nin"):
        if not node.value:
            return "FALSE" if node.op == "in" else "TRUE"
        params.extend(node.value)
        marks = ", ".join("?" * len(node.value))
        return f"{column} {'IN' if node.op == 'in' else 'NOT IN'} ({marks})"
    params.append(node.value)
    return f"{column} {_COMPARE[node.op]} ?"


def _paths(meter: Meter, query: MeterQuery) -> list[str]:
    """The JSONPaths a query reads from `data`: the value's first, then the dimensions'. One
    `json_extract_string` of them all parses each event's data once."""
    paths = [] if counted_only(meter) else [meter.value_property or ""]
    for name in (*query.group_by, *sorted(query.group_filters)):
        if name not in _RESERVED and meter.group_by[name] not in paths:
            paths.append(meter.group_by[name])
    return paths


def counted_only(meter: Meter) -> bool:
    return meter.aggregation is MeterAggregation.COUNT or meter.value_property is None


def value_sql(meter: Meter) -> str | None:
    """The expression of an event's value (over `j`, the extracted texts); None for COUNT."""
    if counted_only(meter):
        return None
    if meter.aggregation is MeterAggregation.UNIQUE_COUNT:
        # OM-45: UNIQUE_COUNT counts distinct string values; other JSON types are ignored.
        path = sql_path(meter.value_property or "")
        return f"CASE WHEN json_type(data, {path}) = 'VARCHAR' THEN j[1] END"
    # OM-44: a JSON number or a numeric string (spaces around it allowed); anything else,
    # objects and booleans included, is no value; so is a non-finite one.
    return "TRY_CAST(j[1] AS DOUBLE)"


def _aggregate(aggregation: MeterAggregation, only: str) -> str:
    """The aggregate over the events with a value (`only`, a FILTER condition)."""
    f = f"FILTER (WHERE {only})"
    return {
        MeterAggregation.SUM: f"sum(v) {f}",
        MeterAggregation.COUNT: f"CAST(count(*) {f} AS DOUBLE)",
        MeterAggregation.UNIQUE_COUNT: f"CAST(count(DISTINCT v) {f} AS DOUBLE)",
        MeterAggregation.AVG: f"avg(v) {f}",
        MeterAggregation.MIN: f"min(v) {f}",
        MeterAggregation.MAX: f"max(v) {f}",
        # OM-46: the value of the event with the latest time; a tie goes to the one ingested
        # last (its journal position, then its place in the record).
        MeterAggregation.LATEST: f"arg_max(v, [epoch_us(time), journal_position, fact_index]) {f}",
    }[aggregation]


def _dimension(meter: Meter, name: str, paths: list[str] | None = None) -> str:
    """A dimension's value: a reserved column, else its text in `j` (when `paths` were
    extracted) or straight from `data`."""
    if name in _RESERVED:
        return _RESERVED[name]
    path = meter.group_by[name]
    if paths is None:
        return f"json_extract_string(data, {sql_path(path)})"
    return f"j[{paths.index(path) + 1}]"


def _where(
    meter: Meter, query: MeterQuery, params: list[Any], paths: list[str] | None = None
) -> list[str]:
    conditions = ["type = ?"]
    params.append(meter.event_type)
    for column, bound, op in (
        ("time", meter.event_from, ">="),
        ("time", query.start, ">="),
        ("time", query.end, "<"),
    ):
        if bound is not None:
            conditions.append(f"{column} {op} ?")
            params.append(bound)
    if query.subjects:
        conditions.append(filter_sql("subject", Filter("in", list(query.subjects)), params))
    if query.customer_ids:
        conditions.append(filter_sql("customer_id", Filter("in", list(query.customer_ids)), params))
    for name, node in sorted(query.group_filters.items()):
        conditions.append(filter_sql(_dimension(meter, name, paths), node, params))
    return conditions


# What a shard adds to its value so that the shards' rows merge exactly (SCL-60): AVG its
# sum and the count of events with a value; UNIQUE_COUNT the distinct values themselves;
# LATEST the (time, ingestion time) of the event whose value it is, in epoch microseconds.
_PART: Final = {
    MeterAggregation.AVG: ("sum(v) {f}", "count(*) {f}"),
    MeterAggregation.UNIQUE_COUNT: (
        "CAST(count(DISTINCT v) {f} AS DOUBLE)",
        "list(DISTINCT v) {f}",
    ),
    MeterAggregation.LATEST: (
        "arg_max(v, [epoch_us(time), journal_position, fact_index]) {f}",
        "arg_max([epoch_us(time), epoch_us(ingested_at)],"
        " [epoch_us(time), journal_position, fact_index]) {f}",
    ),
}


def parts_sql(
    meter: Meter, query: MeterQuery, zone_offsets: list[tuple[int | None, int]]
) -> tuple[str, list[Any]]:
    """As `meter_sql`, with one more column after the value: what merging this shard's row
    with another's needs (`_PART`; AVG, UNIQUE_COUNT and LATEST only)."""
    return meter_sql(meter, query, zone_offsets, parts=True)


def meter_sql(
    meter: Meter,
    query: MeterQuery,
    zone_offsets: list[tuple[int | None, int]],
    *,
    parts: bool = False,
) -> tuple[str, list[Any]]:
    """The meter query: rows (window key, window offset, <one column per group_by>, the
    earliest event time, value), ordered by window and groups; `meter_windows.bounds` turns
    a key into its window. Without a window size both are NULL. `zone_offsets` are the query
    zone's offsets over the queried range (`meter_windows.offsets`). With `parts`, see
    `parts_sql`."""
    paths = _paths(meter, query)
    value = value_sql(meter)
    if query.window_size is None:
        key, offset = "CAST(NULL AS BIGINT)", "CAST(NULL AS BIGINT)"
    else:
        key, offset = key_sql(query.window_size, offset_sql(zone_offsets))
    groups = [f"{_dimension(meter, name, paths)} AS g{i}" for i, name in enumerate(query.group_by)]
    params: list[Any] = []
    conditions = _where(meter, query, params, paths)
    extracted = ", ".join(sql_path(p) for p in paths)
    j = f"json_extract_string(data, [{extracted}])" if paths else "CAST(NULL AS VARCHAR[])"
    kept = [f"{key} AS wk", f"{offset} AS wo", *groups, f"{value or 'NULL'} AS v", "time",
            "ingested_at", "journal_position", "fact_index"]  # fmt: skip
    # Which events have a value. In FILTER clauses, not WHERE: DuckDB would push a WHERE on
    # `v` down to the scan and parse every event's data twice.
    counted = "TRUE"
    if value is not None:
        unique = meter.aggregation is MeterAggregation.UNIQUE_COUNT
        counted = "v IS NOT NULL" if unique else "isfinite(v)"
    aggregate = f"{_aggregate(meter.aggregation, counted)} AS value"
    if parts:
        own, extra = _PART[meter.aggregation]
        f = f"FILTER (WHERE {counted})"
        aggregate = f"{own.format(f=f)} AS value, {extra.format(f=f)} AS part"
    columns = ", ".join(["wk", "wo", *[f"g{i}" for i in range(len(query.group_by))]])
    sql = (
        f"WITH m AS (SELECT *, epoch_us(time) AS t, {j} AS j FROM ce), "  # noqa: S608
        f"w AS (SELECT {', '.join(kept)} FROM m WHERE {' AND '.join(conditions)}) "
        f"SELECT {columns}, min(time) FILTER (WHERE {counted}) AS first,"
        f" {aggregate} FROM w GROUP BY {columns}"
        f" HAVING count(*) FILTER (WHERE {counted}) > 0 ORDER BY {columns} NULLS FIRST"
    )
    return sql, params


def distinct_sql(
    meter: Meter, dimension: str, start: datetime | None, end: datetime | None
) -> tuple[str, list[Any]]:
    """The distinct non-null values of `dimension` over the meter's events in [start, end)."""
    params: list[Any] = []
    conditions = _where(meter, MeterQuery(now=_EPOCH, start=start, end=end), params)
    column = _dimension(meter, dimension)
    sql = (
        f"SELECT DISTINCT {column} AS value FROM ce WHERE {' AND '.join(conditions)}"  # noqa: S608
        f" AND {column} IS NOT NULL ORDER BY value"
    )
    return sql, params


def events_sql(query: EventQuery) -> tuple[str, list[Any]]:
    """The listing: matching events, newest `time` first, then the latest ingested."""
    params: list[Any] = []
    conditions = ["TRUE"]
    for column, node in (
        ("id", query.id), ("source", query.source), ("subject", query.subject),
        ("type", query.type), ("time", query.time), ("ingested_at", query.ingested_at),
    ):  # fmt: skip
        if node is not None:
            conditions.append(filter_sql(column, node, params))
    if query.customer_ids is not None:
        conditions.append(filter_sql("customer_id", Filter("in", list(query.customer_ids)), params))
    if query.after is not None:
        at, position, index = query.after
        conditions.append(
            "(time < ? OR (time = ? AND (journal_position < ?"
            " OR (journal_position = ? AND fact_index < ?))))"
        )
        params.extend([at, at, position, position, index])
    params.append(query.limit)
    sql = (
        f"SELECT * FROM ce WHERE {' AND '.join(conditions)}"  # noqa: S608
        " ORDER BY time DESC, journal_position DESC, fact_index DESC LIMIT ?"
    )
    return sql, params
