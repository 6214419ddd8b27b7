"""A deadline on reading the request body, which granian does not bound.

granian calls the app once a request's head has arrived; a client that then sends its body
one byte a minute keeps the connection, and its slot under the connection limit, for ever
(issue 10, scenario 8). This wrapper gives the whole body `seconds` from that call. If the
body is still incomplete then, the request is abandoned while the app is waiting for it:
nothing has acted on the body yet, because nothing has all of it, so cancelling the app at
that point undoes nothing. The client gets 408 with `connection: close` when no response has
started, and granian closes the connection, as it does for any body left unread.

A GET or HEAD that declares no body (neither Content-Length nor Transfer-Encoding: its body is
empty, RFC 9112 6.3) has nothing to wait for and passes through unwrapped: that is the check,
the call an app makes on every request of its own, which would otherwise pay for a wrapper it
can never need.
"""

from __future__ import annotations

import asyncio

from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPScope, Message, Receive, ReceiveMessage, Scope, Send

from allotment.http.errors import ApiError, failure_of

__all__ = ("BodyDeadline",)

_BODYLESS_METHODS = frozenset({"GET", "HEAD"})
_BODY_HEADERS = frozenset({b"content-length", b"transfer-encoding"})
_TIMEOUT = ApiError(408, "Request timeout: the request body did not arrive in time.")


class BodyDeadline:
    """ASGI middleware: `app` with every HTTP request body due within `seconds`."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or _declares_no_body(scope):
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        request = _Request(receive, send, loop, loop.time() + self.seconds)
        try:
            await self.app(scope, request.receive, request.send)
        except asyncio.CancelledError:
            # Ours (the deadline's) is taken back; any other cancellation goes on (as
            # asyncio.timeout does it).
            if request.task is None or not request.timed_out or request.task.uncancel():
                raise
        if request.timed_out and not request.responding:
            await _request_timeout(send, scope["path"])


def _declares_no_body(scope: HTTPScope) -> bool:
    if scope["method"] not in _BODYLESS_METHODS:
        return False
    for name, _ in scope["headers"]:  # noqa: SIM110 (a loop: all() over a generator costs more)
        if name in _BODY_HEADERS:
            return False
    return True


class _Request:
    __slots__ = ("_deadline", "_loop", "_receive", "_send", "body_complete", "responding",
                 "task", "timed_out")  # fmt: skip

    def __init__(
        self, receive: Receive, send: Send, loop: asyncio.AbstractEventLoop, deadline: float
    ) -> None:
        self._receive = receive
        self._send = send
        self._loop = loop
        self._deadline = deadline
        self.task: asyncio.Task[object] | None = None  # the app's, once it reads the body
        self.body_complete = False
        self.responding = False
        self.timed_out = False

    async def receive(self) -> ReceiveMessage:
        if self.body_complete:
            return await self._receive()  # after the body: a disconnect, whenever it comes
        if self.task is None:
            self.task = asyncio.current_task()
        # The deadline can only strike while the app is parked here, waiting for the body:
        # cancelling it then ends it here, before anything has acted on the body.
        timer = self._loop.call_at(self._deadline, self._expire)
        try:
            message = await self._receive()
        finally:
            timer.cancel()
        if message["type"] != "http.request" or not message.get("more_body", False):
            self.body_complete = True
        return message

    def _expire(self) -> None:
        assert self.task is not None, "armed only once the task is known"
        self.timed_out = True
        self.task.cancel()

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.responding = True
        await self._send(message)


async def _request_timeout(send: Send, path: str) -> None:
    """The API envelope (API-5), and the end of the connection: its body was never read."""
    body = failure_of(_TIMEOUT, path).body
    await send(
        {
            "type": "http.response.start",
            "status": 408,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})
