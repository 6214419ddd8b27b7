"""The SQL of OpenMeter's reads (docs/openmeter.md "Queries and listing"), over a relation
`ce` of CloudEvents with the columns

    source, id, type, subject, time (TIMESTAMPTZ), ingested_at (TIMESTAMPTZ), data (JSON text),
    specversion, customer_id, validation_error, journal_position, fact_index

Every value the caller gives travels as a query parameter; only our own fragments (column
names, JSONPaths already checked against the `$.a.b` subset, interval units) are spliced in,
hence the S608 waivers.

Windows (OM-42, OM-43): DAY and MONTH windows are calendar days and months in the query's
time zone, so a DAY across a DST change lasts 23 or 25 hours: the window is the local
midnight-to-midnight converted back to instants. MINUTE and HOUR windows are cut at the
event's own local offset (the instant minus how far its local time is past the local minute
or hour), so the repeated hour of a DST fall-back is two windows, not one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from allotment.domain.meter_queries import EventQuery, Filter, MeterQuery, WindowSize
from allotment.domain.meters import Meter, MeterAggregation, parse_jsonpath

__all__ = ("distinct_sql", "events_sql", "filter_sql", "meter_sql")

_UNITS: Final = {
    WindowSize.MINUTE: "minute",
    WindowSize.HOUR: "hour",
    WindowSize.DAY: "day",
    WindowSize.MONTH: "month",
}
_COMPARE: Final = {
    "eq": "=", "ne": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=",
    "like": "LIKE", "nlike": "NOT LIKE", "ilike": "ILIKE", "nilike": "NOT ILIKE",
}  # fmt: skip
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)  # a placeholder `now`: unused by filters
_RESERVED: Final = {"subject": "subject", "customer_id": "customer_id"}


def _path(path: str) -> str:
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


def _value_sql(meter: Meter) -> str | None:
    """The expression of an event's value for the meter's aggregation; None for COUNT."""
    if meter.aggregation is MeterAggregation.COUNT or meter.value_property is None:
        return None
    path = _path(meter.value_property)
    if meter.aggregation is MeterAggregation.UNIQUE_COUNT:
        # OM-45: UNIQUE_COUNT counts distinct string values; other JSON types are ignored.
        text = f"json_extract_string(data, {path})"
        return f"CASE WHEN json_type(data, {path}) = 'VARCHAR' THEN {text} END"
    # OM-44: a JSON number or a numeric string; anything else (or non-finite) is no value.
    number = f"TRY_CAST(trim(json_extract_string(data, {path})) AS DOUBLE)"
    kind = f"json_type(data, {path})"
    numeric = f"{kind} IN ('UBIGINT', 'BIGINT', 'DOUBLE', 'VARCHAR') AND isfinite({number})"
    return f"CASE WHEN {numeric} THEN {number} END"


def _aggregate(aggregation: MeterAggregation) -> str:
    return {
        MeterAggregation.SUM: "sum(v)",
        MeterAggregation.COUNT: "CAST(count(*) AS DOUBLE)",
        MeterAggregation.UNIQUE_COUNT: "CAST(count(DISTINCT v) AS DOUBLE)",
        MeterAggregation.AVG: "avg(v)",
        MeterAggregation.MIN: "min(v)",
        MeterAggregation.MAX: "max(v)",
        # OM-46: the value of the event with the latest time; a tie goes to the one ingested
        # last (its journal position, then its place in the record).
        MeterAggregation.LATEST: "arg_max(v, [epoch_us(time), journal_position, fact_index])",
    }[aggregation]


def _window_sql(size: WindowSize, params: list[Any], zone: str) -> tuple[str, str]:
    unit = _UNITS[size]
    params.extend([zone] * 4)
    local = "timezone(?, time)"
    if size in (WindowSize.MINUTE, WindowSize.HOUR):
        start = f"time - ({local} - date_trunc('{unit}', {local}))"
        return start, f"{start} + INTERVAL 1 {unit}"
    start = f"timezone(?, date_trunc('{unit}', {local}))"
    return start, f"timezone(?, date_trunc('{unit}', {local}) + INTERVAL 1 {unit})"


def _dimension(meter: Meter, name: str) -> str:
    if name in _RESERVED:
        return _RESERVED[name]
    return f"json_extract_string(data, {_path(meter.group_by[name])})"


def _where(meter: Meter, query: MeterQuery, params: list[Any]) -> list[str]:
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
        conditions.append(filter_sql(_dimension(meter, name), node, params))
    return conditions


def meter_sql(meter: Meter, query: MeterQuery) -> tuple[str, list[Any]]:
    """The meter query: rows (window_start, window_end, <one column per group_by>, the
    earliest event time, value),
    ordered by window and groups. Without a window size both window columns are NULL: the
    caller fills in the query's range."""
    value = _value_sql(meter)
    select_params: list[Any] = []
    if query.window_size is None:
        start, end = "CAST(NULL AS TIMESTAMPTZ)", "CAST(NULL AS TIMESTAMPTZ)"
    else:
        start, end = _window_sql(query.window_size, select_params, query.time_zone)
    groups = [f"{_dimension(meter, name)} AS g{i}" for i, name in enumerate(query.group_by)]
    where_params: list[Any] = []
    conditions = _where(meter, query, where_params)
    if value is not None:
        conditions.append("v IS NOT NULL")
    columns = ", ".join(["ws", "we", *[f"g{i}" for i in range(len(query.group_by))]])
    kept = [
        f"{start} AS ws",
        f"{end} AS we",
        *groups,
        "v",
        "time",
        "journal_position",
        "fact_index",
    ]
    sql = (
        f"WITH m AS (SELECT *, {value or 'NULL'} AS v FROM ce), "  # noqa: S608
        f"w AS (SELECT {', '.join(kept)}"
        f" FROM m WHERE {' AND '.join(conditions)}) "
        f"SELECT {columns}, min(time) AS first, {_aggregate(meter.aggregation)} AS value FROM w"
        f" GROUP BY {columns} ORDER BY {columns} NULLS FIRST"
    )
    return sql, [*select_params, *where_params]


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
