"""The admin API for API keys (OPS-K1..OPS-K4): list, create, revoke, for admin keys only.

An admin key manages the keys of its own environment: a sandbox admin key neither sees nor
revokes a live key (API-12). A change applies to the very next request, in this server and
in `allotment keys list`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Response, delete, get, post
from litestar.params import FromPath
from msgspec import Meta

from allotment.http.auth import api_key_of
from allotment.http.context import AnyRequest, documents_body, errors, json_body, keys_of
from allotment.http.errors import ApiError, json_response
from allotment.http.validation import decode_body
from allotment.runtime.ports import ApiKey, KeyRefused

__all__ = ("create_key", "list_keys", "revoke_key")

_ADMIN = {"scope": "admin"}
Scope = Literal["client:read", "client:write", "admin"]


class KeyCreateRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=64)]
    scopes: Annotated[list[Scope], Meta(min_length=1)] | None = None  # every scope if absent


class KeyDto(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str  # the key's first 16 characters; never the key, never its hash
    name: str
    environment: str
    scopes: list[str]
    status: Literal["ACTIVE", "REVOKED"]
    createdAt: datetime
    lastUsedAt: datetime | None = None  # to within a minute (OPS-K5)
    revokedAt: datetime | None = None
    key: str | None = None  # only in the reply that creates it


def _dto(record: ApiKey, key: str | None = None) -> KeyDto:
    return KeyDto(
        id=record.key_id, name=record.name, environment=record.environment,
        scopes=list(record.scopes), status="ACTIVE" if record.revoked_at is None else "REVOKED",
        createdAt=record.created_at, lastUsedAt=record.last_used_at,
        revokedAt=record.revoked_at, key=key,
    )  # fmt: skip


def _ok(data: Any, status: int = 200) -> Response[dict[str, Any]]:
    return json_response({"success": True, "data": data}, status)


@get("/keys", operation_id="listApiKeys", opt=_ADMIN, responses=errors(401, 403))
async def list_keys(request: AnyRequest) -> Response[dict[str, Any]]:
    """The keys of the caller's environment, revoked ones included, oldest first."""
    environment = api_key_of(request.scope).environment
    records = await keys_of(request).list_keys()
    return _ok([_dto(r) for r in records if r.environment == environment])


@post(
    "/keys",
    operation_id="createApiKey",
    status_code=201,
    opt=_ADMIN,
    dependencies=documents_body(KeyCreateRequest),
    responses=errors(400, 401, 403),
)
async def create_key(request: AnyRequest) -> Response[dict[str, Any]]:
    """Create a key in the caller's environment. The reply's `key` is the only time the key
    is shown; only its hash is stored."""
    body = decode_body(await json_body(request), KeyCreateRequest)
    scopes = tuple(body.scopes) if body.scopes else ("client:read", "client:write", "admin")
    environment = api_key_of(request.scope).environment
    try:
        key, record = await keys_of(request).create_key(body.name, scopes, environment)
    except KeyRefused as refused:
        raise ApiError(400, f"Invalid field 'name': {refused.message}.") from None
    return _ok(_dto(record, key), 201)


@delete(
    "/keys/{keyId:str}",
    operation_id="revokeApiKey",
    status_code=200,
    opt=_ADMIN,
    responses=errors(400, 401, 403, 404, 409),  # 400 declared, or Litestar documents its own
)
async def revoke_key(request: AnyRequest, keyId: FromPath[str]) -> Response[dict[str, Any]]:
    """Revoke a key of the caller's environment by id (or by its name, when one active key
    has it). The key gets 401 from the next request on. Revoking the key making the call is
    allowed: it is the last request that key makes."""
    keys = keys_of(request)
    environment = api_key_of(request.scope).environment
    mine = [r for r in await keys.list_keys() if r.environment == environment]
    found = [r for r in mine if r.key_id == keyId] or [
        r for r in mine if r.name == keyId and r.revoked_at is None
    ]
    if not found:  # another environment's keys do not exist here (API-12)
        raise ApiError(404, "API key not found.")
    if len(found) > 1:
        ids = ", ".join(r.key_id for r in found)
        raise ApiError(409, f"{len(found)} active keys are named {keyId!r} ({ids}): give an id.")
    try:
        record = await keys.revoke_key(found[0].key_id)
    except KeyRefused as refused:  # revoked by hand meanwhile
        raise ApiError(refused.status, f"{refused.message}.") from None
    return _ok(_dto(record))
