"""The parameters of OpenMeter's reads, parsed from the wire (OM-41..OM-52): times, window
sizes and zones, and the document's filter objects (`FilterString`, `FilterTime`,
`FilterIDExact`). Every refusal is a 400 naming the parameter (`filter.subject.$eq`)."""

from __future__ import annotations

import ast
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from allotment.http.openmeter.problems import bad_request
from allotment.http.openmeter.wire import rfc3339
from allotment.runtime.meter_reads import Filter, WindowSize

__all__ = (
    "filter_object",
    "group_by_filter",
    "optional_time",
    "string_filter",
    "time_filter",
    "time_zone",
    "window_size",
)

_STRING_OPS: Final = {"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$like", "$nlike", "$ilike",
                      "$nilike"}  # fmt: skip
_TIME_OPS: Final = {"$gt", "$gte", "$lt", "$lte"}
_LISTS: Final = {"$in", "$nin"}
_JOINS: Final = {"$and", "$or"}


def optional_time(field: str, value: str | None) -> datetime | None:
    return None if value is None else rfc3339(field, value)


def window_size(field: str, value: str | None) -> WindowSize | None:
    if value is None:
        return None
    try:
        return WindowSize(value)
    except ValueError:
        raise bad_request(field, "must be one of MINUTE, HOUR, DAY, MONTH") from None


def time_zone(field: str, value: str | None) -> str:
    """An IANA zone name (OM-43), UTC when absent."""
    if value is None:
        return "UTC"
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise bad_request(field, f"{value!r} is not an IANA time zone") from None
    return value


def _node(field: str, raw: Any, leaf: set[str], lists: bool, parse: Any) -> Filter:
    if not isinstance(raw, dict) or not raw:
        raise bad_request(field, 'must be a filter object such as {"$eq": ...}')
    parts = []
    for op, value in raw.items():
        where = f"{field}.{op}"
        if op in leaf:
            parts.append(Filter(op[1:], parse(where, value)))
        elif lists and op in _LISTS:
            if not isinstance(value, list):
                raise bad_request(where, "must be a list")
            parts.append(Filter(op[1:], [parse(f"{where}[{i}]", v) for i, v in enumerate(value)]))
        elif op in _JOINS:
            if not isinstance(value, list):
                raise bad_request(where, "must be a list of filters")
            children = [_node(f"{where}[{i}]", v, leaf, lists, parse) for i, v in enumerate(value)]
            parts.append(Filter(op[1:], children))
        else:
            raise bad_request(where, "is not an operator of this filter")
    return parts[0] if len(parts) == 1 else Filter("and", parts)


def _text(field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise bad_request(field, "must be a string")
    return value


def _instant(field: str, value: Any) -> datetime:
    return rfc3339(field, _text(field, value))


def string_filter(field: str, raw: Any) -> Filter:
    """A `FilterString`: $eq $ne $gt $gte $lt $lte $like $nlike $ilike $nilike, $in $nin,
    $and $or."""
    return _node(field, raw, _STRING_OPS, True, _text)


def time_filter(field: str, raw: Any) -> Filter:
    """A `FilterTime`: $gt $gte $lt $lte, $and $or."""
    return _node(field, raw, _TIME_OPS, False, _instant)


def filter_object(field: str, text: str | None) -> dict[str, Any]:
    """A JSON object given in a query parameter (`filter`, `advancedMeterGroupByFilters`)."""
    if text is None:
        return {}
    try:
        value = msgspec.json.decode(text)
    except msgspec.DecodeError:
        raise bad_request(field, "must be a JSON object") from None
    if not isinstance(value, dict):
        raise bad_request(field, "must be a JSON object")
    return value


def group_by_filter(query: list[tuple[str, str]]) -> dict[str, list[str]]:
    """`filterGroupBy` of a GET query: the document's deepObject (`filterGroupBy[model]=gpt`),
    or one object in one parameter: JSON, or the Python literal the official client sends
    (it formats the map with `str()`: `{'model': 'gpt'}`), read with `ast.literal_eval`,
    which evaluates literals only."""
    result: dict[str, list[str]] = {}
    for name, value in query:
        if name.startswith("filterGroupBy[") and name.endswith("]"):
            result.setdefault(name[len("filterGroupBy[") : -1], []).append(value)
        elif name == "filterGroupBy":
            try:
                parsed = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                parsed = None
            if not isinstance(parsed, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in parsed.items()
            ):
                raise bad_request("filterGroupBy", "must map dimensions to values")
            for key, item in parsed.items():
                result.setdefault(key, []).append(item)
    return result
