"""What a route needs from the app: the caller's shard, settings and the system."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.di import Provide
from litestar.openapi.datastructures import ResponseSpec

from allotment.config import Settings
from allotment.http.auth import api_key_of
from allotment.http.check_answers import CheckAnswers
from allotment.http.schemas import ApiResponseError
from allotment.http.validation import check_media_type
from allotment.runtime.checkout import CheckoutService
from allotment.runtime.ports import KeyAdmin, Shard
from allotment.runtime.system import ActorSystem

__all__ = (
    "checkout_of",
    "documents_body",
    "errors",
    "json_body",
    "keys_of",
    "settings_of",
    "shard_of",
    "system_of",
)

AnyRequest = Request[Any, Any, Any]

_DESCRIPTIONS = {
    400: "Invalid request or state; `error.message` names the field",
    401: "Invalid or missing API key.",
    403: "Access denied. `error.detail` names the scope the key lacks.",
    404: "Referenced resource not found",
    409: "Duplicate, or a conflict the message names",
    415: "The body is not `application/json`",
    502: "The payment provider failed; nothing changed; `error.message` has its words",
    503: "Unavailable for now; nothing changed; `error.message` says why. Retry later",
}


def system_of(request: AnyRequest) -> ActorSystem:
    system: ActorSystem = request.app.state["system"]
    return system


def settings_of(request: AnyRequest) -> Settings:
    settings: Settings = request.app.state["settings"]
    return settings


def checkout_of(request: AnyRequest) -> CheckoutService:
    service: CheckoutService = request.app.state["checkout"]
    return service


async def json_body(request: AnyRequest) -> bytes:
    """The body of a JSON route, refused with 415 unless it is JSON (OPS-K9)."""
    body = await request.body()
    headers = request.scope["headers"]
    check_media_type(body, next((v for n, v in headers if n == b"content-type"), None))
    return body


def keys_of(request: AnyRequest) -> KeyAdmin:
    keys: KeyAdmin = request.app.state["keys"]
    return keys


def check_answers_of(request: AnyRequest) -> CheckAnswers:
    answers: CheckAnswers = request.app.state["check_answers"]
    return answers


def shard_of(request: AnyRequest) -> Shard:
    """The shard of the caller's environment: sandbox and live keys see disjoint data."""
    return system_of(request).route(api_key_of(request.scope).environment)


def errors(*codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for error responses, all in the error envelope."""
    return {
        # No generated examples: they are random, and showed `success: true` on errors.
        code: ResponseSpec(
            data_container=ApiResponseError,
            description=_DESCRIPTIONS[code],
            generate_examples=False,
        )
        for code in codes
    }


def documents_body(body_type: type[Any]) -> dict[str, Provide]:
    """A dependency that is never resolved and exists only so the OpenAPI document shows the
    request body: handlers decode the raw body themselves, strictly and with exact decimals."""

    def body(data: Any) -> None:
        raise AssertionError("documentation only")

    body.__annotations__["data"] = body_type
    return {"request_body_schema": Provide(body, sync_to_thread=False)}
