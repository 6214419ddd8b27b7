"""Sending one signed request (WHK-D20..WHK-D24): the retry schedule and what an answer means
(the server's sender is `protocol_sender`; the ones before it are bench/baseline_senders.py).
Redirects are not followed (a 3xx is a failed attempt), and a request gets 10 s in all before
it counts as a timeout."""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

import msgspec

__all__ = ("RETRY_DELAYS", "Poster", "Response", "Sender", "next_delay")

# Svix's schedule (WHK-D20): the first attempt at once, then these after each failure; the
# message is failed after the last.
RETRY_DELAYS: tuple[timedelta, ...] = tuple(
    timedelta(seconds=s) for s in (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
)
TIMEOUT_S = 10.0


def next_delay(failed_attempts: int) -> timedelta | None:
    """The wait before the next attempt after `failed_attempts` failures in a row; None
    once the schedule is spent (the message fails)."""
    if failed_attempts >= len(RETRY_DELAYS):
        return None
    return RETRY_DELAYS[failed_attempts]


class Response(msgspec.Struct, frozen=True):
    status_code: int  # 0: no HTTP answer
    latency_ms: int
    error: str = ""


class Poster(Protocol):
    """What a dispatcher needs of a sender: one request at a time."""

    async def send(self, url: str, headers: dict[str, str], body: bytes) -> Response:
        """POST `body`; never raises for the endpoint's failures (they are the Response)."""
        ...


class Sender(Poster, Protocol):
    """A sender as the service owns it: it closes its connections at shutdown."""

    async def aclose(self) -> None: ...
