"""Meter queries (OM-40..OM-49): `GET` and `POST /api/v1/meters/{meterIdOrSlug}/query` (JSON,
or CSV for `Accept: text/csv`), `GET .../subjects` and `GET .../group-by/{groupByKey}/values`,
answered from the CloudEvent history exactly up to the query's instant
(`runtime/meter_reads.py`, `persistence/cloud_history.py`)."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from typing import Annotated, Any, Final
from zoneinfo import ZoneInfo

import msgspec
from litestar import Response, get, post
from litestar.params import FromPath

from allotment.domain.meters import Meter
from allotment.http.auth import api_key_of
from allotment.http.context import AnyRequest, shard_of, system_of
from allotment.http.openmeter.problems import PROBLEMS, Problem, bad_request, not_found
from allotment.http.openmeter.query_params import (
    filter_object,
    group_by_filter,
    optional_time,
    string_filter,
    time_zone,
    window_size,
)
from allotment.http.openmeter.wire import decode, json
from allotment.runtime.meter_reads import (
    CloudEventHistory,
    Filter,
    HistoryUnavailable,
    MeterQuery,
    MeterRow,
    WindowSize,
)

__all__ = ("list_group_by_values", "list_subjects", "query_meter", "query_meter_post")

_RESERVED: Final = ("subject", "customer_id")
_Hundred = Annotated[list[str], msgspec.Meta(max_length=100)]


class _QueryRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The document's `MeterQueryRequest`."""

    clientId: str | None = None
    to: str | None = None
    windowSize: str | None = None
    windowTimeZone: str | None = None
    subject: _Hundred | None = None
    filterCustomerId: _Hundred | None = None
    filterGroupBy: dict[str, list[str]] | None = None
    advancedMeterGroupByFilters: dict[str, Any] | None = None
    groupBy: _Hundred | None = None
    from_: str | None = msgspec.field(default=None, name="from")


def history_of(request: AnyRequest) -> CloudEventHistory:
    history: CloudEventHistory | None = system_of(request).history
    if history is None:
        raise Problem(503, "allotment runs without a data directory: it keeps no history")
    return history


def live_meter(request: AnyRequest, id_or_slug: str) -> Meter:
    meter = shard_of(request).catalog.meter(id_or_slug)
    if meter is None or meter.deleted:
        raise not_found("meter", id_or_slug)
    return meter


def _aligned(field: str, at: datetime | None, size: WindowSize | None, zone: str) -> None:
    """OM-41: `from` and `to` fall on window boundaries of the query's zone."""
    if at is None or size is None:
        return
    local = at.astimezone(ZoneInfo(zone))
    off = local.second or local.microsecond
    if size is not WindowSize.MINUTE:
        off = off or local.minute
    if size in (WindowSize.DAY, WindowSize.MONTH):
        off = off or local.hour
    if size is WindowSize.MONTH:
        off = off or local.day != 1
    if off:
        raise bad_request(field, f"must be aligned to the {size.value} window in {zone}")


def _build(meter: Meter, now: datetime, fields: dict[str, Any]) -> MeterQuery:
    size = window_size("windowSize", fields["windowSize"])
    zone = time_zone("windowTimeZone", fields["windowTimeZone"])
    start = optional_time("from", fields["from"])
    end = optional_time("to", fields["to"])
    _aligned("from", start, size, zone)
    _aligned("to", end, size, zone)
    if start is not None and end is not None and end <= start:
        raise bad_request("to", "must be after from")
    group_by = tuple(fields["groupBy"] or ())
    filters: dict[str, Filter] = {}
    for name, values in (fields["filterGroupBy"] or {}).items():
        filters[name] = Filter("in", list(values))
    for name, raw in (fields["advanced"] or {}).items():
        node = string_filter(f"advancedMeterGroupByFilters.{name}", raw)
        filters[name] = Filter("and", [filters[name], node]) if name in filters else node
    for field, names in (("groupBy", group_by), ("filterGroupBy", tuple(filters))):
        for name in names:
            if name not in meter.group_by and name not in _RESERVED:
                raise bad_request(field, f"{name!r} is not a groupBy dimension of the meter")
    return MeterQuery(
        now=now, start=start, end=end, window_size=size, time_zone=zone,
        subjects=tuple(fields["subject"] or ()), customer_ids=tuple(fields["customers"] or ()),
        group_by=group_by, group_filters=filters,
    )  # fmt: skip


def _result(query: MeterQuery, rows: list[MeterRow]) -> dict[str, Any]:
    data = []
    for row in rows:
        item: dict[str, Any] = {
            "value": row.value, "windowStart": row.window_start, "windowEnd": row.window_end,
            "subject": row.subject, "groupBy": row.groups,
        }  # fmt: skip
        if row.customer_id is not None:
            item["customerId"] = row.customer_id
        data.append(item)
    body: dict[str, Any] = {"data": data}
    for key, value in (("from", query.start), ("to", query.end), ("windowSize", query.window_size)):
        if value is not None:
            body[key] = value
    return body


