"""Waiting on a condition another process (or task) sets: the one place tests look again.

A test never assumes the machine is fast: it waits for what it needs, up to a generous bound
that only a broken build reaches. `POLL_S` is how often a condition is looked at, not a
duration anything is expected to take.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import anyio

__all__ = ("BOUND_S", "Acked", "wait_until", "wait_until_async")

BOUND_S = 120.0
POLL_S = 0.05
T = TypeVar("T")


def wait_until(condition: Callable[[], T | None], what: str, bound_s: float = BOUND_S) -> T:
    """`condition()`'s first truthy value.

    Raises:
        AssertionError: `what` was not seen within `bound_s`.
    """
    deadline = time.monotonic() + bound_s
    while not (value := condition()):
        assert time.monotonic() < deadline, f"not seen within {bound_s} s: {what}"
        time.sleep(POLL_S)
    return value


async def wait_until_async(condition: Callable[[], object], what: str) -> None:
    """As `wait_until`, yielding to the event loop between looks (bound it with
    `anyio.fail_after`)."""
    # A file another process writes: there is no event to be woken by.
    while not condition():  # noqa: ASYNC110
        await anyio.sleep(POLL_S)


class Acked:
    """Keys the server acknowledged; a task can wait for a count without polling."""

    def __init__(self) -> None:
        self.keys: set[str] = set()
        self._waiting: list[tuple[int, anyio.Event]] = []

    def add(self, key: str) -> None:
        self.keys.add(key)
        for count, event in self._waiting:
            if len(self.keys) >= count:
                event.set()

    async def reach(self, count: int) -> None:
        if len(self.keys) < count:
            event = anyio.Event()
            self._waiting.append((count, event))
            await event.wait()
