"""Reservations: reserve, read, commit, release, extend, list (docs/reservations.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, NoReturn

from litestar import Response, get, post
from litestar.params import FromPath, QueryParameter

from allotment.config import Settings
from allotment.domain.catalog import Catalog
from allotment.domain.commands import (
    CommitReservation,
    CommitUnits,
    CostInput,
    ExtendReservation,
    HoldItem,
    ReleaseReservation,
    Reserve,
)
from allotment.domain.money import round_usage
from allotment.domain.replies import (
    Committed,
    Rejected,
    Reply,
    ReservationShown,
    Reserved,
    ReserveDenied,
)
from allotment.domain.reservation_state import HoldStatus, Overage, Reservation
from allotment.domain.state import CustomerState
from allotment.http.context import (
    AnyRequest,
    documents_body,
    errors,
    json_body,
    settings_of,
    shard_of,
    system_of,
)
from allotment.http.errors import (
    ENCODER,
    ApiError,
    encoded_response,
    json_response,
    raise_rejection,
)
from allotment.http.mapping.reservations import commit_dto, denied_dto, reservation_dto
from allotment.http.schemas.reservations import (
    ApiResponseReservation,
    ApiResponseReservationCommit,
    ApiResponseReservationList,
    ReservationCommitRequest,
    ReservationExtendRequest,
    ReservationReleaseRequest,
    ReservationRequest,
)
from allotment.http.validation import check_decimal, decode_body
from allotment.runtime.clock import Clock
from allotment.runtime.ids import new_id
from allotment.runtime.ports import CustomerLookup, Shard

__all__ = (
    "commit",
    "commit_reservation",
    "create_reservation",
    "extend_reservation",
    "get_reservation",
    "list_customer_reservations",
    "release_reservation",
    "reserve",
)

_TTL_DEFAULT = 3600  # RSV-2
_TTL_MAX = 86_400
_ID_LENGTH_MAX = 128


def _ttl(value: int | None) -> int:
    ttl = _TTL_DEFAULT if value is None else value
    if not 1 <= ttl <= _TTL_MAX:
        raise ApiError(400, f"Invalid field 'ttlSeconds': must be an integer 1..{_TTL_MAX}.")
    return ttl


def _hold_items(body: ReservationRequest) -> tuple[HoldItem, ...]:
    """RSV-3: `featureKey` + `units`, or `items`; every `units` positive."""
    if body.items is not None:
        if body.featureKey is not None or body.units is not None:
            raise ApiError(400, "Invalid field 'items': send items, or featureKey and units.")
        if not 1 <= len(body.items) <= 20:
            raise ApiError(400, "Invalid field 'items': between 1 and 20 items.")
        pairs = [(i.featureKey, i.units, f"items[{n}].units") for n, i in enumerate(body.items)]
    elif body.featureKey is None or body.units is None:
        raise ApiError(400, "Invalid field 'featureKey': featureKey and units are required.")
    else:
        pairs = [(body.featureKey, body.units, "units")]
    return tuple(
        HoldItem(feature_key=key, units=round_usage(check_decimal(name, units, positive=True)))
        for key, units, name in pairs
    )


@post(
    "/reservations",
    operation_id="createReservation",
    status_code=201,
    dependencies=documents_body(ReservationRequest),
    responses=errors(400, 401, 403, 404, 409),
)
async def create_reservation(request: AnyRequest) -> Response[ApiResponseReservation]:
    """RSV-1..RSV-6: 201 held, 200 the same again or not allowed."""
    status, body = await reserve(shard_of(request), settings_of(request), await json_body(request))
    return encoded_response(body, status)


async def reserve(shard: Shard, settings: Settings, raw: bytes) -> tuple[int, bytes]:
    """createReservation's status and encoded answer: shared by the route and the fast path."""
    body = decode_body(raw, ReservationRequest)
    command = Reserve(
        reservation_id=body.reservationId or str(new_id()),
        items=_hold_items(body),
        ttl_seconds=_ttl(body.ttlSeconds),
        overage=Overage(body.overage or "allow"),
        event_name=body.eventName,
        meta=body.meta,
    )
    _check_meta(settings, body.meta)
    lookup = CustomerLookup(external_id=body.customerReferenceId)
    reply = await shard.reserve(lookup, command)
    reference = body.customerReferenceId
    if isinstance(reply, ReserveDenied):
        data = denied_dto(command.reservation_id, reference, reply.items)
        return 200, ENCODER.encode(ApiResponseReservation(success=True, data=data))
    if not isinstance(reply, Reserved):
        _fail(reply)
    data = reservation_dto(reply.reservation, reference)
    status = 200 if reply.repeated else 201
    return status, ENCODER.encode(ApiResponseReservation(success=True, data=data))


