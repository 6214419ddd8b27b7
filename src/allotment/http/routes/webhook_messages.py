"""What was sent, and the pull feed (WHK-D33..WHK-D41): an endpoint's messages with every
attempt, a resend, and `GET /admin/events`, every committed event in commit order with a
cursor, for those who cannot receive webhooks."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Response, get, post
from litestar.params import FromPath, QueryParameter

from allotment.http.auth import api_key_of
from allotment.http.context import AnyRequest, errors
from allotment.http.errors import ApiError, json_response
from allotment.http.routes.webhook_endpoints import webhooks_of
from allotment.webhooks.ports import Message, WebhookRefused

__all__ = ("list_events", "list_messages", "resend_message")

_ADMIN = {"scope": "admin"}
LIMIT_MAX = 1000


class AttemptDto(msgspec.Struct, kw_only=True, omit_defaults=True):
    at: datetime
    outcome: str  # delivered, retrying, failed, disabled
    latencyMs: int
    statusCode: int | None = None  # absent: no HTTP answer
    error: str | None = None


class MessageDto(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str  # the webhook-id
    type: str
    status: str
    timestamp: datetime
    attempts: list[AttemptDto]
    data: dict[str, Any]
    nextAttemptAt: datetime | None = None


def _message(message: Message) -> MessageDto:
    return MessageDto(
        id=message.event.id, type=message.event.type, status=message.status,
        timestamp=message.event.timestamp, data=message.event.data,
        nextAttemptAt=message.due if message.status == "pending" else None,
        attempts=[
            AttemptDto(
                at=a.at, outcome=a.outcome, latencyMs=a.latency_ms,
                statusCode=a.status_code or None, error=a.error or None,
            )
            for a in message.attempts
        ],
    )  # fmt: skip


def _ok(data: Any, status: int = 200) -> Response[dict[str, Any]]:
    return json_response({"success": True, "data": data}, status)


Limit = Annotated[int, QueryParameter(ge=1, le=LIMIT_MAX, required=False)]


@get(
    "/webhooks/{endpointId:str}/messages", operation_id="listWebhookMessages", opt=_ADMIN,
    responses=errors(400, 401, 403, 404),
)  # fmt: skip
async def list_messages(
    request: AnyRequest,
    endpointId: FromPath[str],
    status: Annotated[
        Literal["pending", "delivered", "failed"] | None, QueryParameter(required=False)
    ] = None,
    limit: Limit = 100,
) -> Response[dict[str, Any]]:
    """An endpoint's messages, newest first, each with every attempt (time, status code,
    latency, error)."""
    environment = api_key_of(request.scope).environment
    try:
        found = await webhooks_of(request).messages(environment, endpointId, status, limit)
    except WebhookRefused as refused:
        raise ApiError(refused.status, refused.message) from None
    return _ok([_message(m) for m in found])


@post(
    "/webhooks/{endpointId:str}/messages/{messageId:str}/resend",
    operation_id="resendWebhookMessage", status_code=202, opt=_ADMIN,
    responses=errors(400, 401, 403, 404),
)  # fmt: skip
async def resend_message(
    request: AnyRequest, endpointId: FromPath[str], messageId: FromPath[str]
) -> Response[dict[str, Any]]:
    """Send a message again, with the same webhook-id and a fresh retry schedule."""
    environment = api_key_of(request.scope).environment
    try:
        message = await webhooks_of(request).resend(environment, endpointId, messageId)
    except WebhookRefused as refused:
        raise ApiError(refused.status, refused.message) from None
    return _ok(_message(message), 202)


class FeedEventDto(msgspec.Struct, kw_only=True):
    cursor: str
    id: str
    type: str
    timestamp: datetime
    data: dict[str, Any]


@get("/events", operation_id="listOutboundEvents", opt=_ADMIN, responses=errors(400, 401, 403))
async def list_events(
    request: AnyRequest,
    after: Annotated[str | None, QueryParameter(required=False)] = None,
    types: Annotated[str | None, QueryParameter(required=False)] = None,
    limit: Limit = 100,
) -> Response[dict[str, Any]]:
    """Every committed event in commit order after `after` (a cursor from an earlier page;
    absent: from the start), optionally only the comma-separated `types`. Pass the reply's
    `nextCursor` as `after` to continue. `gap` is true when the retention's compaction dropped
    events after `after` (WHK-D42): the page starts at the oldest event kept."""
    environment = api_key_of(request.scope).environment
    cursor = 0
    if after:
        if not after.isdigit():
            raise ApiError(400, "Invalid field 'after': not a cursor from this feed.")
        cursor = int(after)
    wanted = frozenset(t.strip() for t in (types or "").split(",") if t.strip())
    service = webhooks_of(request)
    try:
        found = await service.feed(environment, cursor, wanted, limit)
    except WebhookRefused as refused:
        raise ApiError(refused.status, refused.message) from None
    events = [
        FeedEventDto(
            cursor=str(r.seq), id=r.event.id, type=r.event.type,
            timestamp=r.event.timestamp, data=r.event.data,
        )
        for r in found
    ]  # fmt: skip
    next_cursor = events[-1].cursor if events else str(cursor)
    gap = await service.feed_gap(environment, cursor)
    return _ok({"events": events, "nextCursor": next_cursor, "gap": gap})
