"""The sender the server uses (WHK-D20..WHK-D24, WHK-D31): HTTP/1.1 written straight onto
asyncio transports, a pool of keep-alive connections per endpoint origin, no redirects, 10 s
in all per request.

Why not h11 on anyio streams (the sender before it, kept as bench/baseline_senders.py for
bench/bench_sender_cpu.py): delivery runs on the server's event loop, under the same GIL as
ingest, and with 3 endpoints per event the sender was most of the delivery path's CPU (issue
15's throughput ratio). There, each request went through h11's event objects and state machine,
anyio's stream wrappers, and a cancel scope for the timeout. Here a request is one `bytes` (the
request line and `host` built once per URL), written with one `transport.write`; the answer is
read by `answer_parser.AnswerParser` inside `data_received`, which resolves one future when the
answer is complete; the timeout is one timer handle on that future.

Safety at send time (WHK-D31): unless private addresses are allowed, the host is resolved at
each new connection and refused if any address it resolves to is private, loopback,
link-local or otherwise not global; the connection then goes to the address that was checked,
so a DNS change between the check and the connect cannot reach inside either. For https the
certificate is verified against the URL's host name, not the address.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import time
from typing import NamedTuple, cast
from urllib.parse import urlsplit

from allotment.webhooks.answer_parser import AnswerInvalid, AnswerParser
from allotment.webhooks.sender import TIMEOUT_S, Response
from allotment.webhooks.urls import addresses_of, first_private

__all__ = ("ProtocolSender", "split_url")

_KEEPALIVE_PER_ORIGIN = 16  # as many as the dispatcher sends at once to one endpoint
_TARGETS_MAX = 1024  # URLs whose request prefix is kept (endpoints are few; URLs change rarely)
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # a header name (RFC 9110 section 5.6.2)
_UNSAFE_VALUE = re.compile(r"[\x00\r\n]")  # would end the header, or the head, early
_UNSAFE_TARGET = re.compile(r"[\x00-\x20\x7f]")  # would break the request line
# Framing is ours alone: an endpoint's custom header must not redefine where the body ends.
_RESERVED = frozenset((b"host", b"content-length", b"transfer-encoding", b"connection"))


class _Refused(Exception):
    """Not sent: the message says why."""


class _Closed(Exception):
    """The endpoint closed the connection before its answer was complete."""


class _Origin(NamedTuple):
    tls: bool
    host: str
    port: int


class _Target(NamedTuple):
    origin: _Origin
    prefix: bytes  # the request line, host and user-agent: the same for every request


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; at most one request on it at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False  # the endpoint (or we) closed it: never reused
        self.received = False  # a byte of the current answer arrived
        self._parser = AnswerParser()
        self._answer: asyncio.Future[int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        answer = self._answer
        if answer is None or answer.done():  # nobody asked: the framing can't be trusted
            self.close()
            return
        self.received = True
        try:
            complete = self._parser.feed(data)
        except AnswerInvalid as error:
            answer.set_exception(error)
            return
        if complete:
            answer.set_result(self._parser.status)

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost settles a pending answer

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        answer = self._answer
        if answer is None or answer.done():
            return
        if self._parser.end():  # a body that runs until close: the close completes it
            answer.set_result(self._parser.status)
        elif self.received:
            answer.set_exception(_Closed("the endpoint closed the connection mid-answer"))
        else:
            answer.set_exception(_Closed("the endpoint closed the connection before answering"))

    def exchange(self, loop: asyncio.AbstractEventLoop, request: bytes) -> asyncio.Future[int]:
        """Write `request`; a future of the answer's status, once the answer is complete."""
        assert self.transport is not None
        self._parser = AnswerParser()
        self.received = False
        self._answer = answer = loop.create_future()
        self.transport.write(request)
        return answer

    @property
    def reusable(self) -> bool:
        return not self.closed and self._parser.done and self._parser.keep_alive

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class ProtocolSender:
    """`Sender` (webhooks/sender.py) for the running asyncio loop: never raises for the
    endpoint's failures, which are the `Response`'s status 0 and `error`."""

    def __init__(
        self,
        *,
        allow_private: bool = False,
        timeout_s: float = TIMEOUT_S,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """Args:
        allow_private: connect to private and loopback addresses (`--allow-private-webhooks`).
        timeout_s: for a whole request, connecting included (WHK-D24).
        ssl_context: for https; the system's CAs, with host names checked, by default.
        """
        self._allow_private = allow_private
        self._timeout_s = timeout_s
        self._ssl = ssl_context or ssl.create_default_context()
        self._idle: dict[_Origin, list[_Connection]] = {}  # per endpoint origin, keep-alive
        self._targets: dict[str, _Target] = {}
        self._names: set[str] = set()  # header names checked

    async def send(self, url: str, headers: dict[str, str], body: bytes) -> Response:
        started = time.perf_counter()
        try:
            target = self._targets.get(url) or self._target(url)
            request = target.prefix + self._head(headers, len(body)) + body
        except ValueError as error:  # UnicodeEncodeError too: not ASCII
            return Response(0, _ms(started), f"not sent: {error}"[:300])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout_s  # WHK-D24: 10 s in all, connecting included
        try:
            status = await self._exchange(loop, target.origin, request, deadline)
        except TimeoutError:
            return Response(0, _ms(started), "timeout")
        # ssl.SSLError is an OSError. UnicodeError: a host the idna codec refuses ("a..b", a
        # label over 63 characters), which check_url lets through with --allow-private-webhooks.
        except (_Refused, _Closed, AnswerInvalid, OSError, UnicodeError) as error:
            return Response(0, _ms(started), f"{type(error).__name__}: {error}"[:300])
        return Response(status, _ms(started))  # a 3xx is an answer: not followed (WHK-D23)

    async def _exchange(
        self, loop: asyncio.AbstractEventLoop, origin: _Origin, request: bytes, deadline: float
    ) -> int:
        """One request on an idle connection, or a new one. An idle connection the endpoint
        closed before our request reached it gives no answer at all: the request goes again
        on a new connection (it may have arrived: at-least-once allows that)."""
        idle = self._idle.setdefault(origin, [])
        while True:
            connection = _pop_open(idle)
            reused = connection is not None
            if connection is None:
                connection = await self._connect(loop, origin, deadline)
            answer = connection.exchange(loop, request)
            timer = loop.call_at(deadline, _expire, answer)
            try:
                status = await answer
            except _Closed:
                connection.close()
                if reused and not connection.received:
                    continue
                raise
            except BaseException:  # a timeout, a cancellation, a bad answer: never reused
                connection.close()
                raise
            finally:
                timer.cancel()
            if connection.reusable and len(idle) < _KEEPALIVE_PER_ORIGIN:
                idle.append(connection)
            else:
                connection.close()
            return status

    async def _connect(
        self, loop: asyncio.AbstractEventLoop, origin: _Origin, deadline: float
    ) -> _Connection:
        async with asyncio.timeout_at(deadline):
            address = await self._address(loop, origin)
            _, connection = await loop.create_connection(
                _Connection, address, origin.port,
                ssl=self._ssl if origin.tls else None,
                server_hostname=origin.host if origin.tls else None,  # checked against the name
            )  # fmt: skip
        return connection

    async def _address(self, loop: asyncio.AbstractEventLoop, origin: _Origin) -> str:
        """The address to connect to: the host itself unless private addresses are refused,
        then the one resolved and checked (WHK-D31)."""
        if self._allow_private:
            return origin.host
        try:
            infos = await loop.getaddrinfo(origin.host, origin.port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as error:
            raise _Refused(f"its host {origin.host!r} does not resolve") from error
        addresses = addresses_of(infos)
        if private := first_private(addresses):
            raise _Refused(f"refused: {origin.host} resolves to the private address {private}")
        return str(addresses[0])

    def _target(self, url: str) -> _Target:
        """The origin and request prefix of `url`, kept for the next request to it.

        Raises:
            ValueError: not an http(s) URL, or not one that can go on a request line.
        """
        origin, host, path = split_url(url)
        if _UNSAFE_TARGET.search(path) or _UNSAFE_TARGET.search(host):
            raise ValueError(f"{url!r} has a space or a control character")
        prefix = f"POST {path} HTTP/1.1\r\nhost: {host}\r\nuser-agent: allotment-webhooks\r\n"
        target = _Target(origin, prefix.encode("ascii"))
        if len(self._targets) >= _TARGETS_MAX:
            self._targets.clear()
        self._targets[url] = target
        return target

    def _head(self, headers: dict[str, str], length: int) -> bytes:
        """The rest of the head: content-length, then `headers`, then the blank line.

        Built as one string, encoded and checked once: per header, bytes, a format and a
        search each cost more than the signature did.

        Raises:
            ValueError: a header that would break the request (h11 refused these too), or
                that is not ASCII (UnicodeEncodeError).
        """
        names = self._names
        for name in headers:
            if name not in names:
                self._name(name)
        values = "".join(headers.values())
        if _UNSAFE_VALUE.search(values):
            name = next(n for n, v in headers.items() if _UNSAFE_VALUE.search(v))
            raise ValueError(f"the header {name!r} has a line break or a NUL")
        lines = "".join([f"{name}: {value}\r\n" for name, value in headers.items()])
        return f"content-length: {length}\r\n{lines}\r\n".encode("ascii")

    def _name(self, name: str) -> None:
        """Check a header name, and remember it as checked."""
        encoded = name.encode("ascii")
        if not _TOKEN.fullmatch(encoded):
            raise ValueError(f"{name!r} is not a header name")
        if encoded.lower() in _RESERVED:
            raise ValueError(f"the header {name!r} is the sender's own")
        if len(self._names) < _TARGETS_MAX:  # custom headers are few; never grow without end
            self._names.add(name)

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()


def split_url(url: str) -> tuple[_Origin, str, str]:
    """Where a request to `url` goes, its `host` header and its request target.

    Raises:
        ValueError: not an http(s) URL with a host.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL")
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Origin(tls, parts.hostname, port), parts.netloc.rpartition("@")[2], path


def _pop_open(idle: list[_Connection]) -> _Connection | None:
    """The most recently used idle connection still open; the closed ones are dropped (the
    endpoint closed them while idle, and the loop has already told us)."""
    while idle:
        connection = idle.pop()
        if not connection.closed:
            return connection
    return None


def _expire(answer: asyncio.Future[int]) -> None:
    if not answer.done():
        answer.set_exception(TimeoutError())


def _ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