def _check_meta(settings: Settings, meta: object) -> None:
    if meta is not None and len(ENCODER.encode(meta)) > settings.event_meta_size_max:
        raise ApiError(400, "Invalid field 'meta': larger than 16 KB when serialised.")


def _fail(reply: Reply) -> NoReturn:
    if isinstance(reply, Rejected):
        raise_rejection(reply)
    raise AssertionError(f"unexpected reply {type(reply).__name__}")


def _customer(reference: str | None) -> CustomerLookup | None:
    return CustomerLookup(external_id=reference) if reference is not None else None


def _path_id(reservation_id: str) -> str:
    if not 1 <= len(reservation_id) <= _ID_LENGTH_MAX:
        raise ApiError(400, f"Invalid path: reservation ids are 1..{_ID_LENGTH_MAX} characters.")
    return reservation_id


def _shown(state: CustomerState, reservation_id: str) -> tuple[Reservation, str | None] | None:
    """None when the catch-up of this very read forgot it (RSV-27: the oldest settled)."""
    reservation = state.reservations.get(reservation_id)
    return (reservation, state.external_id) if reservation is not None else None


@get(
    "/reservations/{reservationId:str}",
    operation_id="getReservation",
    responses=errors(400, 401, 403, 404),
)
async def get_reservation(
    request: AnyRequest,
    reservationId: FromPath[str],
    customerReferenceId: Annotated[
        str | None, QueryParameter(name="customerReferenceId", required=False)
    ] = None,
) -> Response[ApiResponseReservation]:
    """RSV-21."""
    reservation_id = _path_id(reservationId)

    def project(
        state: CustomerState, _c: Catalog, _n: datetime
    ) -> tuple[Reservation, str | None] | None:
        return _shown(state, reservation_id)

    view = await shard_of(request).read_reservation(
        reservation_id, _customer(customerReferenceId), project
    )
    if isinstance(view, Rejected):
        raise_rejection(view)
    if view is None:
        raise ApiError(404, f"Reservation '{reservation_id}' not found.")
    data = reservation_dto(*view)
    return json_response(ApiResponseReservation(success=True, data=data))


def _commit_units(body: ReservationCommitRequest) -> tuple[CommitUnits, ...]:
    """RSV-18: `usageUnits` (+ `featureKey`), or `items`; units never negative."""
    if body.items is not None:
        if body.usageUnits is not None or body.featureKey is not None:
            raise ApiError(400, "Invalid field 'items': send items, or usageUnits.")
        if not body.items:
            raise ApiError(400, "Invalid field 'items': at least one item.")
        pairs: list[tuple[str | None, Decimal, str]] = [
            (i.featureKey, i.usageUnits, f"items[{n}].usageUnits") for n, i in enumerate(body.items)
        ]
    elif body.usageUnits is None:
        raise ApiError(400, "Invalid field 'usageUnits': required (or items).")
    else:
        pairs = [(body.featureKey, body.usageUnits, "usageUnits")]
    return tuple(
        CommitUnits(feature_key=key, usage_units=round_usage(check_decimal(name, units)))
        for key, units, name in pairs
    )


@post(
    "/reservations/{reservationId:str}/commit",
    operation_id="commitReservation",
    status_code=200,
    dependencies=documents_body(ReservationCommitRequest),
    responses=errors(400, 401, 403, 404, 409),
)
async def commit_reservation(
    request: AnyRequest, reservationId: FromPath[str]
) -> Response[ApiResponseReservationCommit]:
    """RSV-12..RSV-18."""
    _path_id(reservationId)  # a bad id is a 400 before the body is judged (a 415)
    raw = await json_body(request)
    clock = system_of(request).clock
    status, body = await commit(shard_of(request), settings_of(request), clock, reservationId, raw)
    return encoded_response(body, status)


