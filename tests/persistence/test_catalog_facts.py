"""Catalog changes are journaled as versioned domain facts, never as the admin API's document
(issue 11, item 2)."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import msgspec
import pytest

from allotment.config import Settings
from allotment.domain.catalog_facts import CATALOG_UPDATED_VERSION, CatalogUpdated
from allotment.http.catalog_document import WIRE_NAMES, CatalogDocument
from allotment.http.catalog_mapping import to_catalog_update
from allotment.persistence.codec import decode_record, encode_record
from allotment.persistence.ports import JournalRecord
from allotment.runtime.clock import ManualClock
from allotment.wiring import build_system
from tests.conftest import START

pytestmark = pytest.mark.anyio

SEGMENT_HEADER_BYTES, RECORD_HEADER_BYTES = 32, 20  # docs/internals.md, "The journal on disk"

DOCUMENT = {
    "features": [{"key": "calls", "costPerUnit": 0.001}, {"key": "gb"}],
    "creditModels": [{"key": "tokens", "denomination": "TOKENS", "rolloverPolicy": "CAPPED",
                      "rolloverCap": 5, "hardLimit": True}],
    "plans": [{
        "key": "team", "name": "Team", "priceAmount": 30, "currency": "USD",
        "intervalMonths": 1, "billingTiming": "IN_ADVANCE", "metadata": {"seats": 5},
        "features": [
            {"featureKey": "calls", "pricingType": "usage_based", "pricePerUnit": 0.01,
             "maxUsage": 100, "unitLabel": "call", "creditModelKey": "tokens",
             "creditsPerUnit": 2},
            {"featureKey": "gb", "pricingType": "graduated", "resetMode": "accumulate",
             "tiers": [{"upTo": 10, "pricePerUnit": 0, "flatFee": 1},
                       {"upTo": "inf", "pricePerUnit": 0.5}]},
        ],
        "creditAllocations": [{"creditModelKey": "tokens", "creditAmount": 10,
                               "grantExpiresMonths": 1, "hardLimit": False}],
    }],
}  # fmt: skip


def _payloads(segment: Path) -> list[bytes]:
    """Every record's payload, read by hand from the documented framing (format 2)."""
    data = segment.read_bytes()
    offset, payloads = SEGMENT_HEADER_BYTES, []
    while offset < len(data):
        (length,) = struct.unpack_from("<I", data, offset + 4)
        start = offset + RECORD_HEADER_BYTES
        payloads.append(data[start : start + length])
        offset = start + length
    return payloads


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


async def test_a_catalog_change_is_journaled_in_domain_names_only(tmp_path: Path) -> None:
    """Issue 11, item 2: the raw msgpack of a catalog record holds the versioned domain fact,
    with none of the admin API's field names, so renaming those cannot break replay."""
    clock = ManualClock(START)
    settings = Settings(data_dir=tmp_path, clock="manual", durability="write")
    system = build_system(settings, clock)
    async with system.running():
        document = msgspec.convert(DOCUMENT, type=CatalogDocument)
        await system.shard("test").upsert_catalog(to_catalog_update(document, clock.now()))
    (segment,) = (tmp_path / "journal" / "test").glob("*.wal")
    seed, payload = _payloads(segment)  # the first start records the catalog file (PLN-3)
    assert msgspec.msgpack.decode(seed)[3][0]["type"] == "catalog_updated"
    _position, customer_id, facts, (fact,) = msgspec.msgpack.decode(payload)
    assert (customer_id, facts) == (None, [])
    assert (fact["type"], fact["version"]) == ("catalog_updated", CATALOG_UPDATED_VERSION)
    keys = _keys(fact)
    camel = {name for name in WIRE_NAMES.values() if name.lower() != name}
    assert keys & camel == set()
    assert not {k for k in keys if k.lower() != k and k != "metadata"}, keys  # no camelCase
    assert {"price_per_unit", "up_to", "flat_fee", "credit_allocations", "rollover_cap",
            "credits_per_unit", "cost_per_unit"} <= keys  # fmt: skip
    assert "seats" in keys  # metadata is the plan's own data, kept as given


def test_a_catalog_fact_of_an_unknown_version_is_refused() -> None:
    """A journal written by a newer allotment is not misread: its catalog fact's version is
    checked on decode (docs/internals.md, "Catalog changes in the journal")."""
    document = msgspec.convert(DOCUMENT, type=CatalogDocument)
    fact = to_catalog_update(document, START)
    record = JournalRecord(7, None, [], [fact])
    assert decode_record(encode_record(record)) == record
    raw = msgspec.msgpack.decode(encode_record(record))
    raw[3][0]["version"] = CATALOG_UPDATED_VERSION + 1
    with pytest.raises(msgspec.ValidationError, match="version"):
        decode_record(msgspec.msgpack.encode(raw))


def test_the_fact_holds_the_domain_values_the_document_maps_to() -> None:
    """The unbounded last tier is `up_to=None`; omitted fields take the domain's defaults."""
    fact = to_catalog_update(msgspec.convert(DOCUMENT, type=CatalogDocument), START)
    assert isinstance(fact, CatalogUpdated)
    (plan,) = fact.plans
    graduated = plan.link("gb")
    assert graduated is not None
    assert [t.up_to for t in graduated.tiers] == [10, None]
    assert fact.features[1].name == "gb"  # a feature's name defaults to its key
    assert plan.created_at == plan.modified_at == fact.at == START