def _csv(query: MeterQuery, rows: list[MeterRow]) -> Response[Any]:
    """OM-48: one header line, then one line per row; dimensions in `groupBy` order."""
    dimensions = [name for name in query.group_by if name not in _RESERVED]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["window_start", "window_end", "subject", "customer_id", *dimensions, "value"])
    for row in rows:
        writer.writerow([
            row.window_start.isoformat().replace("+00:00", "Z"),
            row.window_end.isoformat().replace("+00:00", "Z"),
            row.subject or "", row.customer_id or "",
            *[row.groups.get(name) or "" for name in dimensions], repr(row.value),
        ])  # fmt: skip
    return Response(content=buffer.getvalue(), media_type="text/csv")


async def _answer(request: AnyRequest, meter: Meter, fields: dict[str, Any]) -> Response[Any]:
    query = _build(meter, system_of(request).clock.now(), fields)
    try:
        rows = await history_of(request).query_meter(
            api_key_of(request.scope).environment, meter, query
        )
    except HistoryUnavailable as error:
        raise Problem(503, str(error)) from None
    if "text/csv" in request.headers.get("accept", ""):
        return _csv(query, rows)
    return json(_result(query, rows))


@get("/meters/{meter_id_or_slug:str}/query", operation_id="queryMeter", responses=PROBLEMS,
     summary="Query meter")  # fmt: skip
async def query_meter(request: AnyRequest, meter_id_or_slug: FromPath[str]) -> Response[Any]:
    """The meter's aggregates by window and group; CSV for `Accept: text/csv`."""
    meter = live_meter(request, meter_id_or_slug)
    params = request.query_params
    pairs = list(params.multi_items())
    fields: dict[str, Any] = {
        "from": params.get("from"), "to": params.get("to"),
        "windowSize": params.get("windowSize"), "windowTimeZone": params.get("windowTimeZone"),
        "subject": params.getall("subject", []), "customers": params.getall("filterCustomerId", []),
        "groupBy": params.getall("groupBy", []), "filterGroupBy": group_by_filter(pairs),
        "advanced": filter_object("advancedMeterGroupByFilters",
                                  params.get("advancedMeterGroupByFilters")),
    }  # fmt: skip
    for name in ("subject", "customers", "groupBy"):
        if len(fields[name]) > 100:
            raise bad_request(name, "at most 100 values")
    return await _answer(request, meter, fields)


@post("/meters/{meter_id_or_slug:str}/query", operation_id="queryMeterPost", status_code=200,
      responses=PROBLEMS, summary="Query meter")  # fmt: skip
async def query_meter_post(request: AnyRequest, meter_id_or_slug: FromPath[str]) -> Response[Any]:
    """`queryMeter` with a JSON `MeterQueryRequest` body; `filterGroupBy` takes lists."""
    meter = live_meter(request, meter_id_or_slug)
    raw = await request.body()
    # The official client's CSV variant posts no body at all: the query of no parameters.
    body = decode(raw, _QueryRequest) if raw.strip() else _QueryRequest()
    fields = {
        "from": body.from_, "to": body.to, "windowSize": body.windowSize,
        "windowTimeZone": body.windowTimeZone, "subject": body.subject,
        "customers": body.filterCustomerId, "groupBy": body.groupBy,
        "filterGroupBy": body.filterGroupBy, "advanced": body.advancedMeterGroupByFilters,
    }  # fmt: skip
    return await _answer(request, meter, fields)


async def _distinct(
    request: AnyRequest, meter: Meter, dimension: str, default: datetime | None
) -> Response[Any]:
    params = request.query_params
    start = optional_time("from", params.get("from"))
    end = optional_time("to", params.get("to"))
    history = history_of(request)
    try:
        values = await history.distinct_values(
            api_key_of(request.scope).environment, meter, dimension, start or default, end
        )
    except HistoryUnavailable as error:
        raise Problem(503, str(error)) from None
    return json(values)


@get("/meters/{meter_id_or_slug:str}/subjects", operation_id="listMeterSubjects",
     responses=PROBLEMS, summary="List meter subjects")  # fmt: skip
async def list_subjects(request: AnyRequest, meter_id_or_slug: FromPath[str]) -> Response[Any]:
    """OM-49: the distinct subjects of the meter's events; `from` defaults to the beginning."""
    return await _distinct(request, live_meter(request, meter_id_or_slug), "subject", None)


@get("/meters/{meter_id_or_slug:str}/group-by/{group_by_key:str}/values",
     operation_id="listMeterGroupByValues", responses=PROBLEMS,
     summary="List meter group by values")  # fmt: skip
async def list_group_by_values(
    request: AnyRequest, meter_id_or_slug: FromPath[str], group_by_key: FromPath[str]
) -> Response[Any]:
    """OM-49: the distinct values of one groupBy dimension; `from` defaults to 24 hours ago."""
    meter = live_meter(request, meter_id_or_slug)
    if group_by_key not in meter.group_by:
        raise not_found("groupBy key", group_by_key)
    default = system_of(request).clock.now() - timedelta(hours=24)
    return await _distinct(request, meter, group_by_key, default)
