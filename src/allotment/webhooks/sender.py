"""Sending one signed request (WHK-D20..WHK-D24): the retry schedule, what an answer means,
and the httpx sender (the first one; `pooled_sender` then `protocol_sender`, the server's,
replaced it: kept as a baseline of bench/bench_sender_cpu.py). Redirects are not followed
(a 3xx is a failed attempt), and a request gets 10 s in all before it counts as a timeout."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Protocol

import httpx
import msgspec

__all__ = ("RETRY_DELAYS", "HttpxSender", "Response", "Sender", "next_delay")

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


class Sender(Protocol):
    async def send(self, url: str, headers: dict[str, str], body: bytes) -> Response:
        """POST `body`; never raises for the endpoint's failures (they are the Response)."""
        ...

    async def aclose(self) -> None: ...


class HttpxSender:
    def __init__(self, timeout_s: float = TIMEOUT_S) -> None:
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s),
            follow_redirects=False,  # WHK-D23
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
            trust_env=False,  # no proxy from the environment between us and the endpoint
        )

    async def send(self, url: str, headers: dict[str, str], body: bytes) -> Response:
        started = time.perf_counter()
        try:
            answer = await self._client.post(url, content=body, headers=headers)
        except httpx.TimeoutException:
            return Response(0, _ms(started), "timeout")
        except httpx.HTTPError as error:
            return Response(0, _ms(started), f"{type(error).__name__}: {error}"[:300])
        return Response(answer.status_code, _ms(started))

    async def aclose(self) -> None:
        await self._client.aclose()


def _ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
