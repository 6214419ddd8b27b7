"""Notification channels (OM-140): `GET/POST /api/v1/notification/channels`,
`GET/PUT/DELETE /api/v1/notification/channels/{channelId}`. A channel of type WEBHOOK is a
webhook endpoint of the caller's environment (docs/webhooks.md): the same file, signing,
outbox, retries and dispatcher. Admin keys only."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Final, TypeVar

from litestar import Response, delete, get, post, put
from litestar.params import FromPath

from allotment.http.auth import api_key_of
from allotment.http.context import AnyRequest
from allotment.http.openmeter.notifications_wire import ADMIN, ChannelBody, channel_json
from allotment.http.openmeter.problems import PROBLEMS, Problem, bad_request
from allotment.http.openmeter.wire import Page, decode, flag, json, order_and_page
from allotment.http.routes.webhook_endpoints import webhooks_of
from allotment.webhooks.ports import WebhookRefused

__all__ = (
    "answered",
    "create_channel",
    "delete_channel",
    "get_channel",
    "list_channels",
    "refused",
    "update_channel",
)

T = TypeVar("T")
_SORT: Final = {
    "id": lambda e: e.id,
    "type": lambda e: "WEBHOOK",
    "createdAt": lambda e: e.created_at,
    "updatedAt": lambda e: e.updated_at or e.created_at,
}


def refused(error: WebhookRefused) -> Problem:
    """The webhook machinery's refusal as problem+json, naming its field (OM-2)."""
    if error.status == 400 and error.field is not None:
        return bad_request(error.field, error.message.removeprefix(f"{error.field}: "))
    return Problem(error.status, error.message)


async def answered(call: Awaitable[T]) -> T:
    """`call`'s result, or its `WebhookRefused` as problem+json."""
    try:
        return await call
    except WebhookRefused as error:
        raise refused(error) from None


@get(
    "/notification/channels",
    operation_id="listNotificationChannels",
    opt=ADMIN,
    responses=PROBLEMS,
    summary="List notification channels",
)
async def list_channels(request: AnyRequest) -> Response[Any]:
    """Channels of the environment; deleted ones with `includeDeleted`, disabled ones with
    `includeDisabled` (OM-140); a page object (OM-3)."""
    query = dict(request.query_params)
    deleted, disabled = flag(query, "includeDeleted"), flag(query, "includeDisabled")
    environment = api_key_of(request.scope).environment
    channels = [
        c for c in await webhooks_of(request).list_channels(environment)
        if (deleted or c.deleted_at is None) and (disabled or c.enabled or c.deleted_at)
    ]  # fmt: skip
    page, number, size = order_and_page(channels, _SORT, query, "id")
    items = [channel_json(c) for c in page]
    return json(Page(totalCount=len(channels), page=number, pageSize=size, items=items))


@post(
    "/notification/channels",
    operation_id="createNotificationChannel",
    opt=ADMIN,
    responses=PROBLEMS,
    status_code=201,
    summary="Create a notification channel",
)
async def create_channel(request: AnyRequest) -> Response[Any]:
    """A new channel: a webhook endpoint with a ULID, signed with `signingSecret` or a new
    `whsec_` secret; 400 naming a bad `url` or `signingSecret`."""
    body = decode(await request.body(), ChannelBody)
    environment = api_key_of(request.scope).environment
    channel = await answered(webhooks_of(request).create_channel(environment, body.fields()))
    return json(channel_json(channel), 201)


@get(
    "/notification/channels/{channel_id:str}",
    operation_id="getNotificationChannel",
    opt=ADMIN,
    responses=PROBLEMS,
    summary="Get a notification channel",
)
async def get_channel(request: AnyRequest, channel_id: FromPath[str]) -> Response[Any]:
    environment = api_key_of(request.scope).environment
    return json(
        channel_json(await answered(webhooks_of(request).get_channel(environment, channel_id)))
    )


@put(
    "/notification/channels/{channel_id:str}",
    operation_id="updateNotificationChannel",
    opt=ADMIN,
    responses=PROBLEMS,
    summary="Update a notification channel",
)
async def update_channel(request: AnyRequest, channel_id: FromPath[str]) -> Response[Any]:
    """Replace the channel's fields; a new `signingSecret` rotates (the old one signs for
    24 hours more, WHK-D6)."""
    body = decode(await request.body(), ChannelBody)
    environment = api_key_of(request.scope).environment
    try:
        channel = await webhooks_of(request).update_channel(environment, channel_id, body.fields())
    except WebhookRefused as error:
        raise refused(error) from None
    return json(channel_json(channel))


@delete(
    "/notification/channels/{channel_id:str}",
    operation_id="deleteNotificationChannel",
    opt=ADMIN,
    responses=PROBLEMS,
    status_code=204,
    summary="Delete a notification channel",
)
async def delete_channel(request: AnyRequest, channel_id: FromPath[str]) -> None:
    """Soft: the channel answers with `deletedAt` and receives nothing more."""
    environment = api_key_of(request.scope).environment
    await answered(webhooks_of(request).delete_channel(environment, channel_id))
