"""What the admin API sees of webhooks (http imports this module and `payloads`, never the
adapters): the `WebhookAdmin` protocol and the values it returns."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol

import msgspec

from allotment.webhooks.book import Message, Status
from allotment.webhooks.endpoints import Endpoint
from allotment.webhooks.message_log import EventLogged

__all__ = (
    "Endpoint",
    "EndpointChange",
    "EndpointStatistics",
    "EventLogged",
    "Message",
    "Status",
    "WebhookAdmin",
    "WebhookRefused",
)


class WebhookRefused(Exception):
    """A request the webhook admin cannot do; `status` and `message` are the API's answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class EndpointChange(msgspec.Struct, frozen=True, kw_only=True):
    """A PATCH: None leaves a field as it is."""

    url: str | None = None
    event_types: tuple[str, ...] | None = None
    enabled: bool | None = None
    description: str | None = None


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

    def feed(
        self, environment: str, after: int, types: frozenset[str], limit: int
    ) -> list[EventLogged]: ...

    def feed_gap(self, environment: str, after: int) -> bool:
        """Whether compaction dropped events after the cursor `after` (WHK-D42)."""
        ...

    def statistics(self) -> list[EndpointStatistics]: ...

    def wake(self) -> None:
        """Look for due deliveries now (the manual clock moved)."""
        ...
