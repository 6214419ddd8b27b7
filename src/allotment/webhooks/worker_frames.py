"""What the server and its delivery worker (webhooks/worker.py) say to each other over their
socket pair (WHK-D50..WHK-D55): length-prefixed frames, each of one kind.

Server to worker:
- `SETTINGS`: the server's `Settings` (pickled), first and once.
- `RECORDS`: `Handed`, the notification facts of journal records already durable.
- `CALL`: `(call id, method, args)`, pickled: a `WebhookAdmin` method of the worker's service.
- `CLOCK`: the server's time (`--clock manual` only), then a wake: due retries go.

Worker to server:
- `ANSWER`: `(call id, ok, value)`, pickled; a refusal as `("refused", status, message, field)`.
- `LOGGED`: `Logged`: every record up to `position` handed to that outbox is in its log.

Records are msgpack (their facts are the journal's tagged structs): the server pays an encode
per group commit for them, the one cost of webhooks left on its thread. Admin calls are rare
and carry endpoints, messages and pages, so they are pickled as the Ray front door's are.
"""

from __future__ import annotations

import asyncio
import struct
import uuid
from datetime import datetime

import msgspec

from allotment.domain.facts import NotificationRaised

__all__ = (
    "ANSWER",
    "CALL",
    "CLOCK",
    "LOGGED",
    "METHODS",
    "RECORDS",
    "SETTINGS",
    "Clock",
    "Handed",
    "HandedRecord",
    "Logged",
    "frame",
    "read_frame",
)

SETTINGS, RECORDS, CALL, CLOCK, ANSWER, LOGGED = b"S", b"R", b"C", b"T", b"A", b"L"
_HEADER = struct.Struct("<Ic")  # payload length, kind

# The service's methods a server may call: the admin API's (webhooks.ports.WebhookAdmin) and
# the statistics behind /health and /metrics. Nothing else crosses.
METHODS = frozenset({
    "list_endpoints", "get_endpoint", "create_endpoint", "update_endpoint", "delete_endpoint",
    "rotate_secret", "send_test", "messages", "resend", "feed", "feed_gap", "statistics",
    "list_channels", "get_channel", "create_channel", "update_channel", "delete_channel",
    "notification_events", "notification_event", "resend_notification", "send_rule_test",
})  # fmt: skip


class HandedRecord(msgspec.Struct, array_like=True, frozen=True):
    """A durable journal record's notifications: what `Dispatcher.committed` renders."""

    position: int
    customer_id: uuid.UUID
    external_id: str | None
    notices: list[NotificationRaised]


class Handed(msgspec.Struct, array_like=True, frozen=True):
    environment: str
    shard: int
    records: list[HandedRecord]


class Logged(msgspec.Struct, array_like=True, frozen=True):
    environment: str
    shard: int
    position: int


class Clock(msgspec.Struct, array_like=True, frozen=True):
    now: datetime


def frame(kind: bytes, payload: bytes) -> bytes:
    return _HEADER.pack(len(payload), kind) + payload


async def read_frame(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """The next frame's kind and payload.

    Raises:
        asyncio.IncompleteReadError: the other side is gone (it exited, or was killed).
    """
    length, kind = _HEADER.unpack(await reader.readexactly(_HEADER.size))
    return kind, await reader.readexactly(length)
