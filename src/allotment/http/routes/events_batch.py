"""POST /api/v1/client/events/batch: an extension for bulk ingestion.

Up to `batch_size_max` events in one request. Each event is validated and judged exactly as
`POST /events` would judge it, and gets its own result in the same shapes (201, 200 with
`usageLimitExceeded`, 400, 404, 409); all of them share one group commit, and the response is
sent once every accepted event is durable. A bad event never fails the others.

The body is decoded once, typed, when nothing in it could be judged differently from decoding
each event on its own (issue 21): no exponent, long digit run, `\\u` escape or quoted decimal
field anywhere, no deep `meta`, and the typed decode succeeds. Any other body goes the way
each event is decoded alone, which names each bad event's own field (`decode_body`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any

import msgspec
from litestar import Response, post

from allotment.domain.commands import RecordUsage
from allotment.domain.replies import Rejected, UsageAccepted
from allotment.http.context import (
    AnyRequest,
    documents_body,
    errors,
    json_body,
    settings_of,
    shard_of,
    system_of,
)
from allotment.http.errors import REJECTION_STATUS, ApiError, json_response
from allotment.http.mapping.events import accepted_event
from allotment.http.routes.events import event_command
from allotment.http.schemas import (
    ApiResponseEventBatch,
    ErrorObject,
    EventBatchItemResult,
    EventBatchRequest,
    EventBatchResponse,
    EventRequest,
)
from allotment.http.validation import decode_body
from allotment.runtime.ports import CustomerLookup

__all__ = ("ingest_events_batch",)


@post(
    "/events/batch",
    operation_id="ingestEventsBatch",
    status_code=200,
    dependencies=documents_body(EventBatchRequest),
    responses=errors(400, 401, 403),
)
async def ingest_events_batch(request: AnyRequest) -> Response[ApiResponseEventBatch]:
    whole = await json_body(request)
    batch = _decoded_whole(whole) or decode_body(whole, EventBatchRequest)
    settings, clock = settings_of(request), system_of(request).clock
    limit = settings.batch_size_max
    if not 1 <= len(batch.events) <= limit:
        raise ApiError(400, f"Invalid field 'events': send between 1 and {limit} events.")
    results: list[EventBatchItemResult | None] = []
    accepted: list[tuple[int, tuple[CustomerLookup, RecordUsage, uuid.UUID | None]]] = []
    events: Sequence[EventRequest | msgspec.Raw] = batch.events
    for index, event in enumerate(events):
        try:
            body = (
                event
                if isinstance(event, EventRequest)
                else decode_body(bytes(event), EventRequest)
            )
            lookup, command = event_command(settings, clock, body, None)
        except ApiError as error:
            results.append(_failure(error.status, error.message))
            continue
        results.append(None)
        accepted.append((index, (lookup, command, body.featureId)))
    replies = await shard_of(request).ingest_batch([item for _, item in accepted])
    for (index, _), reply in zip(accepted, replies, strict=True):
        results[index] = _result(reply)
    data = EventBatchResponse(results=[r for r in results if r is not None])
    return json_response(ApiResponseEventBatch(success=True, data=data))


class _Events(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """EventBatchRequest with its events typed: the whole body in one decode."""

    events: list[EventRequest]


# What `decode_body` judges beyond msgspec's typed decode: a number with an exponent or a run of
# 19 digits (wide decimals, huge integers), a quoted decimal field; and an escape, which could
# spell a field's name so that these byte tests miss it. Digits are mapped to 0 first, as the
# plain substring searches are several times faster than a regular expression over the body.
_DIGITS = bytes.maketrans(b"123456789", b"000000000")
_WIDE = (b"0e", b"0E", b"0" * 19)
_QUOTED = tuple(
    re.compile(rb'"%s"\s*:\s*"' % name) for name in (b"usageUnits", b"costAmount", b"revenueAmount")
)
_META_DEPTH_MAX = 8  # far below DEPTH_MAX: a shallower `meta` is never too deep


def _plain(raw: bytes) -> bool:
    """Whether nothing in the body needs `decode_body`'s checks beyond a typed decode."""
    digits = raw.translate(_DIGITS)
    if any(wide in digits for wide in _WIDE) or b"\\u" in raw:
        return False
    return not any(quoted.search(raw) for quoted in _QUOTED)


def _decoded_whole(raw: bytes) -> _Events | None:
    """The batch in one typed decode, when each event is sure to decode exactly as alone;
    None sends the body the per-event way."""
    if not _plain(raw):
        return None
    try:
        batch = msgspec.json.decode(raw, type=_Events)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):  # ValidationError too
        return None
    if any(e.meta is not None and _deeper(e.meta, _META_DEPTH_MAX) for e in batch.events):
        return None
    return batch


def _deeper(value: Any, levels: int) -> bool:
    """Whether `value` nests containers more than `levels` deep (looks no deeper)."""
    if isinstance(value, dict | list):
        if levels == 0:
            return True
        items = value.values() if isinstance(value, dict) else value
        return any(_deeper(item, levels - 1) for item in items)
    return False


def _failure(status: int, message: str) -> EventBatchItemResult:
    return EventBatchItemResult(status=status, success=False, error=ErrorObject(message=message))


def _result(reply: object) -> EventBatchItemResult:
    if isinstance(reply, Rejected):
        return _failure(REJECTION_STATUS[reply.kind], reply.message)
    assert isinstance(reply, UsageAccepted)
    status, data = accepted_event(reply)
    return EventBatchItemResult(status=status, success=True, data=data)
