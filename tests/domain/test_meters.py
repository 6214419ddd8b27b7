"""Meters and CloudEvents in the domain (docs/openmeter.md): the JSONPath subset (OM-10),
numeric values (OM-12), which features a CloudEvent counts toward (OM-30), the (source, id)
key (OM-6), meter rules (OM-13, OM-14), and facts that survive the journal's codec."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allotment.domain.catalog import Catalog, Feature, feature_id
from allotment.domain.catalog_facts import CatalogUpdated, apply_update, evolve_catalog
from allotment.domain.cloud_usage import dedup_key, usage_commands
from allotment.domain.meter_rules import (
    CatalogRefused,
    define_feature,
    define_meter,
    delete_meter,
    update_meter,
)
from allotment.domain.meters import (
    CloudEventRecorded,
    Meter,
    MeterAggregation,
    MeterDefined,
    MeterDeleted,
    extract,
    numeric_value,
    parse_jsonpath,
    ulid,
)
from allotment.persistence.codec import decode_record, encode_record
from allotment.persistence.ports import JournalRecord

T0 = datetime(2025, 3, 1, tzinfo=UTC)
NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,8}", fullmatch=True)


@given(st.lists(NAME, min_size=1, max_size=4), st.integers())
@settings(max_examples=50)
def test_a_path_of_names_reads_what_it_names(names: list[str], value: int) -> None:
    """OM-10: `$.a.b` is parsed to its names and reads the nested value."""
    path = "$." + ".".join(names)
    assert parse_jsonpath(path) == tuple(names)
    data: Any = value
    for name in reversed(names):
        data = {name: data}
    assert extract(data, path) == value


@pytest.mark.parametrize(
    "path", ["$", "$.", "a.b", "$.a[0]", "$..a", "$.*", "$.a.", "$['a']", "$.a b", "$.1a"]
)
def test_paths_outside_the_subset_are_refused(path: str) -> None:
    assert parse_jsonpath(path) is None


def test_extract_misses_quietly() -> None:
    assert extract({"a": 1}, "$.a.b") is None
    assert extract(None, "$.a") is None
    assert extract({"a": {"b": [1]}}, "$.a.b") == [1]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(3, Decimal(3)), ("7.5", Decimal("7.5")), (" 2 ", Decimal(2)), (0.5, Decimal("0.5")),
     (True, None), ("abc", None), ("NaN", None), (float("inf"), None), (None, None), ([1], None)],
)  # fmt: skip
def test_numeric_values(raw: Any, expected: Decimal | None) -> None:
    """OM-12: a number or a numeric string; booleans, NaN and infinities are not numbers."""
    assert numeric_value(raw) == expected


def test_the_cloudevent_key_keeps_source_and_id_apart() -> None:
    """OM-6: no two (source, id) pairs share a key, whatever their colons."""
    assert dedup_key("a:b", "c") != dedup_key("a", "b:c")
    assert dedup_key("s", "1") == dedup_key("s", "1")


def test_ulids_sort_by_time_and_have_the_document_s_shape() -> None:
    early, late = ulid(T0, uuid.uuid4()), ulid(T0 + timedelta(milliseconds=1), uuid.uuid4())
    assert early < late and len(early) == 26 and early[0] in "01234567"


def _meter(slug: str, aggregation: MeterAggregation, **fields: Any) -> Meter:
    return Meter(id=f"id-{slug}", slug=slug, name=slug, aggregation=aggregation,
                 event_type=fields.pop("event_type", "llm"), created_at=T0, updated_at=T0,
                 **fields)  # fmt: skip


def _feature(key: str, meter: str | None, filters: dict[str, str] | None = None) -> Feature:
    return Feature(id=feature_id(key), key=key, name=key, meter_slug=meter,
                   meter_group_by_filters=filters)  # fmt: skip


def _catalog(*meters: Meter, features: tuple[Feature, ...] = ()) -> Catalog:
    return Catalog(features={f.key: f for f in features}, credit_models={}, plans={},
                   meters={m.id: m for m in meters})  # fmt: skip


def _event(
    data: dict[str, Any] | None, type_: str = "llm", at: datetime = T0
) -> CloudEventRecorded:
    return CloudEventRecorded(at=at, source="s", event_id="1", event_type=type_, subject="x",
                              time=at, data=data)  # fmt: skip


def test_which_features_a_cloudevent_counts_toward() -> None:
    """OM-30: SUM adds the value, COUNT adds 1, only for a live meter of the event's type,
    from its eventFrom, with every group-by filter matched; other aggregations count none."""
    catalog = _catalog(
        _meter("tokens", MeterAggregation.SUM, value_property="$.usage.tokens",
               group_by={"model": "$.model"}),
        _meter("calls", MeterAggregation.COUNT),
        _meter("peak", MeterAggregation.MAX, value_property="$.usage.tokens"),
        _meter("later", MeterAggregation.COUNT, event_from=T0 + timedelta(days=1)),
        _meter("other", MeterAggregation.COUNT, event_type="other"),
        features=(_feature("a_tokens", "tokens"), _feature("b_big", "tokens", {"model": "big"}),
                  _feature("c_calls", "calls"), _feature("d_peak", "peak"),
                  _feature("e_later", "later"), _feature("f_other", "other"),
                  _feature("g_plain", None)),
    )  # fmt: skip
    commands = usage_commands(_event({"usage": {"tokens": "12.5"}, "model": "small"}), catalog)
    assert [(c.feature_key, c.units) for c in commands] == [
        ("a_tokens", Decimal("12.5")), ("c_calls", Decimal(1))]  # fmt: skip
    big = usage_commands(_event({"usage": {"tokens": 3}, "model": "big"}), catalog)
    assert [c.feature_key for c in big] == ["a_tokens", "b_big", "c_calls"]
    assert {c.idempotency_key for c in big} == {
        f"{dedup_key('s', '1')}#{c.feature_key}" for c in big
    }
    no_value = usage_commands(_event({"model": "big"}), catalog)
    assert [c.feature_key for c in no_value] == ["c_calls"]  # SUM without a value adds nothing
    later = usage_commands(_event(None, at=T0 + timedelta(days=2)), catalog)
    assert [c.feature_key for c in later] == ["c_calls", "e_later"]


def test_archived_features_and_deleted_meters_count_nothing() -> None:
    meter = _meter("calls", MeterAggregation.COUNT)
    archived = msgspec.structs.replace(_feature("calls", "calls"), archived_at=T0)
    assert usage_commands(_event(None), _catalog(meter, features=(archived,))) == []
    deleted = msgspec.structs.replace(meter, deleted_at=T0)
    assert (
        usage_commands(_event(None), _catalog(deleted, features=(_feature("calls", "calls"),)))
        == []
    )


def test_meter_rules() -> None:
    """OM-10 (slug unique among live meters), OM-13 (groupBy only grows), OM-14 (no delete
    while a live feature uses the meter)."""
    meter = _meter("m", MeterAggregation.SUM, value_property="$.v", group_by={"k": "$.k"})
    catalog = evolve_catalog(_catalog(), define_meter(_catalog(), meter))
    with pytest.raises(CatalogRefused) as conflict:
        define_meter(catalog, msgspec.structs.replace(meter, id="other"))
    assert conflict.value.status == 409
    grown = msgspec.structs.replace(meter, group_by={"k": "$.k", "j": "$.j"}, updated_at=T0)
    assert update_meter(catalog, "m", grown).meter.group_by == {"k": "$.k", "j": "$.j"}
    with pytest.raises(CatalogRefused) as shrunk:
        update_meter(catalog, "m", msgspec.structs.replace(meter, group_by={"k": "$.other"}))
    assert shrunk.value.field == "groupBy.k"
    used = apply_update(catalog, CatalogUpdated(at=T0, features=(_feature("f", "m"),)))
    with pytest.raises(CatalogRefused) as in_use:
        delete_meter(used, "m", T0)
    assert in_use.value.status == 409
    gone = evolve_catalog(catalog, delete_meter(catalog, "m", T0))
    assert gone.meters[meter.id].deleted_at == T0 and gone.meter("m") is None
    assert gone.meter(meter.id) is not None  # OM-14: the id still answers


@pytest.mark.parametrize("aggregation", list(MeterAggregation))
def test_a_feature_s_meter_sums_counts_or_takes_the_latest(aggregation: MeterAggregation) -> None:
    """OM-31, as createFeature says: SUM, COUNT, UNIQUE_COUNT and LATEST meters back a feature;
    AVG, MIN and MAX are refused naming `meterSlug`."""
    meter = _meter("m", aggregation, value_property="$.v")
    catalog = _catalog(meter)
    if aggregation in (MeterAggregation.AVG, MeterAggregation.MIN, MeterAggregation.MAX):
        with pytest.raises(CatalogRefused) as refused:
            define_feature(catalog, _feature("f", "m"), T0)
        assert (refused.value.status, refused.value.field) == (400, "meterSlug")
    else:
        fact = define_feature(catalog, _feature("f", "m"), T0)
        assert [f.meter_slug for f in fact.features] == ["m"]


def test_an_admin_change_keeps_what_only_openmeter_sets() -> None:
    """OM-33: a feature replaced without OpenMeter's fields keeps its meter, creation time and
    archiving; one created through OpenMeter (with a creation time) replaces whole."""
    made = msgspec.structs.replace(_feature("f", "m", {"k": "v"}), created_at=T0, archived_at=T0)
    catalog = apply_update(_catalog(), CatalogUpdated(at=T0, features=(made,)))
    admin = Feature(id=feature_id("f"), key="f", name="Renamed")
    kept = apply_update(catalog, CatalogUpdated(at=T0, features=(admin,))).features["f"]
    assert (kept.name, kept.meter_slug, kept.meter_group_by_filters, kept.archived_at) == (
        "Renamed", "m", {"k": "v"}, T0)  # fmt: skip
    anew = msgspec.structs.replace(_feature("f", None), created_at=T0 + timedelta(days=1))
    fresh = apply_update(catalog, CatalogUpdated(at=T0, features=(anew,))).features["f"]
    assert (fresh.meter_slug, fresh.archived_at) == (None, None)


def test_openmeter_facts_survive_the_journal_codec() -> None:
    """The new facts have stable tags and decode as they were encoded, in an environment
    record and in a customer's; a catalog with meters survives a snapshot's msgpack."""
    meter = _meter("m", MeterAggregation.LATEST, value_property="$.v")
    event = _event({"nested": {"n": 1.5, "s": "x", "l": [1, None, True]}})
    for record in (
        JournalRecord(1, None, [], [MeterDefined(at=T0, meter=meter)]),
        JournalRecord(2, None, [], [MeterDeleted(at=T0, meter_id=meter.id), event]),
        JournalRecord(
            3, uuid.uuid4(), [msgspec.structs.replace(event, customer_id=uuid.uuid4())], []
        ),
    ):
        assert decode_record(encode_record(record)) == record
    catalog = _catalog(meter)
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(catalog), type=Catalog) == catalog
    old = msgspec.msgpack.encode({"features": {}, "credit_models": {}, "plans": {}})
    assert msgspec.msgpack.decode(old, type=Catalog).meters == {}  # older snapshots decode
