"""The webhook senders allotment used before `allotment.webhooks.protocol_sender`, kept only as
bench/bench_sender_cpu.py's baselines (issue 15): `HttpxSender`, the first one (httpx spent
about 1.5 ms of the server's CPU per delivery: its request and response models, its pool's
machinery, URL handling, cookies, auth and redirects), and `PooledSender`, h11 over anyio
streams with a pool of keep-alive connections per origin (about a tenth of that). Both send
the same signed headers, follow no redirects and give a request 10 s in all, as the server's
sender does; private addresses are refused at connect time unless allowed (WHK-D31).
"""

from __future__ import annotations

import socket
import ssl
import time

import anyio
import h11
import httpx
from anyio.abc import ByteStream

# The server's sender's own origin and failures: the baselines differ from it only in how
# they carry a request.
from allotment.webhooks.protocol_sender import _Closed, _Origin, _Refused, split_url
from allotment.webhooks.sender import TIMEOUT_S, Response
from allotment.webhooks.urls import addresses_of, first_private

__all__ = ("HttpxSender", "PooledSender")


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


_KEEPALIVE_PER_ORIGIN = 16  # as many as the dispatcher sends at once to one endpoint
_READ_SIZE = 65_536


async def _address(host: str, port: int, allow_private: bool) -> str:
    """The address to connect to: `host` itself unless private addresses are refused, then the
    one resolved and checked (WHK-D31)."""
    if allow_private:
        return host
    try:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise _Refused(f"its host {host!r} does not resolve") from error
    addresses = addresses_of(infos)
    if private := first_private(addresses):
        raise _Refused(f"refused: {host} resolves to the private address {private}")
    return str(addresses[0])


class _Connection:
    """One keep-alive HTTP/1.1 connection: h11 frames it, anyio carries it."""

    def __init__(self, stream: ByteStream) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT)

    async def exchange(self, request: h11.Request, body: bytes) -> int:
        """Send one request; its status once the whole answer is read."""
        h11_ = self.h11
        await self.stream.send(
            h11_.send(request) + h11_.send(h11.Data(data=body)) + h11_.send(h11.EndOfMessage())
        )
        status = 0
        while True:
            event = h11_.next_event()
            if event is h11.NEED_DATA:
                try:
                    data = await self.stream.receive(_READ_SIZE)
                except anyio.EndOfStream:
                    data = b""  # h11's end of input: ends a body read until close, or not
                h11_.receive_data(data)
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.EndOfMessage):
                return status
            elif isinstance(event, h11.ConnectionClosed):
                raise _Closed("the endpoint closed the connection mid-answer")

    def ready_for_next(self) -> bool:
        """Whether the connection can carry another request (and make it so)."""
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()
            return True
        return False


class PooledSender:
    def __init__(self, *, allow_private: bool = False, timeout_s: float = TIMEOUT_S) -> None:
        self._allow_private = allow_private
        self._timeout_s = timeout_s
        self._ssl = ssl.create_default_context()
        self._idle: dict[_Origin, list[_Connection]] = {}  # per endpoint origin, keep-alive

    async def _connect(self, origin: _Origin) -> _Connection:
        address = await _address(origin.host, origin.port, self._allow_private)
        stream: ByteStream
        if origin.tls:  # the certificate is checked against the host, not the address
            stream = await anyio.connect_tcp(
                address, origin.port, ssl_context=self._ssl, tls_hostname=origin.host, tls=True
            )
        else:
            stream = await anyio.connect_tcp(address, origin.port)
        return _Connection(stream)

    async def send(self, url: str, headers: dict[str, str], body: bytes) -> Response:
        started = time.perf_counter()
        try:
            origin, request = _request(url, headers, len(body))
        except ValueError as error:
            return Response(0, _ms(started), f"not sent: {error}"[:300])
        try:
            with anyio.fail_after(self._timeout_s):  # WHK-D24: 10 s in all
                status = await self._exchange(origin, request, body)
        except TimeoutError:
            return Response(0, _ms(started), "timeout")
        except (_Refused, OSError, anyio.BrokenResourceError, anyio.EndOfStream,
                h11.ProtocolError) as error:  # fmt: skip
            return Response(0, _ms(started), f"{type(error).__name__}: {error}"[:300])
        return Response(status, _ms(started))  # a 3xx is an answer: not followed (WHK-D23)

    async def _exchange(self, origin: _Origin, request: h11.Request, body: bytes) -> int:
        """One request on an idle connection, or a new one. An idle connection the endpoint
        closed meanwhile fails at once: the request goes again on a new connection (it may
        have arrived: at-least-once allows that)."""
        idle = self._idle.setdefault(origin, [])
        while True:
            reused = bool(idle)
            connection = idle.pop() if reused else await self._connect(origin)
            try:
                status = await connection.exchange(request, body)
            except (anyio.BrokenResourceError, anyio.EndOfStream, _Closed):
                await anyio.aclose_forcefully(connection.stream)
                if reused:
                    continue
                raise
            except BaseException:  # a timeout, a cancellation, a bad answer: never reused
                await anyio.aclose_forcefully(connection.stream)
                raise
            if connection.ready_for_next() and len(idle) < _KEEPALIVE_PER_ORIGIN:
                idle.append(connection)
            else:
                await anyio.aclose_forcefully(connection.stream)
            return status

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                await anyio.aclose_forcefully(connection.stream)
        self._idle.clear()


def _request(url: str, headers: dict[str, str], length: int) -> tuple[_Origin, h11.Request]:
    origin, host, target = split_url(url)
    wire = [("host", host), ("user-agent", "allotment-webhooks"),
            ("content-length", str(length)), *headers.items()]  # fmt: skip
    return origin, h11.Request(method="POST", target=target, headers=wire)


def _ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