async def commit(
    shard: Shard, settings: Settings, clock: Clock, reservation_id: str, raw: bytes
) -> tuple[int, bytes]:
    """commitReservation's status and encoded answer, once durable: shared by the route and
    the fast path."""
    reservation_id = _path_id(reservation_id)
    body = decode_body(raw, ReservationCommitRequest)
    _check_meta(settings, body.meta)
    cost = body.costInput
    cost_input = None
    if cost is not None:
        cost_input = CostInput(
            model=cost.model,
            model_provider=cost.modelProvider,
            input_tokens=cost.inputTokens,
            output_tokens=cost.outputTokens,
        )
    occurred_at = body.occurredAt.astimezone(UTC) if body.occurredAt else None  # API-7
    command = CommitReservation(
        reservation_id=reservation_id,
        items=_commit_units(body),
        occurred_at=occurred_at or clock.now(),
        event_key=body.eventIdempotencyKey.strip() if body.eventIdempotencyKey else None,
        cost_input=cost_input,
        meta=body.meta,
    )
    reply = await shard.settle(reservation_id, command, _customer(body.customerReferenceId))
    if not isinstance(reply, Committed):
        _fail(reply)
    data = commit_dto(reply, body.customerReferenceId or None)
    return 200, ENCODER.encode(ApiResponseReservationCommit(success=True, data=data))


async def _settle_shown(
    request: AnyRequest,
    reservation_id: str,
    command: ReleaseReservation | ExtendReservation,
    reference: str | None,
) -> Response[ApiResponseReservation]:
    reply = await shard_of(request).settle(reservation_id, command, _customer(reference))
    if not isinstance(reply, ReservationShown):
        _fail(reply)
    data = reservation_dto(reply.reservation, reference)
    return json_response(ApiResponseReservation(success=True, data=data))


async def _optional_body(request: AnyRequest) -> bytes:
    raw = await json_body(request)
    return raw if raw.strip() else b"{}"


@post(
    "/reservations/{reservationId:str}/release",
    operation_id="releaseReservation",
    status_code=200,
    dependencies=documents_body(ReservationReleaseRequest),
    responses=errors(400, 401, 403, 404, 409),
)
async def release_reservation(
    request: AnyRequest, reservationId: FromPath[str]
) -> Response[ApiResponseReservation]:
    """RSV-19."""
    reservation_id = _path_id(reservationId)
    body = decode_body(await _optional_body(request), ReservationReleaseRequest)
    command = ReleaseReservation(reservation_id=reservation_id, feature_key=body.featureKey)
    return await _settle_shown(request, reservation_id, command, body.customerReferenceId)


@post(
    "/reservations/{reservationId:str}/extend",
    operation_id="extendReservation",
    status_code=200,
    dependencies=documents_body(ReservationExtendRequest),
    responses=errors(400, 401, 403, 404, 409),
)
async def extend_reservation(
    request: AnyRequest, reservationId: FromPath[str]
) -> Response[ApiResponseReservation]:
    """RSV-20."""
    reservation_id = _path_id(reservationId)
    body = decode_body(await json_body(request), ReservationExtendRequest)
    command = ExtendReservation(reservation_id=reservation_id, ttl_seconds=_ttl(body.ttlSeconds))
    return await _settle_shown(request, reservation_id, command, body.customerReferenceId)


@get(
    "/customers/{customerReferenceId:str}/reservations",
    operation_id="listCustomerReservations",
    responses=errors(400, 401, 403, 404),
)
async def list_customer_reservations(
    request: AnyRequest,
    customerReferenceId: FromPath[str],
    status: Annotated[str | None, QueryParameter(name="status", required=False)] = None,
) -> Response[ApiResponseReservationList]:
    """RSV-22: the customer's reservations, oldest first, optionally in one status."""
    wanted = None
    if status is not None:
        try:
            wanted = HoldStatus(status)
        except ValueError:
            allowed = ", ".join(s.value for s in HoldStatus)
            raise ApiError(400, f"Invalid query 'status': one of {allowed}.") from None

    def project(state: CustomerState, _c: Catalog, _n: datetime) -> list[Reservation]:
        return [r for r in state.reservations.values() if wanted is None or r.status is wanted]

    found = await shard_of(request).read(CustomerLookup(external_id=customerReferenceId), project)
    if found is None:
        raise ApiError(404, "Customer not found.")
    data = [reservation_dto(r, customerReferenceId) for r in found]
    return json_response(ApiResponseReservationList(success=True, data=data))
