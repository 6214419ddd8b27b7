"""Webhook endpoints and where they are kept (WHK-D1..WHK-D9).

`<data-dir>/webhooks/endpoints.json` holds every environment's endpoints, secrets included,
replaced atomically (written 0600, fsynced, renamed, directory fsynced), so a change is on
disk before the API answers and a crash leaves the old or the new list, never half of one.
Without a data directory (the in-memory server) they live as long as the process.
"""

from __future__ import annotations

import os
import secrets
from datetime import datetime, timedelta
from pathlib import Path

import msgspec

from allotment.persistence.file_modes import PRIVATE, PRIVATE_DIRECTORY

__all__ = ("ROTATION_GRACE", "Endpoint", "EndpointFile")

ROTATION_GRACE = timedelta(hours=24)  # WHK-D6: the old secret keeps signing this long


class Endpoint(msgspec.Struct, frozen=True, kw_only=True):
    id: str  # "ep_" + 24 hex characters
    environment: str
    url: str
    event_types: tuple[str, ...] = ()  # empty: every event type
    description: str = ""
    enabled: bool = True
    disabled_reason: str = ""  # why delivery stopped (a 410, or an operator)
    secret: str
    previous_secret: str = ""  # signs too, until previous_secret_until (WHK-D6)
    previous_secret_until: datetime | None = None
    created_at: datetime
    # An OpenMeter notification channel (issue 17, OM-140) is an endpoint with these: it
    # receives only the events its rules address to it, with its custom headers.
    channel: bool = False
    name: str = ""
    custom_headers: dict[str, str] = msgspec.field(default_factory=dict)
    metadata: dict[str, str] | None = None
    updated_at: datetime | None = None
    deleted_at: datetime | None = None  # a channel's delete is soft: it stays, disabled

    def wants(self, event_type: str) -> bool:
        """Whether an unaddressed event of `event_type` goes here: never to a channel."""
        return not self.channel and (not self.event_types or event_type in self.event_types)

    def signing_secrets(self, now: datetime) -> list[str]:
        """The secrets a delivery is signed with now: the current one, and the previous one
        during its grace period."""
        until = self.previous_secret_until
        if self.previous_secret and until is not None and now < until:
            return [self.secret, self.previous_secret]
        return [self.secret]


def new_endpoint_id() -> str:
    return "ep_" + secrets.token_hex(12)


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(list[Endpoint])


class EndpointFile:
    """The endpoints on disk (or only in memory when `path` is None)."""

    def __init__(self, path: Path | None) -> None:
        self._path = path

    def load(self) -> list[Endpoint]:
        if self._path is None:
            return []
        try:
            return _DECODER.decode(self._path.read_bytes())
        except FileNotFoundError:
            return []

    def save(self, endpoints: list[Endpoint]) -> None:
        """Replace the file with `endpoints`, durably and atomically (runs on a thread)."""
        if self._path is None:
            return
        path = self._path
        path.parent.mkdir(mode=PRIVATE_DIRECTORY, parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, PRIVATE)
        try:
            os.fchmod(fd, PRIVATE)
            view = memoryview(_ENCODER.encode(endpoints))
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
        directory = os.open(path.parent, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
