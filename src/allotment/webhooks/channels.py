"""OpenMeter notification channels and events on the webhook machinery (issue 17, OM-140,
OM-144..OM-148). A channel of type WEBHOOK IS a webhook endpoint: kept in the same file, signed
the same way (Standard Webhooks), fed by the same outbox and delivered and retried by the same
dispatcher. It differs in three things: its id is a ULID, it receives only the events its
rules address to it, and its delete is soft. OpenMeter's notification events are the
dispatcher's logged events that carry a rule (`OutboundEvent.about["rule"]`).

`ChannelOps` is mixed into `WebhookService`; it uses the service's endpoint file and lock.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, TypedDict

import anyio
import msgspec

from allotment.domain.meters import ulid
from allotment.webhooks.book import Message
from allotment.webhooks.dispatcher import Dispatcher
from allotment.webhooks.endpoints import ROTATION_GRACE, Endpoint
from allotment.webhooks.message_log import EventLogged
from allotment.webhooks.outbound import OutboundEvent
from allotment.webhooks.ports import ChannelFields, WebhookRefused
from allotment.webhooks.signing import SECRET_PREFIX, new_secret

__all__ = ("ChannelOps",)


class ChannelOps:
    """The channel and notification-event operations of `WebhookService`."""

    _endpoints: dict[str, Endpoint]
    _lock: anyio.Lock
    now: Callable[[], datetime]

    if TYPE_CHECKING:  # WebhookService's, which this is mixed into

        async def _url(self, url: str) -> str: ...

        async def _save(self, endpoint: Endpoint | None, removed: str = "") -> None: ...

        def outbox(self, environment: str, shard: int = 0) -> Dispatcher: ...

        def outboxes(self, environment: str) -> list[Dispatcher]: ...

        def _holding(self, environment: str, event_id: str) -> Dispatcher | None: ...

    # -- channels (OM-140) ---------------------------------------------------------------------

    async def list_channels(self, environment: str) -> list[Endpoint]:
        """Every channel of the environment, deleted ones too, oldest first."""
        found = [e for e in self._endpoints.values() if e.channel and e.environment == environment]
        return sorted(found, key=lambda e: e.created_at)

    async def get_channel(self, environment: str, channel_id: str) -> Endpoint:
        """Raises: WebhookRefused: 404, no such channel in this environment."""
        endpoint = self._endpoints.get(channel_id)
        if endpoint is None or not endpoint.channel or endpoint.environment != environment:
            raise WebhookRefused(404, f"notification channel {channel_id!r} not found")
        return endpoint

    async def create_channel(self, environment: str, fields: ChannelFields) -> Endpoint:
        now = self.now()
        endpoint = Endpoint(
            id=ulid(now, uuid.uuid4()), environment=environment, channel=True,
            url=await self._url(fields.url), secret=_secret(fields.signing_secret) or new_secret(),
            created_at=now, updated_at=now, **_settable(fields),
        )  # fmt: skip
        async with self._lock:
            await self._save(endpoint)
        return endpoint

    async def update_channel(
        self, environment: str, channel_id: str, fields: ChannelFields
    ) -> Endpoint:
        """Replace the channel's fields. A new signing secret replaces the old one, which
        still signs for 24 hours, as a rotation (WHK-D6)."""
        url = await self._url(fields.url)
        secret = _secret(fields.signing_secret)
        async with self._lock:
            current = await self._live(environment, channel_id)
            now = self.now()
            updated = msgspec.structs.replace(current, url=url, updated_at=now, **_settable(fields))
            if secret is not None and secret != current.secret:
                updated = msgspec.structs.replace(
                    updated, secret=secret, previous_secret=current.secret,
                    previous_secret_until=now + ROTATION_GRACE,
                )  # fmt: skip
            await self._save(updated)
        for outbox in self.outboxes(environment):
            outbox.wake()
        return updated

    async def delete_channel(self, environment: str, channel_id: str) -> Endpoint:
        """Soft: the channel answers with `deletedAt` and receives nothing more."""
        async with self._lock:
            current = await self._live(environment, channel_id)
            now = self.now()
            deleted = msgspec.structs.replace(
                current, enabled=False, disabled_reason="deleted", deleted_at=now, updated_at=now
            )
            await self._save(deleted)
        return deleted

    async def _live(self, environment: str, channel_id: str) -> Endpoint:
        endpoint = await self.get_channel(environment, channel_id)
        if endpoint.deleted_at is not None:
            raise WebhookRefused(404, f"notification channel {channel_id!r} is deleted")
        return endpoint

    # -- notification events (OM-144..OM-148) --------------------------------------------------

    async def notification_events(
        self, environment: str
    ) -> list[tuple[EventLogged, list[Message]]]:
        """Every OpenMeter notification event kept (WHK-D42), with its messages, by channel;
        every shard's (SCL-65)."""
        return [
            (record, _messages_of(outbox.book.messages, record))
            for outbox in self.outboxes(environment)
            for record in outbox.book.events.values()
            if "rule" in record.event.about
        ]

    async def notification_event(
        self, environment: str, event_id: str
    ) -> tuple[EventLogged, list[Message]]:
        """Raises: WebhookRefused: 404, no such notification event (or compacted away)."""
        outbox = self._holding(environment, event_id)
        record = None if outbox is None else outbox.book.events[event_id]
        if outbox is None or record is None or "rule" not in record.event.about:
            raise WebhookRefused(404, f"notification event {event_id!r} not found")
        return record, _messages_of(outbox.book.messages, record)

    async def resend_notification(
        self, environment: str, event_id: str, channels: list[str] | None
    ) -> None:
        """Send the same event again (its id, body and signature scheme) to `channels`, or to
        every channel it went to; a channel it never went to is a 400 (OM-148)."""
        record, _ = await self.notification_event(environment, event_id)
        targets = record.endpoints if channels is None else channels
        for index, channel in enumerate(targets):
            if channel not in record.endpoints:
                raise WebhookRefused(
                    400, f"the event was not sent to channel {channel!r}", f"channels[{index}]"
                )
        holding = self._holding(environment, event_id)
        assert holding is not None  # notification_event found it
        await holding.resend_event(event_id, list(targets))

    async def send_rule_test(self, environment: str, event: OutboundEvent) -> None:
        """A rule's test event, to its live channels (OM-147); outside the feed."""
        assert event.endpoints is not None
        live = [c for c in event.endpoints if (e := self._endpoints.get(c)) and e.enabled]
        await self.outbox(environment).send_outside_feed(event, live)


class _Settable(TypedDict):
    name: str
    enabled: bool
    disabled_reason: str
    custom_headers: dict[str, str]
    metadata: dict[str, str] | None


def _settable(fields: ChannelFields) -> _Settable:
    """The fields a create or an update sets as given."""
    return {
        "name": fields.name,
        "enabled": not fields.disabled,
        "disabled_reason": "disabled by an admin" if fields.disabled else "",
        "custom_headers": dict(fields.custom_headers),
        "metadata": fields.metadata,
    }


def _secret(secret: str | None) -> str | None:
    """A signing secret the client chose: base64 of at least 24 bytes after an optional
    `whsec_` (the document's pattern), kept as given (signing reads either form)."""
    if secret is None:
        return None
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) < 24:
        message = "must be whsec_ and base64 of at least 24 random bytes"
        raise WebhookRefused(400, f"signingSecret: {message}", "signingSecret")
    return secret


def _messages_of(messages: dict[tuple[str, str], Message], record: EventLogged) -> list[Message]:
    found = [messages.get((endpoint, record.event.id)) for endpoint in record.endpoints]
    return [m for m in found if m is not None]
