"""Request ids: every HTTP response carries an `X-Request-Id`.

A client that sends a well-formed `X-Request-Id` (1 to 128 characters of letters, digits and
`-_.:~+/=`, enough for UUIDs, ULIDs, base64 and trace ids) gets it back, so one id follows a
call through the caller's logs and ours. Anything else (absent, empty, too long, spaces,
control characters, repeated) is replaced by a fresh random id: echoing it could split a
response header or poison a log line.

`http.observe.Observe`, the plain ASGI middleware wrapped around both paths (the fast path and
Litestar), adds it, so a response gets its id whichever path served it, including the ones
Litestar answers before routing (a malformed Host header, an unknown path); the same id is on
every log line written while the request runs.
"""

from __future__ import annotations

from random import getrandbits

from litestar.types import HTTPScope

__all__ = ("HEADER", "request_id_of")

HEADER = b"x-request-id"
_LENGTH_MAX = 128
_ALLOWED = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.:~+/="


def request_id_of(scope: HTTPScope) -> bytes:
    """The client's request id when there is exactly one and it is well-formed, else a new one.

    Args:
        scope: the request's ASGI scope.

    Returns:
        The id, as the header value to send back.
    """
    value, count = b"", 0
    for name, presented in scope["headers"]:  # a loop, not a list: this runs on every request
        if name == HEADER:
            value, count = presented, count + 1
    # translate(None, _ALLOWED) deletes every allowed byte: anything left is not allowed.
    if count == 1 and 0 < len(value) <= _LENGTH_MAX and not value.translate(None, _ALLOWED):
        return value
    # A correlation id, not a secret: 128 bits from the (per-process, reseeded after fork)
    # Mersenne Twister, because os.urandom costs a system call on every request.
    return b"%032x" % getrandbits(128)
