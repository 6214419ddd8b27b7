"""The request-body deadline (issue 10, scenario 8), driven in-process with ASGI messages."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import anyio
import msgspec
import pytest
from litestar.types import Message, Receive, ReceiveMessage, Scope, Send

from allotment.http.body_deadline import BodyDeadline

pytestmark = pytest.mark.anyio

SCOPE = cast("Scope", {"type": "http", "method": "POST", "path": "/api/v1/client/events"})


class _Echo:
    """An app that reads the whole body, then answers it back; records whether it finished."""

    def __init__(self) -> None:
        self.finished = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += cast("bytes", message.get("body", b""))
            if not message.get("more_body", False):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body, "more_body": False})
        self.finished = True


def _client(chunks: list[bytes], then_wait: bool) -> tuple[Receive, Send, list[Message]]:
    """A client sending `chunks` (the last one ends the body unless `then_wait`), then, when
    `then_wait`, never sending the rest."""
    pending = list(chunks)
    sent: list[Message] = []

    async def receive() -> ReceiveMessage:
        if pending:
            more = bool(pending[1:]) or then_wait
            return {"type": "http.request", "body": pending.pop(0), "more_body": more}
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    return cast("Receive", receive), cast("Send", send), sent


async def test_a_body_that_stops_arriving_is_answered_408() -> None:
    app = _Echo()
    receive, send, sent = _client([b'{"a":'], then_wait=True)
    await BodyDeadline(app, 0.05)(SCOPE, receive, send)
    assert not app.finished
    start, body = cast("list[dict[str, Any]]", sent)
    assert start["status"] == 408
    assert (b"connection", b"close") in start["headers"]
    envelope = msgspec.json.decode(body["body"])
    assert envelope["success"] is False
    assert "did not arrive in time" in envelope["error"]["message"]


async def test_a_body_that_arrives_is_served_untouched() -> None:
    app = _Echo()
    receive, send, sent = _client([b'{"a":', b"1}"], then_wait=False)
    await BodyDeadline(app, 60)(SCOPE, receive, send)
    assert app.finished
    assert [m.get("status", m.get("body")) for m in sent] == [200, b'{"a":1}']


async def test_other_scopes_pass_through() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    receive, send, sent = _client([], then_wait=True)
    lifespan = cast("Scope", {"type": "lifespan"})
    await BodyDeadline(app, 0.0)(lifespan, receive, send)
    assert seen == ["lifespan"]
    assert sent == []


async def test_the_deadline_leaves_no_cancellation_behind() -> None:
    """The cancellation that ends a late body is taken back: the task serving the connection
    goes on as if it had never been cancelled (asyncio counts pending cancellations)."""
    receive, send, sent = _client([b'{"a":'], then_wait=True)
    await BodyDeadline(_Echo(), 0.01)(SCOPE, receive, send)
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0
    assert cast("dict[str, Any]", sent[0])["status"] == 408
    await anyio.lowlevel.checkpoint()  # and no cancellation is left pending


async def test_another_cancellation_goes_on() -> None:
    """A cancellation that is not the deadline's (the server shutting down) ends the request
    without a 408."""
    receive, send, sent = _client([b'{"a":'], then_wait=True)
    with anyio.move_on_after(0.01) as scope:
        await BodyDeadline(_Echo(), 60)(SCOPE, receive, send)
    assert scope.cancelled_caught
    assert sent == []


@pytest.mark.parametrize(
    ("method", "headers", "wrapped"),
    [
        ("GET", [(b"host", b"x")], False),  # the check: an empty body, nothing to wait for
        ("HEAD", [], False),
        ("GET", [(b"content-length", b"5")], True),  # a GET that sends a body is bounded too
        ("GET", [(b"transfer-encoding", b"chunked")], True),
        ("POST", [], True),
    ],
)
async def test_only_a_request_that_declares_a_body_is_bounded(
    method: str, headers: list[tuple[bytes, bytes]], wrapped: bool
) -> None:
    seen: list[tuple[Receive, Send]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((receive, send))

    receive, send, _ = _client([b""], then_wait=False)
    scope = cast("Scope", {"type": "http", "method": method, "path": "/", "headers": headers})
    await BodyDeadline(app, 0.05)(scope, receive, send)
    assert (seen[0] != (receive, send)) is wrapped


async def test_a_get_with_a_body_that_stops_arriving_is_answered_408() -> None:
    app = _Echo()
    receive, send, sent = _client([b'{"a":'], then_wait=True)
    scope = cast(
        "Scope",
        {"type": "http", "method": "GET", "path": "/", "headers": [(b"content-length", b"9")]},
    )
    await BodyDeadline(app, 0.05)(scope, receive, send)
    assert not app.finished
    assert cast("dict[str, Any]", sent[0])["status"] == 408
