"""Listing ingested CloudEvents (OM-50..OM-53): `GET /api/v1/events` (a bare array, partial
matches on `id` and `subject`, `from` defaulting to 72 hours ago) and `GET /api/v2/events`
(cursor pagination and a JSON `filter`), newest event time first, each with the
`validationError` it was journalled with."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from litestar import Response, get

from allotment.http.auth import api_key_of
from allotment.http.context import AnyRequest, system_of
from allotment.http.openmeter.meter_queries import history_of
from allotment.http.openmeter.problems import PROBLEMS, Problem, bad_request
from allotment.http.openmeter.query_params import (
    filter_object,
    optional_time,
    string_filter,
    time_filter,
)
from allotment.http.openmeter.wire import integer, json
from allotment.runtime.meter_reads import EventQuery, Filter, HistoryUnavailable, StoredCloudEvent

__all__ = ("list_events", "list_events_v2")

_V2_FIELDS: Final = {"id", "source", "subject", "type", "customerId", "time", "ingestedAt"}


def _like(text: str) -> Filter:
    """A partial match (v1 `id`, `subject`): the text anywhere, `%` and `_` taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return Filter("like", f"%{escaped}%")


def ingested_event(event: StoredCloudEvent) -> dict[str, Any]:
    """The document's `IngestedEvent`."""
    body: dict[str, Any] = {
        "id": event.id, "source": event.source, "specversion": event.specversion,
        "type": event.type, "subject": event.subject, "time": event.time,
    }  # fmt: skip
    if event.data is not None:
        body["data"] = event.data
    item: dict[str, Any] = {"event": body, "ingestedAt": event.ingested_at,
                            "storedAt": event.ingested_at}  # fmt: skip
    if event.customer_id is not None:
        item["customerId"] = event.customer_id
    if event.validation_error is not None:
        item["validationError"] = event.validation_error
    return item


async def _list(request: AnyRequest, query: EventQuery) -> list[StoredCloudEvent]:
    try:
        return await history_of(request).list_events(api_key_of(request.scope).environment, query)
    except HistoryUnavailable as error:
        raise Problem(503, str(error)) from None


def _range(field: str, low: datetime | None, high: datetime | None) -> Filter | None:
    parts = []
    if low is not None:
        parts.append(Filter("gte", low))
    if high is not None:
        parts.append(Filter("lte", high))  # both ends inclusive, as the document says
    if low is not None and high is not None and high < low:
        raise bad_request(field, "the range ends before it starts")
    return Filter("and", parts) if parts else None


@get("/events", operation_id="listEvents", responses=PROBLEMS, summary="List ingested events")
async def list_events(request: AnyRequest) -> Response[Any]:
    """OM-50, OM-51: the v1 listing, at most `limit` (1..100, default 100) events."""
    params = request.query_params
    query = dict(params)
    now = system_of(request).clock.now()
    start = optional_time("from", params.get("from")) or now - timedelta(hours=72)
    ingested = _range(
        "ingestedAtTo",
        optional_time("ingestedAtFrom", params.get("ingestedAtFrom")),
        optional_time("ingestedAtTo", params.get("ingestedAtTo")),
    )
    customers = params.getall("customerId", [])
    events = await _list(request, EventQuery(
        limit=integer(query, "limit", 100, 1, 100),
        id=_like(params["id"]) if "id" in params else None,
        subject=_like(params["subject"]) if "subject" in params else None,
        customer_ids=tuple(customers) if customers else None,
        time=_range("to", start, optional_time("to", params.get("to"))),
        ingested_at=ingested,
    ))  # fmt: skip
    return json([ingested_event(e) for e in events])


def _cursor(text: str | None) -> tuple[datetime, int, int] | None:
    """The v2 cursor: the time (microseconds), journal position and fact index of the last
    event listed, as URL-safe base64 text. Opaque to clients."""
    if text is None:
        return None
    try:
        micros, position, index = base64.urlsafe_b64decode(text.encode()).decode().split(":")
        at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(micros))
        return at, int(position), int(index)
    except (ValueError, UnicodeDecodeError):
        raise bad_request("cursor", "is not a cursor this server gave") from None


def _next_cursor(event: StoredCloudEvent) -> str:
    micros = (event.time - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    raw = f"{micros}:{event.journal_position}:{event.fact_index}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _v2_query(
    raw: dict[str, Any], limit: int, after: tuple[datetime, int, int] | None
) -> EventQuery:
    unknown = set(raw) - _V2_FIELDS
    if unknown:
        raise bad_request(f"filter.{sorted(unknown)[0]}", "is not a filter field of events")
    strings = {k: string_filter(f"filter.{k}", raw[k]) for k in ("id", "source", "subject", "type")
               if k in raw}  # fmt: skip
    customers = raw.get("customerId")
    ids: tuple[str, ...] | None = None
    if customers is not None:
        if (
            not isinstance(customers, dict)
            or set(customers) != {"$in"}
            or not isinstance(customers["$in"], list)
            or not all(isinstance(c, str) for c in customers["$in"])
        ):
            raise bad_request("filter.customerId", 'must be {"$in": [customer ids]}')
        ids = tuple(customers["$in"])
    return EventQuery(
        limit=limit, customer_ids=ids, after=after,
        time=time_filter("filter.time", raw["time"]) if "time" in raw else None,
        ingested_at=(time_filter("filter.ingestedAt", raw["ingestedAt"])
                     if "ingestedAt" in raw else None),
        **strings,
    )  # fmt: skip


@get("/events", operation_id="listEventsV2", responses=PROBLEMS, summary="List ingested events")
async def list_events_v2(request: AnyRequest) -> Response[Any]:
    """OM-52, OM-53: a page of events and the cursor of its last one."""
    params = request.query_params
    limit = integer(dict(params), "limit", 100, 1, 100)
    raw = filter_object("filter", params.get("filter"))
    events = await _list(request, _v2_query(raw, limit, _cursor(params.get("cursor"))))
    body: dict[str, Any] = {"items": [ingested_event(e) for e in events]}
    if len(events) == limit:
        body["nextCursor"] = _next_cursor(events[-1])
    return json(body)
