"""Every console route passes `ConsoleGuard`: a session, a CSRF token, security headers.

Routes marked `opt={"console_public": True}` (the sign-in page) need no session; every other
route needs a live session whose key still authenticates with the admin scope (CON-6), else a
browser is sent to the sign-in page. Every unsafe method, on every route, needs the CSRF token
(CON-9, CON-10): the session's for a signed-in route, the sign-in cookie's for the sign-in
form. A request from another origin is refused before anything else (CON-11).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar import Request
from litestar.datastructures import MutableScopeHeaders
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from allotment.console.sessions import Session, SessionStore, tokens_equal
from allotment.runtime.ports import KeyAuthority

__all__ = (
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "SIGN_IN_COOKIE",
    "ConsoleGuard",
    "ConsoleRefused",
    "NotSignedIn",
    "session_of",
)

SESSION_COOKIE = "allotment_console"
SIGN_IN_COOKIE = "allotment_console_sign_in"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Every byte from this server (CON-12): no CDN, no inline script, no framing. Inline style
# attributes are allowed for CSS bar widths; scripts are only the vendored files.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)
_HEADERS = (
    (b"content-security-policy", _CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),  # pages show billing data: never kept by the browser
)


class ConsoleRefused(Exception):
    """A console request refused with `status`; the page says `message`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class NotSignedIn(Exception):
    """No live session: the browser goes to the sign-in page, then back to `next_path`."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def session_of(scope: Scope) -> Session:
    session = scope["state"].get("console_session")
    assert isinstance(session, Session), "console route reached without a session"
    return session


def sign_in_location(next_path: str) -> str:
    return f"/console/sign-in?next={quote(next_path, safe='/')}"


class ConsoleGuard(ASGIMiddleware):
    """Sessions and CSRF for the console router (see the module docstring). The session store
    and the keys are the app's (`app.state`): Litestar copies a router's middleware when it
    registers the router, so an instance must not hold state of its own."""

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        request: Request[Any, Any, Any] = Request(scope, receive)
        _same_origin(request)
        handler = scope.get("route_handler")
        public = handler is not None and handler.opt.get("console_public", False)
        if public:
            expected = request.cookies.get(SIGN_IN_COOKIE)
        else:
            session = _live_session(request)
            scope["state"]["console_session"] = session
            expected = session.csrf_token
        if request.method not in _SAFE_METHODS:
            await _check_csrf(request, expected)
        await next_app(scope, receive, _with_headers(send))


def _live_session(request: Request[Any, Any, Any]) -> Session:
    """CON-6: the cookie's session, while its key still authenticates with the admin scope."""
    sessions: SessionStore = request.app.state["console_sessions"]
    keys: KeyAuthority = request.app.state["keys"]
    token = request.cookies.get(SESSION_COOKIE)
    session = sessions.find(token)
    if session is not None:
        key = keys.authenticate(session.key)
        if key is not None and "admin" in key.scopes:
            return session
        sessions.close(token)  # revoked, or its scopes changed: sign in again
    path = request.url.path
    raise NotSignedIn(path if request.method in _SAFE_METHODS else "/console/")


async def _check_csrf(request: Request[Any, Any, Any], expected: str | None) -> None:
    """CON-9: the token from the form field, or the header htmx sends, must match."""
    presented = request.headers.get(CSRF_HEADER)
    if presented is None and request.content_type[0] in {
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    }:
        value = (await request.form()).get(CSRF_FIELD)
        presented = value if isinstance(value, str) else None
    if expected is None or not tokens_equal(presented, expected):
        raise ConsoleRefused(
            403, "This form is out of date or did not come from the console. Reload the page."
        )


def _same_origin(request: Request[Any, Any, Any]) -> None:
    """CON-11: a browser names the page's origin on every unsafe request; another origin's is
    refused even before the token is looked at."""
    origin = request.headers.get("origin")
    if origin is None or request.method in _SAFE_METHODS:
        return
    own = f"{request.url.scheme}://{request.headers.get('host', '')}"
    if origin != own:
        raise ConsoleRefused(403, "Requests to the console must come from the console.")


def _with_headers(send: Send) -> Send:
    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableScopeHeaders.from_message(message)
            for name, value in _HEADERS:
                headers.add(name.decode(), value.decode())
        await send(message)

    return send_with_headers
