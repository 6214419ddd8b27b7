"""The one clock of a server: the system clock, or a manual clock tests and sandboxes advance."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

__all__ = ("Clock", "ClockStore", "ManualClock", "SystemClock")


class Clock(Protocol):
    """Where the runtime learns the time. Always timezone-aware UTC."""

    @property
    def manual(self) -> bool: ...

    def now(self) -> datetime: ...


class ClockStore(Protocol):
    """Where a manual clock's time survives a restart (OPS-D4); wiring.py picks the file."""

    def save(self, now: datetime) -> None:
        """Make `now` the time a restart resumes from, durably, before the clock shows it.

        Raises:
            OSError: it could not be saved; the clock must not move.
        """
        ...


class SystemClock:
    manual = False

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to (SCH-4). It never goes backwards."""

    manual = True

    def __init__(self, start: datetime | None = None) -> None:
        self._now = (start or datetime.now(UTC)).replace(microsecond=0)

    def now(self) -> datetime:
        return self._now

    def advance_to(self, instant: datetime) -> None:
        """Move to `instant`.

        Raises:
            ValueError: when `instant` is earlier than now; time travel is forward only.
        """
        if instant < self._now:
            raise ValueError("the manual clock only moves forward")
        self._now = instant
