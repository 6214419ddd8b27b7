"""The fast path: checkEntitlement, ingestEvent, createReservation, commitReservation and
OpenMeter's getCustomerEntitlementValue (without a query) answered straight from ASGI.

These are the calls an app makes on every request of its own users (the last two around
each expensive call it holds for, issue 14). Profiled under load,
Litestar's per-request machinery (routing, signature parsing, dependency injection, response
objects) took about twice the CPU of the check itself. For these routes this wrapper
authenticates, validates and calls the shard with the same functions the Litestar routes use,
maps failures through the same table, and sends the bytes.

Whatever it does not recognise as an authorised request to one of them (no key, a key without
the scope, an oversized body, a repeated idempotency header, a body not sent as JSON, another
path) goes to the Litestar
app untouched (so is a request Litestar would refuse before routing: a malformed Host header),
with any body already read replayed, so the Litestar routes remain the one
documented implementation and the answer never depends on which path served it.

The app's own middleware (`http.observe.Observe`: plain ASGI, declared in `http.app`) wraps
this dispatch, so it runs once for every request whichever path serves it. It cannot be
Litestar middleware: Litestar runs its middleware after routing, so never for a request this
path serves, nor for the ones Litestar refuses before routing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import cast

from litestar import Litestar
from litestar.enums import ScopeType
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    HTTPScope,
    Receive,
    ReceiveMessage,
    Scope,
    Send,
)

from allotment.config import Settings
from allotment.http.auth import presented_key
from allotment.http.check_answers import CheckAnswers
from allotment.http.errors import failure_of
from allotment.http.openmeter.entitlement_values import customer_access, customer_value
from allotment.http.openmeter.problems import PROBLEM_JSON, as_problem, problem_body
from allotment.http.routes.entitlements import check
from allotment.http.routes.events import ingest
from allotment.http.routes.reservations import commit, reserve
from allotment.http.validation import json_media_type
from allotment.runtime.ports import ApiKey, KeyAuthority
from allotment.runtime.system import ActorSystem

__all__ = ("FastPath", "Middleware", "valid_host")

Middleware = Callable[[ASGIApp], ASGIApp]
"""Plain ASGI middleware: given the app it wraps, the wrapped app."""

_CHECK_PREFIX = "/api/v1/client/entitlements/"
_EVENTS_PATH = "/api/v1/client/events"
# The route templates Litestar puts in `scope["path_template"]` for these routes, set here too so
# the request statistics (`http.observe`) label a request alike whichever path served it.
_CHECK_TEMPLATE = "/api/v1/client/entitlements/{customerReferenceId}/{feature-key}"
_EVENTS_TEMPLATE = _EVENTS_PATH
# A reserve and its commit: one request each per LLM call (issue 14, a pair against one ingest).
_RESERVATIONS_PATH = "/api/v1/client/reservations"
_RESERVE_TEMPLATE = _RESERVATIONS_PATH
_COMMIT_TEMPLATE = "/api/v1/client/reservations/{reservationId}/commit"
_COMMIT_SUFFIX = "/commit"
# OpenMeter's gate (issue 17, OM-138): `GET /api/v1/customers/{c}/entitlements/{f}/value`.
_OM_CUSTOMERS = "/api/v1/customers/"
_OM_VALUE_TEMPLATE = (
    "/api/v1/customers/{customer_id_or_key:str}/entitlements/{feature_key:str}/value"
)
# ... and every feature's value in one round trip: `GET /api/v1/customers/{c}/access`.
_OM_ACCESS_TEMPLATE = "/api/v1/customers/{customer_id_or_key:str}/access"
_JSON = (b"content-type", b"application/json")
# RFC 3986 host characters: unreserved, sub-delims, ":" (port), "[]" (IP literal), "%"
# (percent-encoding) and "@" (userinfo), as Litestar's router accepts them.
_HOST_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:[]@%"


class FastPath:
    """An ASGI app in front of `litestar`, inside `middleware` (see the module docstring).

    `middleware` is listed outermost first.
    """

    def __init__(
        self,
        litestar: Litestar,
        system: ActorSystem,
        keys: KeyAuthority,
        settings: Settings,
        middleware: Sequence[Middleware] = (),
    ) -> None:
        self.litestar = litestar
        self._check_answers: CheckAnswers = litestar.state["check_answers"]  # the route's too
        self._system = system
        self._keys = keys
        self._settings = settings
        # AUTH-6 b: in observe mode the check is Platform-only; Litestar answers the 403.
        self._serves_check = settings.account_mode != "observe"
        self._app = _wrapped(self._dispatch, middleware)
        self.without_fast_path = _wrapped(self._litestar, middleware)
        """The same app with every request left to Litestar: what the fast path must be
        indistinguishable from."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)

    async def _litestar(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.litestar(scope, receive, send)  # read late: tests replace `litestar`

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP and _routed_as_litestar_would(scope):
            method, path = scope["method"], scope["path"]
            if method == "GET" and path.startswith(_CHECK_PREFIX) and self._serves_check:
                if await self._check(scope, path, send):
                    return
            elif method == "GET" and path.startswith(_OM_CUSTOMERS):
                if await self._om_value(scope, path, send):
                    return
            elif method == "POST" and path == _EVENTS_PATH:
                unread = await self._ingest(scope, receive, send)
                if unread is None:
                    return
                receive = unread
            elif method == "POST" and path.startswith(_RESERVATIONS_PATH):
                unread = await self._reservation(scope, path, receive, send)
                if unread is None:
                    return
                receive = unread
        await self.litestar(scope, receive, send)

    async def _check(self, scope: HTTPScope, path: str, send: Send) -> bool:
        """True when answered; False leaves the request to Litestar."""
        customer, _, feature = path[len(_CHECK_PREFIX) :].partition("/")
        if not customer or not feature or "/" in feature:
            return False
        key = self._authorised(scope, "client:read")
        if key is None:
            return False
        shard = self._system.route(key.environment)
        scope["path_template"] = _CHECK_TEMPLATE
        try:  # `_answer`, inlined: the check is the call made on every request of an app
            status, body = 200, await check(shard, self._check_answers, customer, feature)
            extra: dict[str, str] = {}
        except Exception as exc:  # the same table as Litestar's exception handlers
            status, body, extra = failure_of(exc, path)
        await _send(send, status, body, extra)
        return True

    async def _om_value(self, scope: HTTPScope, path: str, send: Send) -> bool:
        """OpenMeter's customer value and access (OM-138), as `_check`: True when answered.
        A query (`?time=`) is Litestar's to parse, so only the plain reads are served here."""
        parts = path[len(_OM_CUSTOMERS) :].split("/")
        is_value = (
            len(parts) == 4  # customer, "entitlements", feature, "value"
            and parts[1] == "entitlements"
            and parts[3] == "value"
            and bool(parts[2])
        )
        is_access = len(parts) == 2 and parts[1] == "access"  # customer, "access"
        if not (is_value or is_access) or not parts[0] or scope["query_string"]:
            return False
        key = self._authorised(scope, "client:read")
        if key is None:
            return False
        shard = self._system.route(key.environment)
        scope["path_template"] = _OM_VALUE_TEMPLATE if is_value else _OM_ACCESS_TEMPLATE
        try:
            if is_value:
                body = await customer_value(shard, parts[0], parts[2])
            else:
                body = await customer_access(shard, parts[0])
            status, extra, media = 200, {}, _JSON
        except Exception as exc:  # the OpenMeter router's handlers, as bytes
            problem = as_problem(exc, f"GET {path}")
            status, body, extra = problem.status, problem_body(problem, path), problem.headers
            media = (b"content-type", PROBLEM_JSON.encode())
        await _send(send, status, body, extra, media)
        return True

    async def _ingest(self, scope: HTTPScope, receive: Receive, send: Send) -> Receive | None:
        """None when answered; otherwise the `receive` Litestar must read the request from."""
        key = self._authorised(scope, "client:write")
        if key is None:
            return receive
        headers: list[bytes] = []
        content_type = None
        for name, value in scope["headers"]:  # one pass; most requests carry a handful
            if name == b"x-idempotency-key":
                headers.append(value)
            elif name == b"content-type":
                content_type = value
        # A second key header, or a body that may not be JSON (OPS-K9: Litestar answers 415
        # for a non-empty one): Litestar's route decides.
        if len(headers) > 1 or not json_media_type(content_type):
            return receive
        messages, body = await _read_body(receive, self._settings.request_body_size_max)
        if body is None:
            return _replaying(messages, receive)
        header = headers[0].decode("latin-1") if headers else None
        shard = self._system.route(key.environment)
        scope["path_template"] = _EVENTS_TEMPLATE
        answer = ingest(shard, self._settings, self._system.clock, body, header)
        await _answer(send, answer, _EVENTS_PATH)
        return None

    async def _reservation(
        self, scope: HTTPScope, path: str, receive: Receive, send: Send
    ) -> Receive | None:
        """createReservation and commitReservation, as `_ingest`: None when answered."""
        reservation_id = _committed_id(path)
        if reservation_id is None:
            return receive  # another reservation route, or a path Litestar does not match
        key = self._authorised(scope, "client:write")
        if key is None:
            return receive
        types = [value for name, value in scope["headers"] if name == b"content-type"]
        if len(types) > 1 or not json_media_type(types[0] if types else None):
            return receive  # OPS-K9: Litestar's route judges what may not be JSON
        messages, body = await _read_body(receive, self._settings.request_body_size_max)
        if body is None:
            return _replaying(messages, receive)
        shard = self._system.route(key.environment)
        if reservation_id:
            scope["path_template"] = _COMMIT_TEMPLATE
            clock = self._system.clock
            answer = commit(shard, self._settings, clock, reservation_id, body)
        else:
            scope["path_template"] = _RESERVE_TEMPLATE
            answer = reserve(shard, self._settings, body)
        await _answer(send, answer, path)
        return None

    def _authorised(self, scope: HTTPScope, needed: str) -> ApiKey | None:
        """The caller's key when it holds `needed` (AUTH-1..AUTH-4)."""
        presented = presented_key(scope)
        key = self._keys.authenticate(presented) if presented else None
        return key if key is not None and needed in key.scopes else None


def _wrapped(app: ASGIApp, middleware: Sequence[Middleware]) -> ASGIApp:
    for wrap in reversed(middleware):
        app = wrap(app)
    return app


def valid_host(host: bytes) -> bool:
    """Whether Litestar's router accepts `host` as a Host header (it answers 400 otherwise).

    Args:
        host: the header's raw value.

    Returns:
        True when every byte is a host character; an empty value is valid.
    """
    # translate(None, _HOST_CHARS) deletes every host character: anything left is not one.
    return not host.translate(None, _HOST_CHARS)


def _committed_id(path: str) -> str | None:
    """ "" for `POST /reservations`, the id for `POST /reservations/{id}/commit`, else None
    (an id with a "/" is not one Litestar's route matches)."""
    rest = path[len(_RESERVATIONS_PATH) :]
    if not rest:
        return ""
    if not (rest[0] == "/" and rest.endswith(_COMMIT_SUFFIX)):
        return None
    reservation_id = rest[1 : -len(_COMMIT_SUFFIX)]
    return reservation_id if reservation_id and "/" not in reservation_id else None


def _routed_as_litestar_would(scope: HTTPScope) -> bool:
    """Litestar refuses a malformed Host header (400) and strips a root path before routing;
    such requests are left to it."""
    if scope.get("root_path"):
        return False
    for name, value in scope["headers"]:  # a loop, not next(generator): once per request
        if name == b"host":
            return valid_host(value)
    return True


async def _answer(send: Send, answer: Awaitable[tuple[int, bytes]], path: str) -> None:
    try:
        status, body = await answer
        extra: dict[str, str] = {}
    except Exception as exc:  # the same table as Litestar's exception handlers
        status, body, extra = failure_of(exc, path)
    await _send(send, status, body, extra)


async def _send(
    send: Send,
    status: int,
    body: bytes,
    extra: dict[str, str],
    media: tuple[bytes, bytes] = _JSON,
) -> None:
    headers = [media, (b"content-length", str(len(body)).encode())]
    if extra:  # only failures carry more headers
        headers.extend((name.encode(), value.encode()) for name, value in extra.items())
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": status,
        "headers": headers,
    }
    await send(start)
    end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
    await send(end)


async def _read_body(receive: Receive, size_max: int) -> tuple[list[ReceiveMessage], bytes | None]:
    """The messages read and the whole body, or None for a body Litestar must judge (too
    large, or the client went away)."""
    messages: list[ReceiveMessage] = []
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > size_max:
            return messages, None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return messages, b"".join(chunks)


def _replaying(messages: list[ReceiveMessage], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> ReceiveMessage:
        return pending.pop(0) if pending else await receive()

    return cast("Receive", replay)
