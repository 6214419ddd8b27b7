"""What a CloudEvent means for a customer's entitlements (OM-30..OM-33): the Tanso usage it
makes, as `RecordUsage` commands the customer's turn runs after journalling the event.

One feature vocabulary: a catalog feature with `meter_slug` counts the events of that meter.
A CloudEvent counts toward such a feature when the meter is live, aggregates SUM or COUNT
(the two that are sums of per-event quantities, so each event adds its own units and a
period's usage equals the meter's value over the period), matches the event's `type`, does
not start after the event (`eventFrom`), and every `meterGroupByFilters` entry equals the
event's value for that dimension. COUNT adds 1 unit, SUM the value at `valueProperty`
(a number or numeric string; an event without one adds nothing). The other aggregations
(UNIQUE_COUNT, AVG, MIN, MAX, LATEST) are not sums: their features are queried, not counted
per event (docs/openmeter.md, "Usage and entitlements").
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Final

from allotment.domain.catalog import Catalog, Feature
from allotment.domain.commands import RecordUsage
from allotment.domain.meters import (
    CloudEventRecorded,
    Meter,
    MeterAggregation,
    extract,
    numeric_value,
)

__all__ = (
    "NO_CUSTOMER",
    "NO_METER",
    "CountingIndex",
    "counting_index",
    "dedup_key",
    "matching_meters",
    "usage_commands",
    "usage_of",
)

_COUNTED: Final = frozenset({MeterAggregation.SUM, MeterAggregation.COUNT})
NO_CUSTOMER: Final = "no customer has the subject key {subject!r}"
NO_METER: Final = "no meter matches the event type {event_type!r}"
_ONE: Final = Decimal(1)  # what a COUNT meter adds per event (Decimals are immutable)


def dedup_key(source: str, event_id: str) -> str:
    """The event key of a CloudEvent in the environment's key index (OM-6). The source's length
    leads, so no two (source, id) pairs share a key, and the prefix keeps it apart from every
    Tanso idempotency key (those never start with a control character)."""
    return f"\x1fce:{len(source)}:{source}:{event_id}"


def matching_meters(catalog: Catalog, event_type: str) -> list[Meter]:
    """The live meters of `event_type`."""
    return [m for m in catalog.meters.values() if m.event_type == event_type and not m.deleted]


CountingIndex = dict[str, tuple[tuple[Feature, Meter], ...]]
"""By event type: the (feature, meter) pairs an event of that type may count toward."""


def counting_index(catalog: Catalog) -> CountingIndex:
    """Every feature that counts CloudEvents (OM-30), by its meter's event type, in feature key
    order so that replays agree. A function of the catalog alone: the runtime computes it once
    per catalog, not per event."""
    index: dict[str, list[tuple[Feature, Meter]]] = {}
    for feature in sorted(catalog.features.values(), key=lambda f: f.key):
        if feature.meter_slug is None or feature.archived_at is not None:
            continue
        meter = catalog.meter(feature.meter_slug)
        if meter is not None and not meter.deleted and meter.aggregation in _COUNTED:
            index.setdefault(meter.event_type, []).append((feature, meter))
    return {event_type: tuple(pairs) for event_type, pairs in index.items()}


def usage_commands(event: CloudEventRecorded, catalog: Catalog) -> list[RecordUsage]:
    """The Tanso usage `event` makes for its customer (OM-30): one command per feature it
    counts toward, in feature key order."""
    return usage_of(event, counting_index(catalog).get(event.event_type, ()))


def usage_of(
    event: CloudEventRecorded, pairs: Sequence[tuple[Feature, Meter]], key: str | None = None
) -> list[RecordUsage]:
    """`usage_commands` with the catalog's counting pairs for the event's type at hand, and
    the event's `dedup_key` when the caller has it already."""
    commands = []
    key = key or dedup_key(event.source, event.event_id)
    for feature, meter in pairs:
        units = _units(event, feature, meter)
        if units is not None:
            commands.append(
                RecordUsage(
                    idempotency_key=f"{key}#{feature.key}",
                    event_name=event.event_type,
                    occurred_at=event.time,
                    units=units,
                    feature_key=feature.key,
                )
            )
    return commands


def _units(event: CloudEventRecorded, feature: Feature, meter: Meter) -> Decimal | None:
    """What `event` adds to `feature` through `meter`, a live SUM or COUNT meter of the
    event's type; None when it adds nothing (before `eventFrom`, a filter unmatched, no
    positive value)."""
    if meter.event_from is not None and event.time < meter.event_from:
        return None
    filters = feature.meter_group_by_filters
    if filters:  # most features filter nothing: no loop, no empty dict per event
        for dimension, wanted in filters.items():
            path = meter.group_by.get(dimension)
            if path is None or _as_text(extract(event.data, path)) != wanted:
                return None
    if meter.aggregation is MeterAggregation.COUNT:
        return _ONE
    value = numeric_value(extract(event.data, meter.value_property or ""))
    return value if value is not None and value > 0 else None


def _as_text(value: object) -> str | None:
    """A group-by value as OpenMeter compares it: strings as they are, numbers and booleans
    in their JSON spelling; objects and arrays never match."""
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
