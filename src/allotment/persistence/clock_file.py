"""The manual clock's time on disk (OPS-D4): `<data-dir>/clock.json`.

Why a file and not a journal fact: the clock is one per server (ARCHITECTURE principle 4),
while journals are one per environment. A fact would have to be written to every
environment's journal, be missing from an environment created later, and be carried by every
snapshot past the segments a checkpoint deletes; and the time itself is no business fact, it
only decides when facts happen. One small file, replaced atomically, has none of those
problems, like the API key store beside it.

The time is written, synced and renamed into place *before* the clock moves (see
`ActorSystem.advance_clock`), so no reply ever shows a time that a restart would forget: a
crash leaves the old time or the new one, never a torn file and never an earlier time.
"""

from __future__ import annotations

import contextlib
import os
from datetime import UTC, datetime
from pathlib import Path

import msgspec

__all__ = ("ClockFile", "ClockFileInvalid")

_NAME = "clock.json"


class ClockFileInvalid(ValueError):
    """`clock.json` exists but does not hold a time: restore it from a backup, or delete it to
    restart the manual clock at the current real time."""


class _Document(msgspec.Struct, forbid_unknown_fields=True):
    now: datetime


class ClockFile:
    """Reads and saves the manual clock's time under a data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / _NAME

    def load(self) -> datetime | None:
        """The saved time, or None when none was ever saved.

        Raises:
            ClockFileInvalid: the file exists and is unreadable as a time.
        """
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            saved = msgspec.json.decode(raw, type=_Document).now
        except msgspec.DecodeError as error:
            raise ClockFileInvalid(f"{self.path}: not a saved clock time ({error})") from None
        if saved.tzinfo is None:
            raise ClockFileInvalid(f"{self.path}: the saved time has no time zone")
        return saved.astimezone(UTC)

    def save(self, now: datetime) -> None:
        """Replace the saved time with `now`, durably: write a temporary file (mode 0600),
        sync it, rename it over the old one, sync the directory.

        Raises:
            OSError: the disk refused; the old time is still the saved one.
        """
        body = msgspec.json.encode(_Document(now=now.astimezone(UTC)))
        temporary = self.path.with_name(f".{_NAME}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, body)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.replace(temporary, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
