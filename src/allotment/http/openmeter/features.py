"""Features (OM-30..OM-33): `GET/POST /api/v1/features`, `GET/DELETE
/api/v1/features/{featureId}`. These are the catalog's features, the ones Tanso plans link:
one vocabulary (docs/openmeter.md, "Features: one catalog"). A feature's id is its catalog
UUID; `{featureId}` takes it or the key."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Final

import msgspec
from litestar import Response, delete, get, post
from litestar.params import FromPath

from allotment.domain.catalog import Catalog, Feature, feature_id
from allotment.domain.catalog_rules import CatalogInvalid
from allotment.domain.context import TurnContext
from allotment.domain.meter_rules import CatalogRefused, archive_feature, define_feature
from allotment.http.context import AnyRequest, shard_of
from allotment.http.openmeter.meters import refused
from allotment.http.openmeter.problems import PROBLEMS, Problem, bad_request, not_found
from allotment.http.openmeter.wire import (
    Page,
    decode,
    flag,
    integer,
    json,
    order_and_page,
    ordered,
)

__all__ = ("create_feature", "delete_feature", "feature_json", "get_feature", "list_features")

# A feature declared in the catalog file or through the admin API has no creation time of its
# own: OpenMeter requires one, so such a feature shows the Unix epoch (OM-33).
_NO_TIME: Final = datetime(1970, 1, 1, tzinfo=UTC)


class _FeatureCreate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    key: str
    name: Annotated[str, msgspec.Meta(min_length=1)]
    metadata: dict[str, str] | None = None
    meterSlug: str | None = None
    meterGroupByFilters: dict[str, str] | None = None
    # Accepted by the document, not by allotment yet: refused by name, never ignored.
    advancedMeterGroupByFilters: Any = None
    unitCost: Any = None


def feature_json(feature: Feature) -> dict[str, Any]:
    created = feature.created_at or _NO_TIME
    body: dict[str, Any] = {
        "id": str(feature.id),
        "key": feature.key,
        "name": feature.name,
        "createdAt": created,
        "updatedAt": feature.archived_at or created,
    }
    optional = {
        "metadata": feature.metadata,
        "meterSlug": feature.meter_slug,
        "meterGroupByFilters": feature.meter_group_by_filters,
        "archivedAt": feature.archived_at,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    return body


_SORT: Final = {
    "id": lambda f: str(f.id),
    "key": lambda f: f.key,
    "name": lambda f: f.name,
    "createdAt": lambda f: f.created_at or _NO_TIME,
    "updatedAt": lambda f: f.archived_at or f.created_at or _NO_TIME,
}


@get("/features", operation_id="listFeatures", responses=PROBLEMS, summary="List features")
async def list_features(request: AnyRequest) -> Response[Any]:
    """The catalog's features, archived ones with `includeArchived=true`, filtered by
    `meterSlug`. With `page` or `pageSize`: a `FeaturePaginatedResponse`; else an array,
    cut by `offset` (default 0) and `limit` (1..1000, default 100) (OM-3)."""
    query = dict(request.query_params)
    slugs = set(request.query_params.getall("meterSlug", []))
    archived = flag(query, "includeArchived")
    features = [
        f
        for f in shard_of(request).catalog.features.values()
        if (archived or f.archived_at is None) and (not slugs or f.meter_slug in slugs)
    ]
    if "page" in query or "pageSize" in query:
        page, number, size = order_and_page(features, _SORT, query, "createdAt")
        items = [feature_json(f) for f in page]
        return json(Page(totalCount=len(features), page=number, pageSize=size, items=items))
    everything = ordered(features, _SORT, query, "createdAt")
    offset = integer(query, "offset", 0, 0, 1_000_000_000)
    limit = integer(query, "limit", 100, 1, 1000)  # the document's LimitOffset.limit
    return json([feature_json(f) for f in everything[offset : offset + limit]])


@post(
    "/features",
    operation_id="createFeature",
    responses=PROBLEMS,
    status_code=201,
    summary="Create feature",
)
async def create_feature(request: AnyRequest) -> Response[Any]:
    """A new catalog feature (OM-31), counting the events of `meterSlug` that carry every
    `meterGroupByFilters` value; 409 when a live feature has the key."""
    body = decode(await request.body(), _FeatureCreate)
    if body.advancedMeterGroupByFilters is not None:
        raise bad_request(
            "advancedMeterGroupByFilters", "not supported yet: use meterGroupByFilters"
        )
    if body.unitCost is not None:
        raise bad_request("unitCost", "not supported yet: plans price features")
    feature = Feature(
        id=feature_id(body.key),
        key=body.key,
        name=body.name,
        meter_slug=body.meterSlug,
        meter_group_by_filters=body.meterGroupByFilters,
        metadata=body.metadata,
    )

    def change(catalog: Catalog, ctx: TurnContext) -> Any:
        return define_feature(catalog, feature, ctx.now)

    catalog = await _change(request, change)
    return json(feature_json(catalog.features[body.key]), 201)


@get(
    "/features/{feature_id_or_key:str}",
    operation_id="getFeature",
    responses=PROBLEMS,
    summary="Get feature",
)
async def get_feature(request: AnyRequest, feature_id_or_key: FromPath[str]) -> Response[Any]:
    """A feature by id or key, archived ones included."""
    return json(feature_json(_find(shard_of(request).catalog, feature_id_or_key)))


@delete(
    "/features/{feature_id_or_key:str}",
    operation_id="deleteFeature",
    responses=PROBLEMS,
    status_code=204,
    summary="Delete feature",
)
async def delete_feature(request: AnyRequest, feature_id_or_key: FromPath[str]) -> None:
    """Archive a feature (OM-32): plans keep linking it; CloudEvents stop counting to it."""

    def change(catalog: Catalog, ctx: TurnContext) -> Any:
        return archive_feature(catalog, _find(catalog, feature_id_or_key), ctx.now)

    await _change(request, change)


def _find(catalog: Catalog, id_or_key: str) -> Feature:
    feature = catalog.features.get(id_or_key)
    if feature is None:
        try:
            feature = catalog.feature_by_id(uuid.UUID(id_or_key))
        except ValueError:
            feature = None
    if feature is None:
        raise not_found("feature", id_or_key)
    return feature


async def _change(request: AnyRequest, change: Any) -> Catalog:
    try:
        catalog: Catalog = await shard_of(request).change_catalog(change)
    except CatalogRefused as error:
        raise refused(error) from None
    except CatalogInvalid as error:
        raise Problem(400, str(error)) from None
    return catalog
