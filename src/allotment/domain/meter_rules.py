"""The rules of meter and OpenMeter feature changes (OM-10..OM-16, OM-31), as pure functions
of the catalog: each returns the fact to journal or raises `CatalogRefused` naming the field.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Final

import msgspec

from allotment.domain.catalog import Catalog, Feature, feature_id
from allotment.domain.catalog_facts import CatalogUpdated
from allotment.domain.meters import (
    Meter,
    MeterAggregation,
    MeterDefined,
    MeterDeleted,
    jsonpath_error,
)

__all__ = (
    "FEATURE_AGGREGATIONS",
    "CatalogRefused",
    "archive_feature",
    "define_feature",
    "define_meter",
    "delete_meter",
    "update_meter",
)

SLUG: Final = re.compile(r"[a-z0-9]+(?:_[a-z0-9]+)*")
# The document's createFeature: "Meters with SUM, COUNT, UNIQUE_COUNT and LATEST aggregations
# are supported for features". An average, minimum or maximum of a period is no usage total.
FEATURE_AGGREGATIONS: Final = frozenset(
    {MeterAggregation.SUM, MeterAggregation.COUNT, MeterAggregation.UNIQUE_COUNT,
     MeterAggregation.LATEST}
)  # fmt: skip
_DIMENSION: Final = re.compile(r"[A-Za-z0-9_]+")


class CatalogRefused(Exception):
    """A change refused: `status` 400 (a field is wrong), 404 or 409, and the field at fault."""

    def __init__(self, status: int, field: str | None, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.field = field
        self.message = message


def define_meter(catalog: Catalog, meter: Meter) -> MeterDefined:
    """createMeter: `meter` as the client described it, with its id and times (OM-10..OM-12)."""
    if not 1 <= len(meter.slug) <= 64 or not SLUG.fullmatch(meter.slug):
        raise CatalogRefused(400, "slug", "must match ^[a-z0-9]+(?:_[a-z0-9]+)*$, 1-64 chars")
    if meter.value_property is None and meter.aggregation is not MeterAggregation.COUNT:
        raise CatalogRefused(400, "valueProperty", f"is required for {meter.aggregation}")
    if meter.value_property is not None:
        _check_path("valueProperty", meter.value_property)
    _check_group_by(meter.group_by)
    if catalog.meter(meter.slug) is not None:
        raise CatalogRefused(409, "slug", f"a meter with slug {meter.slug!r} exists")
    return MeterDefined(at=meter.created_at, meter=meter)


def update_meter(catalog: Catalog, id_or_slug: str, changes: Meter) -> MeterDefined:
    """updateMeter: only `name`, `description`, `metadata` and `group_by` change (OM-13), and
    `group_by` only grows: a dimension keeps its JSONPath, as features filter on it."""
    meter = _live(catalog, id_or_slug)
    _check_group_by(changes.group_by)
    for dimension, path in meter.group_by.items():
        if changes.group_by.get(dimension) != path:
            raise CatalogRefused(400, f"groupBy.{dimension}", f"must stay {path!r} (OM-13)")
    updated = msgspec.structs.replace(
        meter,
        name=changes.name,
        description=changes.description,
        metadata=changes.metadata,
        group_by=changes.group_by,
        updated_at=changes.updated_at,
    )
    return MeterDefined(at=changes.updated_at, meter=updated)


def delete_meter(catalog: Catalog, id_or_slug: str, at: datetime) -> MeterDeleted:
    """deleteMeter: soft (OM-14); refused while a live feature counts its events (OM-31)."""
    meter = _live(catalog, id_or_slug)
    users = sorted(
        f.key
        for f in catalog.features.values()
        if f.meter_slug == meter.slug and f.archived_at is None
    )
    if users:
        message = f"features {', '.join(users)} use the meter: archive them first"
        raise CatalogRefused(409, None, message)
    return MeterDeleted(at=at, meter_id=meter.id)


def define_feature(catalog: Catalog, feature: Feature, at: datetime) -> CatalogUpdated:
    """createFeature (OM-31): a new catalog feature, or a feature of that key archived before,
    made anew. Its meter must be live and aggregate SUM, COUNT, UNIQUE_COUNT or LATEST, and
    each group-by filter must be a dimension of it."""
    if not 1 <= len(feature.key) <= 64 or not SLUG.fullmatch(feature.key):
        raise CatalogRefused(400, "key", "must match ^[a-z0-9]+(?:_[a-z0-9]+)*$, 1-64 chars")
    current = catalog.features.get(feature.key)
    if current is not None and current.archived_at is None:
        raise CatalogRefused(409, "key", f"a feature with key {feature.key!r} exists")
    if feature.meter_slug is not None:
        meter = catalog.meter(feature.meter_slug)
        if meter is None or meter.deleted:
            raise CatalogRefused(400, "meterSlug", f"no meter {feature.meter_slug!r}")
        if meter.aggregation not in FEATURE_AGGREGATIONS:
            message = (f"meter {meter.slug!r} aggregates {meter.aggregation.value}: a feature's "
                       "meter aggregates SUM, COUNT, UNIQUE_COUNT or LATEST")  # fmt: skip
            raise CatalogRefused(400, "meterSlug", message)
        for dimension in feature.meter_group_by_filters or {}:
            if dimension not in meter.group_by:
                message = f"{dimension!r} is not a groupBy dimension of {meter.slug!r}"
                raise CatalogRefused(400, f"meterGroupByFilters.{dimension}", message)
    elif feature.meter_group_by_filters:
        raise CatalogRefused(400, "meterGroupByFilters", "needs a meterSlug")
    feature = msgspec.structs.replace(feature, id=feature_id(feature.key), created_at=at)
    return CatalogUpdated(at=at, features=(feature,))


def archive_feature(catalog: Catalog, feature: Feature, at: datetime) -> CatalogUpdated:
    """deleteFeature (OM-32): the feature stays in the catalog, archived: plans that link it
    keep their terms, and CloudEvents stop counting toward it."""
    if feature.archived_at is not None:
        raise CatalogRefused(404, None, f"feature {feature.key!r} is archived")
    archived = msgspec.structs.replace(feature, archived_at=at)
    return CatalogUpdated(at=at, features=(archived,))


def _live(catalog: Catalog, id_or_slug: str) -> Meter:
    meter = catalog.meter(id_or_slug)
    if meter is None or meter.deleted:
        raise CatalogRefused(404, None, f"meter {id_or_slug!r} not found")
    return meter


def _check_path(field: str, path: str) -> None:
    error = jsonpath_error(path)
    if error is not None:
        raise CatalogRefused(400, field, error)


def _check_group_by(group_by: dict[str, str]) -> None:
    for dimension, path in group_by.items():
        if not _DIMENSION.fullmatch(dimension) or dimension == "subject":
            message = "a dimension is letters, digits and underscores, and not 'subject'"
            raise CatalogRefused(400, f"groupBy.{dimension}", message)
        _check_path(f"groupBy.{dimension}", path)
