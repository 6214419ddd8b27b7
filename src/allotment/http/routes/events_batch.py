"""POST /api/v1/client/events/batch: an extension for bulk ingestion.

Up to `batch_size_max` events in one request. Each event is validated and judged exactly as
`POST /events` would judge it, and gets its own result in the same shapes (201, 200 with
`usageLimitExceeded`, 400, 404, 409); all of them share one group commit, and the response is
sent once every accepted event is durable. A bad event never fails the others.
"""

from __future__ import annotations

import uuid

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
    batch = decode_body(await json_body(request), EventBatchRequest)
    settings, clock = settings_of(request), system_of(request).clock
    limit = settings.batch_size_max
    if not 1 <= len(batch.events) <= limit:
        raise ApiError(400, f"Invalid field 'events': send between 1 and {limit} events.")
    results: list[EventBatchItemResult | None] = []
    accepted: list[tuple[int, tuple[CustomerLookup, RecordUsage, uuid.UUID | None]]] = []
    for index, raw in enumerate(batch.events):
        try:
            body = decode_body(bytes(raw), EventRequest)
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


def _failure(status: int, message: str) -> EventBatchItemResult:
    return EventBatchItemResult(status=status, success=False, error=ErrorObject(message=message))


def _result(reply: object) -> EventBatchItemResult:
    if isinstance(reply, Rejected):
        return _failure(REJECTION_STATUS[reply.kind], reply.message)
    assert isinstance(reply, UsageAccepted)
    status, data = accepted_event(reply)
    return EventBatchItemResult(status=status, success=True, data=data)
