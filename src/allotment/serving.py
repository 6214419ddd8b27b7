"""The transport under `allotment serve`: one exclusive listening socket, enough file
descriptors for the connection limit, and granian configured so idle or slow connections are
closed instead of holding the server.

What granian 2.8.9 does by itself, and why each piece below exists (measured; see
docs/internals.md, "One server per data directory and port; connections"):

- On Linux its main process only test-binds the port; each worker then binds its own socket
  with SO_REUSEPORT, late (after the app factory has recovered the data). A second server on
  the same port therefore starts, and the kernel spreads connections over both. Here the
  `serve` process binds the socket itself, without SO_REUSEPORT, before anything else, and
  hands that one socket to granian: a port in use is refused at once, and while this server
  lives no SO_REUSEPORT socket can join it.
- `backpressure` is a semaphore held for a connection's whole life, so it is the limit on open
  connections (default 1,024: the 1,030 idle connections of scenario 8).
- In HTTP "auto" mode the protocol sniffing read has no timeout: a connection that never sends
  a byte stays open for ever. In HTTP/1 mode `header_read_timeout` closes it, and the same
  timer closes a kept-alive connection idle between requests. HTTP/2 is the proxy's business.
- Nothing bounds reading a request body; `http.body_deadline` does, in the app.
"""

from __future__ import annotations

import errno
import resource
import socket
from typing import Any

import msgspec
from granian._granian import SocketHolder
from granian.constants import HTTPModes, Interfaces
from granian.http import HTTP1Settings
from granian.log import LogLevels
from granian.server.mp import MPServer  # what `granian.Granian` is on a GIL build: processes

from allotment import logs
from allotment.config import Settings

__all__ = ("FilesLimit", "PortUnavailable", "listen", "raise_files_limit", "server")

BACKLOG = 4096  # handshaken connections waiting for accept (the kernel caps it at somaxconn)
FILES_RESERVED = 1024  # descriptors for everything but connections: journal, snapshots, DuckDB


class PortUnavailable(OSError):
    """The address cannot be listened on: in use, or not ours to bind."""

    def __init__(self, host: str, port: int, error: OSError) -> None:
        if error.errno == errno.EADDRINUSE:
            message = f"port {port} on {host} is in use"
        else:
            message = f"cannot listen on port {port} on {host}: {error.strerror or error}"
        super().__init__(error.errno, message)
        self.message = message


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on `host:port` that no other process can share.

    SO_REUSEADDR only lets a restart bind past connections in TIME_WAIT; without SO_REUSEPORT
    Linux refuses the bind while any other socket listens on the port, and refuses any later
    SO_REUSEPORT bind while this one does.

    Raises:
        PortUnavailable: the port is in use, or cannot be bound.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as error:
        raise PortUnavailable(host, port, error) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as error:
        sock.close()
        raise PortUnavailable(host, port, error) from None
    return sock


class FilesLimit(msgspec.Struct, frozen=True, kw_only=True):
    """The open-file limit before and after `raise_files_limit`, and the connections it fits."""

    before: int
    after: int
    connections: int


def raise_files_limit(connections: int) -> FilesLimit:
    """Raise RLIMIT_NOFILE's soft limit (often 1,024) towards what `connections` need, within
    the hard limit; the connection limit shrinks to fit when the hard limit is lower. Each
    open connection is one descriptor, and a worker out of descriptors stops accepting."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = connections + FILES_RESERVED
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    after = max(soft, target)
    return FilesLimit(
        before=soft, after=after, connections=max(1, min(connections, after - FILES_RESERVED))
    )


class _OnSocket(MPServer):
    """Granian serving on a socket bound by the caller.

    `_init_shared_socket` is where granian makes its listening socket; this override is the
    code path granian itself takes on platforms without SO_REUSEPORT: one socket in the main
    process, inherited by the workers (`fork` keeps the descriptor). The reliability test
    `test_a_second_server_on_the_same_port_is_refused` fails if a granian upgrade stops
    honouring it.
    """

    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._listener = sock

    def _init_shared_socket(self) -> None:
        self._listener.set_inheritable(True)
        fd = self._listener.fileno()
        # granian declares these None in __init__; the stub omits SocketHolder(fd, uds, backlog)
        self._ssp = None
        self._sfd = fd  # type: ignore[assignment]
        self._shd = SocketHolder(fd, False, BACKLOG)  # type: ignore[call-arg, assignment]
        self._sso = self._listener


APP_FACTORY = "allotment.asgi:app_from_environment"
# A Ray front door's workers hold no state of their own (the shard actors do), so a worker
# that does not stop within this many seconds of a shutdown is killed: one still joining the
# cluster when SIGTERM came sits in Ray's connect, deaf to it, and granian would wait forever
# (SCL-39). The one-process server's worker is never killed: it holds the journal.
FRONT_DOOR_KILL_TIMEOUT_S = 10


def server(
    settings: Settings, sock: socket.socket, connections: int, factory: str = APP_FACTORY
) -> MPServer:
    """Granian for the app `factory` (the one-process server's by default), on `sock`, with the
    limits of `settings` (`connections` from `raise_files_limit`), in `settings.workers`
    processes (more than one only for a Ray front door, whose workers share no state)."""
    return _OnSocket(
        sock,
        factory,
        factory=True,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=settings.workers,
        http=HTTPModes.http1,
        backlog=BACKLOG,
        backpressure=connections,
        http1_settings=HTTP1Settings(
            header_read_timeout=round(settings.header_read_timeout_s * 1000),
            keep_alive=settings.keep_alive,
        ),
        log_access=False,  # `--access-log` writes ours (http.observe), with the request id
        # granian's own INFO lines include "Listening at" as soon as the socket exists, before
        # the worker has recovered the data; allotment says when it serves (OPS-P4)
        log_level=LogLevels.warning,
        log_dictconfig=logs.dict_config(settings.log_format),  # granian's lines in our format
        workers_kill_timeout=None if factory == APP_FACTORY else FRONT_DOOR_KILL_TIMEOUT_S,
    )
