"""The delivery side's own append-only log, one per environment (WHK-D14..WHK-D18):
`<data-dir>/webhooks/<environment>/messages.log`, one JSON record a line.

- `EventLogged`: a committed notification (or a `webhook.test`), its feed sequence number, its
  journal position, and the endpoints it was fanned out to at that moment.
- `Attempted`: one delivery attempt and its outcome.
- `Requeued`: a resend asked through the API.
- `Compacted`: first line of a compacted log: what the records dropped by compaction leave
  behind (the feed's numbering, the totals) (WHK-D42).

Replaying the lines rebuilds every message's state after a restart. A torn last line (a crash
mid-write) is ignored: it was never synced, so nothing acknowledged depended on it.

Compaction rewrites the file without the records of dropped events: a temporary file, fsync,
rename over the log, fsync of the directory. A crash leaves the old file or the new one, never
a mix; a temporary file left by a crash is deleted on the next start (WHK-D43).
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Literal

import anyio
import msgspec

from allotment.persistence.file_modes import PRIVATE, PRIVATE_DIRECTORY
from allotment.webhooks.outbound import OutboundEvent

__all__ = (
    "Attempted",
    "Compacted",
    "EventLogged",
    "LogRecord",
    "MessageLog",
    "Outcome",
    "Requeued",
)

logger = logging.getLogger("allotment.webhooks")

Outcome = Literal["delivered", "retrying", "failed", "disabled"]


class EventLogged(msgspec.Struct, frozen=True, kw_only=True, tag="event"):
    seq: int  # the pull feed's order and cursor (WHK-D40); 0 for a test event (not in the feed)
    position: int  # the journal record it came from; 0 for a test event
    customer: str  # the lane that keeps a customer's messages in commit order; "" for a test
    event: OutboundEvent
    endpoints: list[str]


class Attempted(msgspec.Struct, frozen=True, kw_only=True, tag="attempt"):
    endpoint: str
    message: str
    at: datetime
    status_code: int = 0  # 0: no HTTP answer (a timeout, a refused connection)
    latency_ms: int = 0
    error: str = ""
    outcome: Outcome


class Requeued(msgspec.Struct, frozen=True, kw_only=True, tag="requeue"):
    endpoint: str
    message: str
    at: datetime


class Compacted(msgspec.Struct, frozen=True, kw_only=True, tag="compacted"):
    """What every compaction so far dropped, cumulated (WHK-D42)."""

    last_seq: int  # the feed's highest seq when compacted: numbering continues after it
    dropped_seq: int  # the highest seq dropped: a cursor below it has missed events
    dropped_position: int  # the highest journal position dropped: a re-feed at or below it
    # was logged before (records are logged in position order), so it is not logged again
    totals: dict[str, int]  # "<endpoint> <delivered|failed>" -> final outcomes dropped


LogRecord = EventLogged | Attempted | Requeued | Compacted
# OpenMeter payloads carry numbers as Decimals (OM-144): written with their own digits and
# read back as Decimals, so a body rendered after a restart has the bytes it had before.
# allotment's own payloads hold decimal strings, which neither setting touches.
_ENCODER = msgspec.json.Encoder(decimal_format="number")
_DECODER = msgspec.json.Decoder(LogRecord, float_hook=Decimal)


class MessageLog:
    """Append records to a buffer; `sync` writes and fsyncs them on a thread. Without a
    `directory` (the in-memory server) records are only kept by the dispatcher."""

    def __init__(self, directory: Path | None) -> None:
        self._path = directory / "messages.log" if directory is not None else None
        self._pending: list[bytes] = []
        self._lock = anyio.Lock()
        self._fd: int | None = None  # opened on the first write, kept open
        self._unsynced = False  # written without fsync since the last fsync

    @property
    def _temporary(self) -> Path:
        assert self._path is not None
        return self._path.with_name(self._path.name + ".compacting")

    def read(self) -> list[LogRecord]:
        if self._path is None:
            return []
        self._temporary.unlink(missing_ok=True)  # a compaction a crash cut short: the old file
        if not self._path.exists():
            return []
        records: list[LogRecord] = []
        lines = self._path.read_bytes().split(b"\n")
        for number, line in enumerate(lines, 1):
            if not line:
                continue
            try:
                records.append(_DECODER.decode(line))
            except msgspec.DecodeError:
                if number < len(lines) - 1:  # not the torn tail: say so, keep the rest
                    logger.error("%s line %d is unreadable; skipped", self._path, number)
        return records

    def append(self, record: LogRecord) -> None:
        if self._path is not None:
            self._pending.append(_ENCODER.encode(record) + b"\n")

    async def sync(self, *, durable: bool = True) -> None:
        """Write every record appended so far, one write for all; with `durable`, fsync too.

        Events, test events and resends are durable before anyone relies on them (a checkpoint,
        a 202). An attempt's outcome is only written: lost in a power cut, the message is sent
        again, which at-least-once allows; an fsync per attempt would compete with the
        journal's for the disk."""
        async with self._lock:
            batch, self._pending = b"".join(self._pending), []
            if batch or (durable and self._unsynced):
                await anyio.to_thread.run_sync(self._write, batch, durable)

    def _write(self, batch: bytes, durable: bool) -> None:
        assert self._path is not None
        if self._fd is None:
            self._path.parent.mkdir(mode=PRIVATE_DIRECTORY, parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
            self._fd = os.open(self._path, flags, PRIVATE)
        view = memoryview(batch)
        while view:
            view = view[os.write(self._fd, view) :]
        self._unsynced = not durable
        if durable:
            os.fsync(self._fd)

    async def compact(self, dropped: frozenset[str], header: Compacted) -> None:
        """Rewrite the log without the records of the events `dropped`, `header` first. Holds
        the write lock: appends wait, and go to the new file after."""
        if self._path is None:
            return
        async with self._lock:
            await anyio.to_thread.run_sync(self._rewrite, dropped, header)

    def _rewrite(self, dropped: frozenset[str], header: Compacted) -> None:
        assert self._path is not None
        kept = [_ENCODER.encode(header) + b"\n"]
        for record in self.read():
            if not isinstance(record, Compacted) and _event_of(record) not in dropped:
                kept.append(_ENCODER.encode(record) + b"\n")
        temporary = self._temporary
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, PRIVATE)
        try:
            view = memoryview(b"".join(kept))
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        self.close()  # appends reopen the new file
        os.replace(temporary, self._path)
        directory = os.open(self._path.parent, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        self._unsynced = False

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _event_of(record: EventLogged | Attempted | Requeued) -> str:
    return record.event.id if isinstance(record, EventLogged) else record.message
