"""The admin API for outbound webhook endpoints (WHK-D1..WHK-D9): create, list, read, change,
delete, rotate the secret, send a test event. Endpoints belong to the caller's environment:
a sandbox admin key neither sees nor changes a live endpoint. (routes/webhooks.py is the
inbound Stripe webhook, a different thing.)"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Response, delete, get, patch, post
from litestar.params import FromPath
from msgspec import Meta

from allotment.http.auth import api_key_of
from allotment.http.context import AnyRequest, documents_body, errors, json_body
from allotment.http.errors import ApiError, json_response
from allotment.http.validation import decode_body
from allotment.webhooks.ports import Endpoint, EndpointChange, WebhookAdmin, WebhookRefused

__all__ = (
    "create_endpoint", "delete_endpoint", "get_endpoint", "list_endpoints", "rotate_secret",
    "test_endpoint", "update_endpoint", "webhooks_of",
)  # fmt: skip

_ADMIN = {"scope": "admin"}
EventTypes = Annotated[list[Annotated[str, Meta(min_length=1, max_length=64)]], Meta(max_length=64)]


class EndpointCreateRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    url: Annotated[str, Meta(min_length=1)]
    eventTypes: EventTypes | None = None  # absent or empty: every event type
    description: str = ""


class EndpointUpdateRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    url: Annotated[str, Meta(min_length=1)] | None = None
    eventTypes: EventTypes | None = None
    enabled: bool | None = None
    description: str | None = None


class EndpointDto(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str
    url: str
    eventTypes: list[str]  # empty: every event type
    description: str
    enabled: bool
    createdAt: datetime
    disabledReason: str | None = None
    secret: str | None = None  # only when created or rotated (WHK-D5)
    previousSecretExpiresAt: datetime | None = None  # the old secret signs until then


def _dto(endpoint: Endpoint, *, with_secret: bool = False) -> EndpointDto:
    return EndpointDto(
        id=endpoint.id, url=endpoint.url, eventTypes=list(endpoint.event_types),
        description=endpoint.description, enabled=endpoint.enabled,
        createdAt=endpoint.created_at, disabledReason=endpoint.disabled_reason or None,
        secret=endpoint.secret if with_secret else None,
        previousSecretExpiresAt=endpoint.previous_secret_until if with_secret else None,
    )  # fmt: skip


def webhooks_of(request: AnyRequest) -> WebhookAdmin:
    webhooks: WebhookAdmin | None = request.app.state.get("webhooks")
    if webhooks is None:
        raise ApiError(404, "Webhooks are not enabled on this server.")
    return webhooks


def _ok(data: Any, status: int = 200) -> Response[dict[str, Any]]:
    return json_response({"success": True, "data": data}, status)


def _refused(refused: WebhookRefused) -> ApiError:
    return ApiError(refused.status, refused.message)


@get("/webhooks", operation_id="listWebhookEndpoints", opt=_ADMIN, responses=errors(401, 403))
async def list_endpoints(request: AnyRequest) -> Response[dict[str, Any]]:
    """The webhook endpoints of the caller's environment, oldest first (secrets not shown)."""
    environment = api_key_of(request.scope).environment
    return _ok([_dto(e) for e in await webhooks_of(request).list_endpoints(environment)])


@post(
    "/webhooks", operation_id="createWebhookEndpoint", status_code=201, opt=_ADMIN,
    dependencies=documents_body(EndpointCreateRequest), responses=errors(400, 401, 403),
)  # fmt: skip
async def create_endpoint(request: AnyRequest) -> Response[dict[str, Any]]:
    """Create an endpoint; the reply's `secret` is the only time it is shown until a rotation."""
    body = decode_body(await json_body(request), EndpointCreateRequest)
    environment = api_key_of(request.scope).environment
    try:
        endpoint = await webhooks_of(request).create_endpoint(
            environment, body.url, tuple(body.eventTypes or ()), body.description
        )
    except WebhookRefused as refused:
        raise _refused(refused) from None
    return _ok(_dto(endpoint, with_secret=True), 201)


