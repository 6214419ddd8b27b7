"""What the client raises: one tree, so a caller can catch `AllotmentError` and nothing leaks
from httpx or msgspec.

`ApiError` carries the server's error envelope (`{"success": false, "error": {...}}`) with the
HTTP status; its subclasses name the statuses a caller branches on. `ReservationDenied` is not
an HTTP failure (the server answers 200 with `isAllowed: false`): it is how the reservation
context manager refuses to run its body without a hold (RSV-42).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from allotment.client.reservation_models import Reservation

__all__ = (
    "AllotmentError",
    "ApiError",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "NotFound",
    "RateLimited",
    "ReservationDenied",
    "ServerError",
    "ServiceUnavailable",
    "TransportError",
    "Unauthorized",
    "UnexpectedResponse",
    "api_error_of",
)

# The server names the offending field in its message (API-10): "Invalid field 'track.x': ..."
# or "Invalid query 'cancelMode': ..."; an explicit `field` in the body wins over this.
_FIELD_IN_MESSAGE = re.compile(r"^Invalid (?:field|query) '(?P<field>[^']+)'")


class AllotmentError(Exception):
    """Anything the client raises on purpose; catch this to catch them all."""


class TransportError(AllotmentError):
    """The request did not get an answer (connection refused, timeout, reset). The operation
    may or may not have happened: retry with the same idempotency key or reservation id."""


class UnexpectedResponse(AllotmentError):
    """A success status with a body the client cannot read: a proxy in the way, or a server
    of another version. `status` and `body` say what came back."""

    def __init__(self, status: int, body: bytes, reason: str) -> None:
        super().__init__(f"unexpected response {status}: {reason}")
        self.status = status
        self.body = body


class ApiError(AllotmentError):
    """The server refused the request and said why, in its error envelope.

    Attributes:
        status: the HTTP status.
        message: the server's human-readable message.
        detail: the server's extra context, when it gave one.
        code: the server's machine-readable code, when it gives one (None otherwise).
        field: the request field at fault: the body's `field`, or the one the message names.
        retry_after_s: the `Retry-After` header in seconds (429 and 503), else None.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        detail: str | None = None,
        code: str | None = None,
        field: str | None = None,
        retry_after_s: int | None = None,
    ) -> None:
        super().__init__(f"{status}: {message}" + (f" ({detail})" if detail else ""))
        self.status = status
        self.message = message
        self.detail = detail
        self.code = code
        self.field = field
        self.retry_after_s = retry_after_s


class BadRequest(ApiError):
    """400: the request is invalid; `field` names what to fix. Nothing changed on the server."""


class Unauthorized(ApiError):
    """401: the API key is missing, unknown or revoked."""


class Forbidden(ApiError):
    """403: the API key lacks the scope (or environment) this operation needs."""


class NotFound(ApiError):
    """404: the customer, subscription, invoice or reservation does not exist."""


class Conflict(ApiError):
    """409: the request contradicts the state, e.g. an id reused with a different body, or a
    commit over the hold with `overage: reject`. Nothing changed on the server."""


class RateLimited(ApiError):
    """429: too many requests; wait `retry_after_s` (when given) and retry."""


class ServiceUnavailable(ApiError):
    """503: the server is recovering or overloaded; retry after `retry_after_s`."""


class ServerError(ApiError):
    """5xx other than 503: a fault on the server (or at Stripe, for 502)."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    429: RateLimited,
    503: ServiceUnavailable,
}


class _ErrorBody(msgspec.Struct, kw_only=True):
    message: str
    detail: str | None = None
    code: str | None = None
    field: str | None = None


class _ErrorEnvelope(msgspec.Struct, kw_only=True):
    error: _ErrorBody


def api_error_of(status: int, body: bytes, retry_after: str | None) -> ApiError:
    """The typed exception for a failed response (status >= 400).

    Args:
        status: the HTTP status.
        body: the response body, the error envelope when the server wrote it.
        retry_after: the `Retry-After` header, if any.

    Returns:
        The `ApiError` subclass for `status`, carrying the envelope's fields; a body that is
        not the envelope (a proxy's page) becomes the message, cut short.
    """
    try:
        error = msgspec.json.decode(body, type=_ErrorEnvelope).error
    except (msgspec.DecodeError, msgspec.ValidationError):
        text = body.decode("utf-8", "replace").strip()[:200] or f"HTTP {status}"
        error = _ErrorBody(message=text)
    field = error.field
    if field is None and (named := _FIELD_IN_MESSAGE.match(error.message)) is not None:
        field = named.group("field")
    kind = _BY_STATUS.get(status, ServerError if status >= 500 else ApiError)
    seconds = int(retry_after) if retry_after is not None and retry_after.isdigit() else None
    return kind(
        status,
        error.message,
        detail=error.detail,
        code=error.code,
        field=field,
        retry_after_s=seconds,
    )


class ReservationDenied(AllotmentError):
    """The server did not grant the hold (it answered `isAllowed: false`); nothing is held.

    Raised by `reserve` so that a `with client.reserve(...)` body (the expensive call) never
    runs without a hold (RSV-42). `decision` is the server's answer, with the reason and the
    usage as it stands.
    """

    def __init__(self, decision: Reservation) -> None:
        features = ", ".join(item.feature_key for item in decision.items)
        super().__init__(f"reservation denied ({features}): {decision.reason or 'not allowed'}")
        self.decision = decision
