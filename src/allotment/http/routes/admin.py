"""The admin API: catalog, credit grants and the manual clock. Admin-scoped keys only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from litestar import Response, get, post, put

from allotment.domain.catalog import Catalog
from allotment.domain.catalog_rules import CatalogInvalid
from allotment.domain.commands import GrantCredits
from allotment.domain.credits import GrantSource
from allotment.domain.replies import Rejected
from allotment.http.catalog_document import (
    CATALOG_ENCODER,
    CatalogDocument,
    CatalogDocumentInvalid,
    reported,
)
from allotment.http.catalog_mapping import from_catalog, to_catalog_update
from allotment.http.context import (
    AnyRequest,
    documents_body,
    errors,
    json_body,
    shard_of,
    system_of,
)
from allotment.http.errors import ApiError, encoded_response, json_response, raise_rejection
from allotment.http.mapping.credits import pool_dto
from allotment.http.schemas import AdminCreditGrantRequest, ClockAdvanceRequest
from allotment.http.validation import check_decimal, decode_body
from allotment.runtime.ports import CustomerLookup, Shard
from allotment.runtime.system import ActorSystem, ClockNotManual, ClockNotSaved
from allotment.webhooks.ports import WebhookAdmin

__all__ = (
    "advance_clock",
    "get_catalog",
    "get_clock",
    "get_statistics",
    "grant_credits",
    "move_clock",
    "put_catalog",
    "save_catalog",
    "snapshot_analytics",
)

_ADMIN = {"scope": "admin"}
_NOT_MANUAL = "The clock can only be read or moved when the server runs with --clock manual."


def _ok(data: Any, status: int = 200) -> Response[dict[str, Any]]:
    return json_response({"success": True, "data": data}, status)


@get("/catalog", operation_id="getCatalog", opt=_ADMIN, responses=errors(401, 403))
async def get_catalog(request: AnyRequest) -> Response[dict[str, Any]]:
    return _catalog_ok(shard_of(request).catalog)


@put(
    "/catalog",
    operation_id="upsertCatalog",
    opt=_ADMIN,
    dependencies=documents_body(CatalogDocument),
    responses=errors(400, 401, 403),
)
async def put_catalog(request: AnyRequest) -> Response[dict[str, Any]]:
    body = await json_body(request)
    try:
        catalog = await save_catalog(shard_of(request), body, system_of(request).clock.now())
    except CatalogDocumentInvalid as invalid:
        raise _invalid_catalog(invalid) from None
    return _catalog_ok(catalog)


async def save_catalog(shard: Shard, body: bytes, now: datetime) -> Catalog:
    """Decode, check and save a catalog document: upsertCatalog's whole path, which the
    console's catalog editor takes too (docs/console.md CON-52).

    Raises:
        ApiError: 400, the body is not a catalog document (the field named).
        CatalogDocumentInvalid: every problem, in the document's words; nothing changed.
    """
    document = decode_body(body, CatalogDocument)
    try:
        update = to_catalog_update(document, now)  # ids, "inf": found before the domain's rules
        return await shard.upsert_catalog(update)
    except CatalogInvalid as invalid:  # PLN-10, PLN-12, named in the document's words
        raise reported(invalid) from None


def _invalid_catalog(invalid: CatalogDocumentInvalid) -> ApiError:
    return ApiError(400, f"Invalid catalog: {invalid.errors[0]}", "; ".join(invalid.errors))


def _catalog_ok(catalog: Catalog) -> Response[dict[str, Any]]:
    body = CATALOG_ENCODER.encode({"success": True, "data": from_catalog(catalog)})
    response: Response[dict[str, Any]] = encoded_response(body)
    return response


@post(
    "/credits/grants",
    operation_id="grantCredits",
    status_code=201,
    opt=_ADMIN,
    dependencies=documents_body(AdminCreditGrantRequest),
    responses=errors(400, 401, 403, 404),
)
async def grant_credits(request: AnyRequest) -> Response[dict[str, Any]]:
    body = decode_body(await json_body(request), AdminCreditGrantRequest)
    amount = check_decimal("amount", body.amount, positive=True)
    lookup = CustomerLookup(external_id=body.customerReferenceId)
    shard = shard_of(request)
    command = GrantCredits(
        denomination=body.denomination,
        amount=amount,
        source=GrantSource(body.source),
        expires_at=body.expiresAt.astimezone(UTC) if body.expiresAt else None,  # API-7
    )
    reply = await shard.command(lookup, command)
    if isinstance(reply, Rejected):
        raise_rejection(reply)
    pool = await shard.read(
        lookup,
        lambda state, _c, _n: pool_dto(
            state.pools[body.denomination],
            grants=True,
            transactions=True,
            reserved=state.held_credits.get(body.denomination, Decimal(0)),  # RSV-9
        ),
    )
    return _ok(pool, 201)


@post(
    "/snapshots",
    operation_id="snapshotAnalytics",
    status_code=201,
    opt=_ADMIN,
    responses=errors(400, 401, 403),
)
async def snapshot_analytics(request: AnyRequest) -> Response[dict[str, Any]]:
    """Write a fresh analytics.duckdb now and return what it holds."""
    system = system_of(request)
    if not system.analytics_enabled:
        raise ApiError(
            400,
            "Analytics snapshots need a data directory; this server keeps state in memory only.",
        )
    return _ok(await system.snapshot_analytics(), 201)


@get("/statistics", operation_id="getStatistics", opt=_ADMIN, responses=errors(401, 403))
async def get_statistics(request: AnyRequest) -> Response[dict[str, Any]]:
    """The server's clock and each environment's figures (customers, event keys, buffers and
    their drops, journal state): what `/health` showed before it went public-status-only
    (OPS-K8)."""
    system = system_of(request)
    # Awaited: on Ray the shards' figures are other processes' (SCL-91), read as of now.
    data: dict[str, Any] = {"now": system.clock.now(), "shards": await system.current_statistics()}
    webhooks = request.app.state.get("webhooks")
    if webhooks is not None:  # each endpoint's backlog against its cap (WHK-D27)
        data["webhooks"] = webhooks.statistics()
    return _ok(data)


def _clock_data(request: AnyRequest) -> dict[str, Any]:
    return {"now": system_of(request).clock.now(), "mode": "manual"}


@get("/clock", operation_id="getClock", opt=_ADMIN, responses=errors(400, 401, 403))
async def get_clock(request: AnyRequest) -> Response[dict[str, Any]]:
    if not system_of(request).clock.manual:
        raise ApiError(400, _NOT_MANUAL)
    return _ok(_clock_data(request))


@post(
    "/clock/advance",
    operation_id="advanceClock",
    status_code=200,
    opt=_ADMIN,
    dependencies=documents_body(ClockAdvanceRequest),
    responses=errors(400, 401, 403, 503),
)
async def advance_clock(request: AnyRequest) -> Response[dict[str, Any]]:
    system = system_of(request)
    if not system.clock.manual:
        raise ApiError(400, _NOT_MANUAL)
    body = decode_body(await json_body(request), ClockAdvanceRequest)
    if (body.seconds is None) == (body.to is None):
        raise ApiError(400, "Invalid request body: send exactly one of 'seconds' or 'to'.")
    now = system.clock.now()
    target = (  # API-7: an offset in `to` is normalised, so every timestamp leaves in UTC
        now + timedelta(seconds=body.seconds)
        if body.seconds is not None
        else body.to.astimezone(UTC)
        if body.to is not None
        else None
    )
    assert target is not None
    updated = await move_clock(system, target, request.app.state.get("webhooks"))
    return _ok({**_clock_data(request), "customersUpdated": updated})


async def move_clock(system: ActorSystem, target: datetime, webhooks: WebhookAdmin | None) -> int:
    """advanceClock's move, which the console's clock page makes too (docs/console.md
    CON-68): the manual clock to `target`, everything due applied; the number of customers
    that had something due.

    Raises:
        ApiError: 400, not a manual clock or `target` is past; 503, the time was not saved.
    """
    try:
        updated = await system.advance_clock(target)
    except ClockNotManual:
        raise ApiError(400, _NOT_MANUAL) from None
    except ValueError:
        raise ApiError(400, "Invalid field 'to': the clock only moves forward.") from None
    except ClockNotSaved as error:  # OPS-D4: nothing moved
        raise ApiError(503, f"The clock did not move: {error}.") from None
    if webhooks is not None:  # retries falling due in the jump go now, not at the next poll
        webhooks.wake()
    return updated
