"""The multi-feature pre-flight, `POST /entitlements/preflight` (docs/reservations.md,
RSV-30..RSV-39): decisions, usage after the request and estimated charges of several
features at once, and with `reserve` their hold, all or none."""

from __future__ import annotations

from datetime import datetime

from litestar import Response, post

from allotment.domain.catalog import Catalog
from allotment.domain.commands import HoldItem, Preflight, Reserve
from allotment.domain.context import TurnContext
from allotment.domain.money import round_usage
from allotment.domain.preflight import preflight_answer
from allotment.domain.preflight_replies import Preflighted
from allotment.domain.replies import Rejected
from allotment.domain.reservation_replies import Reserved
from allotment.domain.reservation_state import Overage
from allotment.domain.state import CustomerState
from allotment.http.context import AnyRequest, documents_body, errors, json_body, shard_of
from allotment.http.errors import ApiError, json_response, raise_rejection
from allotment.http.mapping.preflight import preflight_response
from allotment.http.schemas.preflight import (
    ApiResponsePreflight,
    PreflightItemRequest,
    PreflightRequest,
)
from allotment.http.validation import check_decimal, decode_body
from allotment.runtime.ports import CustomerLookup, Shard

__all__ = ("preflight_entitlements",)

_CUSTOMER_NOT_FOUND = "Customer not found."


@post(
    "/entitlements/preflight",
    operation_id="preflightEntitlements",
    status_code=200,
    dependencies=documents_body(PreflightRequest),
    responses=errors(400, 401, 403, 404, 409),
)
async def preflight_entitlements(request: AnyRequest) -> Response[ApiResponsePreflight]:
    body = decode_body(await json_body(request), PreflightRequest)
    shard = shard_of(request)
    items = _items(shard, body.items)
    lookup = CustomerLookup(external_id=body.customerReferenceId)
    if body.reserve is None:
        answer = await _read_only(shard, lookup, items)
    else:
        reserve = Reserve(
            reservation_id=body.reserve.reservationId,
            items=items,
            ttl_seconds=body.reserve.ttlSeconds,
            overage=Overage(body.reserve.overage),
        )
        reply = await shard.reserve(lookup, Preflight(reserve=reserve))
        if isinstance(reply, Rejected):
            raise_rejection(reply)
        assert isinstance(reply, Preflighted)
        answer = reply
    reservation_id = body.reserve.reservationId if body.reserve is not None else None
    data = preflight_response(answer, body.customerReferenceId, reservation_id)
    held = isinstance(answer.reservation, Reserved) and not answer.reservation.repeated
    return json_response(ApiResponsePreflight(success=True, data=data), 201 if held else 200)


def _items(shard: Shard, wanted: list[PreflightItemRequest]) -> tuple[HoldItem, ...]:
    """RSV-37, RSV-38: every item checked at the edge, named by its index, before any turn;
    units rounded as an event's are."""
    items: list[HoldItem] = []
    for index, item in enumerate(wanted):
        units = check_decimal(f"items[{index}].units", item.units, positive=True)
        units = round_usage(units)
        if units <= 0:  # a positive number below the usage quantum rounds to nothing
            raise ApiError(400, f"Invalid field 'items[{index}].units': rounds to 0 units.")
        if item.featureKey not in shard.catalog.features:
            raise ApiError(
                400,
                f"Invalid field 'items[{index}].featureKey': no feature '{item.featureKey}' "
                "in the catalog.",
            )
        items.append(HoldItem(feature_key=item.featureKey, units=units))
    return tuple(items)


async def _read_only(
    shard: Shard, lookup: CustomerLookup, items: tuple[HoldItem, ...]
) -> Preflighted:
    """RSV-30: a read inside the customer's turn; nothing is journalled."""
    prices = shard.price_table

    def project(state: CustomerState, catalog: Catalog, now: datetime) -> Preflighted:
        return preflight_answer(state, items, TurnContext(now=now, catalog=catalog, prices=prices))

    answer = await shard.read(lookup, project)
    if answer is None:
        raise ApiError(404, _CUSTOMER_NOT_FOUND)
    return answer
