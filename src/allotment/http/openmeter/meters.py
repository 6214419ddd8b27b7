"""Meters (OM-10..OM-16): `GET/POST /api/v1/meters`, `GET/PUT/DELETE
/api/v1/meters/{meterIdOrSlug}`, shaped as the document's `Meter`, `MeterCreate` and
`MeterUpdate`. A change is decided against the shard's catalog (`domain/meter_rules.py`) and
journalled as an environment fact before the reply."""

from __future__ import annotations

from typing import Annotated, Any, Final

import msgspec
from litestar import Response, delete, get, post, put
from litestar.params import FromPath

from allotment.domain.catalog import Catalog
from allotment.domain.context import TurnContext
from allotment.domain.meter_rules import CatalogRefused, define_meter, delete_meter, update_meter
from allotment.domain.meters import Meter, MeterAggregation, ulid
from allotment.http.context import AnyRequest, shard_of
from allotment.http.openmeter.problems import PROBLEMS, Problem, bad_request, not_found
from allotment.http.openmeter.wire import decode, flag, json, order_and_page, rfc3339

__all__ = (
    "create_meter",
    "delete_meter_route",
    "get_meter",
    "list_meters",
    "meter_json",
    "refused",
    "update_meter_route",
)

_Name = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
_Description = Annotated[str, msgspec.Meta(max_length=1024)]


class _MeterCreate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    slug: str
    aggregation: MeterAggregation
    eventType: Annotated[str, msgspec.Meta(min_length=1)]
    name: _Name | None = None
    description: _Description | None = None
    metadata: dict[str, str] | None = None
    eventFrom: str | None = None
    valueProperty: str | None = None
    groupBy: dict[str, str] | None = None


class _MeterUpdate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: _Name | None = None
    description: _Description | None = None
    metadata: dict[str, str] | None = None
    groupBy: dict[str, str] | None = None


def meter_json(meter: Meter) -> dict[str, Any]:
    """The document's `Meter`; absent optional fields are left out."""
    body: dict[str, Any] = {
        "id": meter.id,
        "slug": meter.slug,
        "name": meter.name,
        "aggregation": meter.aggregation.value,
        "eventType": meter.event_type,
        "groupBy": meter.group_by,
        "createdAt": meter.created_at,
        "updatedAt": meter.updated_at,
    }
    optional = {
        "description": meter.description,
        "metadata": meter.metadata,
        "eventFrom": meter.event_from,
        "valueProperty": meter.value_property,
        "deletedAt": meter.deleted_at,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    return body


def refused(error: CatalogRefused) -> Problem:
    if error.status == 400 and error.field is not None:
        return bad_request(error.field, error.message)
    return Problem(error.status, error.message)


_SORT: Final = {
    "key": lambda m: m.slug,
    "name": lambda m: m.name,
    "aggregation": lambda m: m.aggregation.value,
    "createdAt": lambda m: m.created_at,
    "updatedAt": lambda m: m.updated_at,
}


@get("/meters", operation_id="listMeters", responses=PROBLEMS, summary="List meters")
async def list_meters(request: AnyRequest) -> Response[Any]:
    """Every meter, deleted ones with `includeDeleted=true`; a bare array, paged by `page`
    and `pageSize` as the document has it (OM-3)."""
    query = dict(request.query_params)
    include_deleted = flag(query, "includeDeleted")
    meters = [m for m in shard_of(request).catalog.meters.values()
              if include_deleted or not m.deleted]  # fmt: skip
    page, _, _ = order_and_page(meters, _SORT, query, "key")
    return json([meter_json(m) for m in page])


@post(
    "/meters",
    operation_id="createMeter",
    responses=PROBLEMS,
    status_code=201,
    summary="Create meter",
)
async def create_meter(request: AnyRequest) -> Response[Any]:
    """A new meter (OM-10..OM-12): 201 with it, 400 naming a bad field, 409 for a slug
    another live meter has."""
    body = decode(await request.body(), _MeterCreate)
    event_from = rfc3339("eventFrom", body.eventFrom) if body.eventFrom else None

    def change(catalog: Catalog, ctx: TurnContext) -> Any:
        meter = Meter(
            id=ulid(ctx.now, ctx.new_id()),
            slug=body.slug,
            name=body.name or body.slug,
            aggregation=body.aggregation,
            event_type=body.eventType,
            created_at=ctx.now,
            updated_at=ctx.now,
            description=body.description,
            metadata=body.metadata,
            event_from=event_from,
            value_property=body.valueProperty,
            group_by=body.groupBy or {},
        )
        return define_meter(catalog, meter)

    catalog = await _change(request, change)
    created = next(m for m in catalog.meters.values() if m.slug == body.slug and not m.deleted)
    return json(meter_json(created), 201)


@get(
    "/meters/{meter_id_or_slug:str}",
    operation_id="getMeter",
    responses=PROBLEMS,
    summary="Get meter",
)
async def get_meter(request: AnyRequest, meter_id_or_slug: FromPath[str]) -> Response[Any]:
    """A meter by id (deleted ones too) or by the slug of a live one."""
    meter = shard_of(request).catalog.meter(meter_id_or_slug)
    if meter is None:
        raise not_found("meter", meter_id_or_slug)
    return json(meter_json(meter))


@put(
    "/meters/{meter_id_or_slug:str}",
    operation_id="updateMeter",
    responses=PROBLEMS,
    summary="Update meter",
)
async def update_meter_route(request: AnyRequest, meter_id_or_slug: FromPath[str]) -> Response[Any]:
    """Replace a meter's name, description, metadata and groupBy (OM-13); groupBy only grows."""
    body = decode(await request.body(), _MeterUpdate)

    def change(catalog: Catalog, ctx: TurnContext) -> Any:
        current = catalog.meter(meter_id_or_slug)
        if current is None or current.deleted:
            raise CatalogRefused(404, None, f"meter {meter_id_or_slug!r} not found")
        changes = msgspec.structs.replace(
            current,
            name=body.name or current.slug,
            description=body.description,
            metadata=body.metadata,
            group_by=body.groupBy or {},
            updated_at=ctx.now,
        )
        return update_meter(catalog, meter_id_or_slug, changes)

    catalog = await _change(request, change)
    meter = catalog.meter(meter_id_or_slug)
    assert meter is not None
    return json(meter_json(meter))


@delete(
    "/meters/{meter_id_or_slug:str}",
    operation_id="deleteMeter",
    responses=PROBLEMS,
    status_code=204,
    summary="Delete meter",
)
async def delete_meter_route(request: AnyRequest, meter_id_or_slug: FromPath[str]) -> None:
    """Delete a meter (OM-14): it keeps answering by id with `deletedAt`; 409 while a live
    feature uses it."""
    await _change(request, lambda catalog, ctx: delete_meter(catalog, meter_id_or_slug, ctx.now))


async def _change(request: AnyRequest, change: Any) -> Catalog:
    try:
        catalog: Catalog = await shard_of(request).change_catalog(change)
    except CatalogRefused as error:
        raise refused(error) from None
    return catalog
