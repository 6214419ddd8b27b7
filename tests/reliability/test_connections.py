"""Connections that cannot starve the server (issue 10, scenario 8), with the real CLI.

Before: about 1,030 idle connections from anyone, with no key, stopped the server for
everyone; an idle connection was still open after 200 s, and a slow body never timed out.
Here the limits are small (16 connections, 2 s timeouts) so the same shapes show at a small
scale; every wait is on a condition, bounded generously, and nothing asserts elapsed time.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import httpx
import pytest

from tests.reliability.server import KEY, Server

C = "/api/v1/client"
LIMIT = 16
WAIT_S = 90.0  # generous: the server's own timeouts are 2 s


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the module: each test opens its own connections and waits until the
    server has closed every one of them, so none outlives its test to count against the next
    test's limit, and no test changes what the server holds."""
    started = Server(
        tmp_path_factory.mktemp("connections"),
        "--connections-max", str(LIMIT),
        "--header-read-timeout", "2",
        "--body-read-timeout", "2",
    )  # fmt: skip
    yield started
    started.stop()


def _connect(server: Server, sent: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=WAIT_S)
    if sent:
        sock.sendall(sent)
    return sock


def _until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (fails after WAIT_S)."""
    received = b""
    while chunk := sock.recv(4096):
        received += chunk
    return received


def test_more_idle_connections_than_the_limit_do_not_stop_an_authenticated_client(
    server: Server,
) -> None:
    """Scenario 8: silent connections (no byte sent, no key) beyond the connection limit; an
    authenticated request still gets its answer, and every silent connection is closed."""
    with contextlib.ExitStack() as stack:
        idle = [stack.enter_context(_connect(server)) for _ in range(LIMIT * 3)]
        with httpx.Client(base_url=server.url, timeout=WAIT_S) as client:
            answer = client.get(f"{C}/plans", headers={"Authorization": f"Bearer {KEY}"})
        assert answer.status_code == 200
        assert [_until_closed(sock) for sock in idle] == [b""] * len(idle)


def test_a_slow_body_is_answered_408_and_closed(server: Server) -> None:
    """Scenario 8: a body that never completes ends with 408, and the connection closes."""
    head = (
        f"POST {C}/events HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {KEY}\r\n"
        "content-type: application/json\r\ncontent-length: 1000\r\n\r\n{"
    )
    with _connect(server, head.encode()) as slow:
        answer = _until_closed(slow)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"did not arrive in time" in answer


def test_a_slow_request_head_is_closed(server: Server) -> None:
    """Scenario 8: a request head that never completes is dropped by the header timeout."""
    with _connect(server, b"GET /health HTTP/1.1\r\nhost: x\r\nx-slow: ") as slow:
        assert _until_closed(slow) == b""


def test_an_idle_kept_alive_connection_is_closed(server: Server) -> None:
    """Scenario 8: after an answer, a connection idle between requests is closed."""
    with _connect(server, b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n") as kept:
        answer = _until_closed(kept)
    assert answer.startswith(b"HTTP/1.1 200 ")
