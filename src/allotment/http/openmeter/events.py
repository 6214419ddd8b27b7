"""POST /api/v1/events (`ingestEvents`): CloudEvents 1.0 in the document's three content types
(OM-1..OM-7, docs/openmeter.md "Ingesting events").

- `application/cloudevents+json`: one event; `application/cloudevents-batch+json`: an array
  of 1..1,000 (OM-5); `application/json`: either, told apart by the body's shape.
- The whole request is checked before anything is written: one bad event refuses the batch
  with a 400 naming it and its field (`[3].time`), and nothing of it is kept (OM-2).
- 204 once every new event is durable; a (source, id) seen before is dropped (OM-6).
"""

from __future__ import annotations

from typing import Annotated, Any, Final

import msgspec
from litestar import post

from allotment.domain.meters import CloudEvent
from allotment.http.context import AnyRequest, shard_of
from allotment.http.openmeter.problems import PROBLEMS, Problem, bad_request
from allotment.http.openmeter.wire import decode, rfc3339

__all__ = ("BATCH_MAX", "ingest_events", "parse_events")

BATCH_MAX: Final = 1000
_NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
_SINGLE: Final = "application/cloudevents+json"
_BATCH: Final = "application/cloudevents-batch+json"
_JSON: Final = "application/json"
# A run of 19 digits may be an integer beyond msgpack's 64 bits: the events' data is checked
# then. Digits are mapped to 0 and the run searched as a substring, as the Tanso batch does
# (routes/events_batch.py): a regular expression over the body cost 18k instructions per
# event, more than the rest of the parsing.
_DIGITS: Final = bytes.maketrans(b"123456789", b"000000000")
_LONG_INTEGER: Final = b"0" * 19


class _Event(msgspec.Struct, frozen=True):
    """The document's `Event`. Unknown members (CloudEvents extensions) are ignored."""

    id: _NonEmpty
    source: _NonEmpty
    specversion: str
    type: _NonEmpty
    subject: _NonEmpty
    time: str | None = None
    datacontenttype: str | None = None
    dataschema: str | None = None
    data: Any = None


@post(
    "/events",
    operation_id="ingestEvents",
    responses=PROBLEMS,
    status_code=204,
    summary="Ingest events",
)
async def ingest_events(request: AnyRequest) -> None:
    """Ingest CloudEvents: one, or a batch of up to 1,000 in one group commit. An event whose
    (source, id) was seen before is dropped; 204 once the new ones are durable."""
    body = await request.body()
    content_type = request.headers.get("content-type", "")
    events = parse_events(body, content_type)
    await shard_of(request).ingest_cloud_events(events)


def parse_events(body: bytes, content_type: str) -> list[CloudEvent]:
    """Every event of the request, validated (OM-1..OM-5), or a Problem about the first
    bad one."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == _SINGLE:
        raw: list[_Event] = [decode(body, _Event)]
        batch = False
    elif media == _BATCH:
        raw, batch = decode(body, list[_Event]), True
    elif media == _JSON:
        batch = body.lstrip()[:1] == b"["
        raw = decode(body, list[_Event]) if batch else [decode(body, _Event)]
    else:
        sent = media or "no Content-Type"
        raise Problem(415, f"send {_SINGLE}, {_BATCH} or {_JSON} (got {sent})")
    if batch and not 1 <= len(raw) <= BATCH_MAX:
        raise bad_request("body", f"send between 1 and {BATCH_MAX} events (got {len(raw)})")
    wide = _LONG_INTEGER in body.translate(_DIGITS)
    return [_checked(event, i if batch else None, wide) for i, event in enumerate(raw)]


def _field(index: int | None, name: str) -> str:
    """The field's name in a problem: `[3].time` in a batch, `time` alone. Built only for a
    problem (or a time to parse): a name per field per event costs more than the checks."""
    return name if index is None else f"[{index}].{name}"


def _checked(event: _Event, index: int | None, wide: bool) -> CloudEvent:
    if event.specversion != "1.0":  # OM-1: CloudEvents 1.0 only
        message = f"must be '1.0' (got {event.specversion!r})"
        raise bad_request(_field(index, "specversion"), message)
    if event.data is not None and not isinstance(event.data, dict):
        raise bad_request(_field(index, "data"), "must be a JSON object or null")
    if wide and event.data is not None:
        try:
            msgspec.msgpack.encode(event.data)
        except OverflowError:
            raise bad_request(_field(index, "data"), "holds an integer beyond 64 bits") from None
    if event.datacontenttype not in (None, "application/json"):
        message = "must be 'application/json' or absent"
        raise bad_request(_field(index, "datacontenttype"), message)
    return CloudEvent(
        source=event.source,
        event_id=event.id,
        event_type=event.type,
        subject=event.subject,
        time=rfc3339(_field(index, "time"), event.time) if event.time is not None else None,
        specversion=event.specversion,
        data=event.data,
        datacontenttype=event.datacontenttype,
        dataschema=event.dataschema,
    )
