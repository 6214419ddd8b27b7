"""Authentication and authorisation, before validation and lookup (AUTH-1..AUTH-8).

Each route declares in `opt` what it needs: `scope` ("client:read", "client:write", "admin"),
`platform` (a Platform-only operation, AUTH-6 b) or `public` (no key at all).
"""

from __future__ import annotations

from typing import cast

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, HTTPScope, Receive, Scope, Send

from allotment.http.errors import ApiError
from allotment.runtime.ports import ApiKey, KeyAuthority

__all__ = ("ApiKeyMiddleware", "api_key_of", "presented_key")

UNAUTHORIZED = "Invalid or missing API key."
FORBIDDEN = "Access denied."
_PLATFORM_ONLY = "This operation is Platform-only and the account is in Observe mode."
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def api_key_of(scope: Scope) -> ApiKey:
    key = scope["state"].get("api_key")
    assert isinstance(key, ApiKey), "route reached without authentication"
    return key


def presented_key(scope: Scope) -> str | None:
    """AUTH-2/AUTH-3: Bearer wins when both headers are present."""
    bearer = x_api_key = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer":
                bearer = token.strip()
        elif name == b"x-api-key":
            x_api_key = value.decode("latin-1").strip()
    return bearer if bearer is not None else x_api_key


class ApiKeyMiddleware(ASGIMiddleware):
    def __init__(self, keys: KeyAuthority, account_mode: str) -> None:
        self._keys = keys
        self._observe = account_mode == "observe"

    def should_bypass_for_scope(self, scope: Scope) -> bool:
        """The OpenAPI document and its viewers are public; so is anything not HTTP."""
        return scope["type"] != ScopeType.HTTP or scope["path"].startswith("/schema")

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        handler = scope.get("route_handler")
        opt = handler.opt if handler is not None else {}
        if opt.get("public") or handler is None:
            await next_app(scope, receive, send)
            return
        presented = presented_key(scope)
        key = self._keys.authenticate(presented) if presented else None
        if key is None:
            raise ApiError(401, UNAUTHORIZED)  # AUTH-5: never says which case applied
        needed = opt.get("scope") or (
            "client:write"
            if cast("HTTPScope", scope)["method"] in _WRITE_METHODS
            else "client:read"
        )
        if needed not in key.scopes:  # OPS-K6: the canonical message, and what is missing
            raise ApiError(403, FORBIDDEN, f"This API key lacks the '{needed}' scope.")
        if self._observe and opt.get("platform"):
            raise ApiError(403, FORBIDDEN, _PLATFORM_ONLY)
        scope["state"]["api_key"] = key
        await next_app(scope, receive, send)
