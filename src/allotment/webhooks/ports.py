"""What the admin API sees of webhooks (http imports this module and `payloads`, never the
adapters): the `WebhookAdmin` protocol and the values it returns."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol

import msgspec

from allotment.webhooks.book import Message, Status
from allotment.webhooks.endpoints import Endpoint
from allotment.webhooks.message_log import EventLogged
from allotment.webhooks.outbound import OutboundEvent

__all__ = (
    "ChannelFields",
    "Endpoint",
    "EndpointChange",
    "EndpointStatistics",
    "EventLogged",
    "Message",
    "OutboundEvent",
    "Status",
    "WebhookAdmin",
    "WebhookRefused",
)


class WebhookRefused(Exception):
    """A request the webhook admin cannot do; `status` and `message` are the API's answer."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field  # the request field at fault, when one is


class EndpointChange(msgspec.Struct, frozen=True, kw_only=True):
    """A PATCH: None leaves a field as it is."""

    url: str | None = None
    event_types: tuple[str, ...] | None = None
    enabled: bool | None = None
    description: str | None = None


class ChannelFields(msgspec.Struct, frozen=True, kw_only=True):
    """An OpenMeter notification channel as created or replaced (OM-140)."""

    name: str
    url: str
    disabled: bool = False
    custom_headers: dict[str, str] = msgspec.field(default_factory=dict)
    metadata: dict[str, str] | None = None
    signing_secret: str | None = None  # None: a new one at creation, unchanged on update


class EndpointStatistics(msgspec.Struct, frozen=True, kw_only=True):
    environment: str
    endpoint: str
    enabled: bool
    backlog: int  # messages waiting to be delivered
    backlog_max: int  # past it, new messages fail at once (they stay in the feed)
    delivered: int  # since the message log began
    failed: int


class WebhookAdmin(Protocol):
    def running(self) -> AbstractAsyncContextManager[None]:
        """Held while the server runs: the ingest and delivery tasks."""
        ...

    async def list_endpoints(self, environment: str) -> list[Endpoint]: ...

    async def get_endpoint(self, environment: str, endpoint_id: str) -> Endpoint:
        """Raises: WebhookRefused: 404, no such endpoint in this environment."""
        ...

    async def create_endpoint(
        self, environment: str, url: str, event_types: tuple[str, ...], description: str
    ) -> Endpoint:
        """Raises: WebhookRefused: 400 naming the field at fault."""
        ...

    async def update_endpoint(
        self, environment: str, endpoint_id: str, change: EndpointChange
    ) -> Endpoint: ...

    async def delete_endpoint(self, environment: str, endpoint_id: str) -> Endpoint: ...

    async def rotate_secret(self, environment: str, endpoint_id: str) -> Endpoint: ...

    async def send_test(self, environment: str, endpoint_id: str) -> str:
        """The test message's id."""
        ...

    async def messages(
        self, environment: str, endpoint_id: str, status: Status | None, limit: int
    ) -> list[Message]:
        """Newest first."""
        ...

    async def resend(self, environment: str, endpoint_id: str, message_id: str) -> Message: ...

    async def feed(
        self, environment: str, after: int, types: frozenset[str], limit: int
    ) -> list[EventLogged]: ...

    async def feed_gap(self, environment: str, after: int) -> bool:
        """Whether compaction dropped events after the cursor `after` (WHK-D42)."""
        ...

    def statistics(self) -> list[EndpointStatistics]:
        """Without waiting (/metrics): over Ray, what the shard hosts said a moment ago."""
        ...

    async def statistics_now(self, bound_s: float) -> list[EndpointStatistics] | None:
        """The rows as the processes that deliver hold them now (/health, WHK-D28a), waiting
        at most `bound_s` for them: None when they did not answer in time (a delivery worker
        starting, stopped or slow), so the caller says the backlog is unknown rather than
        showing old figures as current."""
        ...

    # -- OpenMeter notification channels and events (webhooks/channels.py, OM-140..OM-148) --

    async def list_channels(self, environment: str) -> list[Endpoint]: ...

    async def get_channel(self, environment: str, channel_id: str) -> Endpoint:
        """Raises: WebhookRefused: 404, no such channel in this environment."""
        ...

    async def create_channel(self, environment: str, fields: ChannelFields) -> Endpoint:
        """Raises: WebhookRefused: 400 naming the field at fault (`url`, `signingSecret`)."""
        ...

    async def update_channel(
        self, environment: str, channel_id: str, fields: ChannelFields
    ) -> Endpoint: ...

    async def delete_channel(self, environment: str, channel_id: str) -> Endpoint: ...

    async def notification_events(
        self, environment: str
    ) -> list[tuple[EventLogged, list[Message]]]:
        """Every notification event kept, with its messages (one per channel)."""
        ...

    async def notification_event(
        self, environment: str, event_id: str
    ) -> tuple[EventLogged, list[Message]]: ...

    async def resend_notification(
        self, environment: str, event_id: str, channels: list[str] | None
    ) -> None: ...

    async def send_rule_test(self, environment: str, event: OutboundEvent) -> None: ...

    def wake(self) -> None:
        """Look for due deliveries now (the manual clock moved)."""
        ...