@get(
    "/webhooks/{endpointId:str}", operation_id="getWebhookEndpoint", opt=_ADMIN,
    responses=errors(400, 401, 403, 404),  # 400 declared, or Litestar documents its own
)  # fmt: skip
async def get_endpoint(request: AnyRequest, endpointId: FromPath[str]) -> Response[dict[str, Any]]:
    """One endpoint of the caller's environment."""
    environment = api_key_of(request.scope).environment
    try:
        return _ok(_dto(await webhooks_of(request).get_endpoint(environment, endpointId)))
    except WebhookRefused as refused:
        raise _refused(refused) from None


@patch(
    "/webhooks/{endpointId:str}", operation_id="updateWebhookEndpoint", opt=_ADMIN,
    dependencies=documents_body(EndpointUpdateRequest), responses=errors(400, 401, 403, 404),
)  # fmt: skip
async def update_endpoint(
    request: AnyRequest, endpointId: FromPath[str]
) -> Response[dict[str, Any]]:
    """Change an endpoint's url, event types, description or enabled flag; absent fields stay.
    Enabling an endpoint (also one a 410 disabled) resumes its pending messages."""
    body = decode_body(await json_body(request), EndpointUpdateRequest)
    change = EndpointChange(
        url=body.url, event_types=tuple(body.eventTypes) if body.eventTypes is not None else None,
        enabled=body.enabled, description=body.description,
    )  # fmt: skip
    environment = api_key_of(request.scope).environment
    try:
        endpoint = await webhooks_of(request).update_endpoint(environment, endpointId, change)
    except WebhookRefused as refused:
        raise _refused(refused) from None
    return _ok(_dto(endpoint))


@delete(
    "/webhooks/{endpointId:str}", operation_id="deleteWebhookEndpoint", status_code=200,
    opt=_ADMIN, responses=errors(400, 401, 403, 404),
)  # fmt: skip
async def delete_endpoint(
    request: AnyRequest, endpointId: FromPath[str]
) -> Response[dict[str, Any]]:
    """Delete an endpoint; its undelivered messages are dropped (the pull feed keeps events)."""
    environment = api_key_of(request.scope).environment
    try:
        return _ok(_dto(await webhooks_of(request).delete_endpoint(environment, endpointId)))
    except WebhookRefused as refused:
        raise _refused(refused) from None


@post(
    "/webhooks/{endpointId:str}/rotate-secret", operation_id="rotateWebhookSecret",
    status_code=200, opt=_ADMIN, responses=errors(400, 401, 403, 404),
)  # fmt: skip
async def rotate_secret(request: AnyRequest, endpointId: FromPath[str]) -> Response[dict[str, Any]]:
    """A new secret, shown once; the old one keeps signing for 24 hours (both signatures are
    sent meanwhile), so receivers can switch without missing a delivery."""
    environment = api_key_of(request.scope).environment
    try:
        endpoint = await webhooks_of(request).rotate_secret(environment, endpointId)
    except WebhookRefused as refused:
        raise _refused(refused) from None
    return _ok(_dto(endpoint, with_secret=True))


@post(
    "/webhooks/{endpointId:str}/test", operation_id="testWebhookEndpoint", status_code=202,
    opt=_ADMIN, responses=errors(400, 401, 403, 404),
)  # fmt: skip
async def test_endpoint(request: AnyRequest, endpointId: FromPath[str]) -> Response[dict[str, Any]]:
    """Queue a `webhook.test` event for this endpoint (durably: it survives a restart)."""
    environment = api_key_of(request.scope).environment
    try:
        message_id = await webhooks_of(request).send_test(environment, endpointId)
    except WebhookRefused as refused:
        raise _refused(refused) from None
    return _ok({"messageId": message_id, "type": "webhook.test"}, 202)
