"""Notifications through the HTTP surface, on the durable path (issue 15 item 4;
docs/webhooks.md, "Event types"): a committed event's notification is journalled in the
record of the event itself, and renders as the webhook event wh-deliver sends; a catalog
field that would misconfigure thresholds gets a 400 naming it."""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from allotment.config import Settings
from allotment.domain.facts import NotificationRaised, UsageRecorded
from allotment.http.fast_path import FastPath
from allotment.persistence.journal import iter_records
from allotment.persistence.ports import JournalRecord
from allotment.runtime.clock import ManualClock
from allotment.runtime.system import ActorSystem
from allotment.webhooks.payloads import outbound_events
from allotment.wiring import build_system
from tests.http.helpers import (
    A,
    create_customer,
    error,
    event,
    ok,
    plan_doc,
    put_catalog,
    subscribe,
)

Client = TestClient[FastPath]


@pytest.fixture
def system(settings: Settings, clock: ManualClock) -> ActorSystem:
    """The durable path only: the test reads the journal's files."""
    return build_system(msgspec.structs.replace(settings, durability="write"), clock)


def _alerts_plan(**link: Any) -> dict[str, Any]:
    api = {"featureKey": "api_calls", "pricingType": "usage_based", "pricePerUnit": 0,
           "maxUsage": 10, "notifyAtPercent": [50, 100], **link}  # fmt: skip
    return plan_doc("alerts", features=[api])


def _records(data_dir: Path) -> list[JournalRecord]:
    return list(iter_records(data_dir / "journal" / "test"))


def test_whk_e36_a_threshold_is_journalled_in_the_record_of_the_event_that_crossed_it(
    client: Client, settings: Settings
) -> None:
    """WHK-E36, WHK-E3, WHK-E39: the event that crosses 50% is committed (201) in one record
    with its notification, which renders with the customer's reference id and a stable id."""
    put_catalog(client, _alerts_plan())
    create_customer(client, "acme")
    subscribe(client, "acme", "alerts")
    assert event(client, "acme", "e1", usageUnits=4).status_code == 201
    assert event(client, "acme", "e2", usageUnits=2).status_code == 201
    assert settings.data_dir is not None
    [record] = [
        r
        for r in _records(settings.data_dir)
        if any(isinstance(f, UsageRecorded) and f.idempotency_key == "e2" for f in r.facts)
    ]
    assert [type(f) for f in record.facts] == [UsageRecorded, NotificationRaised]
    assert record.customer_id is not None
    [rendered] = outbound_events(record.customer_id, "acme", record.facts)
    raised = record.facts[1]
    assert isinstance(raised, NotificationRaised)
    assert rendered.id == "msg_" + raised.notification_id.hex
    assert rendered.type == "entitlement.usage.threshold"
    assert rendered.data["referenceCustomerId"] == "acme"
    assert rendered.data["featureKey"] == "api_calls"
    assert rendered.data["threshold"] == {"percent": 50, "units": "5"}
    usage = {name: Decimal(value) for name, value in rendered.data["usage"].items()}
    assert usage == {"used": 6, "limit": 10, "remaining": 4}  # Decimals, as strings
    # one threshold notice in the whole journal: e1 crossed nothing; the subscribe turn's
    # record holds its own (invoice.created, subscription.activated)
    types = [
        event.type
        for r in _records(settings.data_dir)
        if r.customer_id is not None
        for event in outbound_events(r.customer_id, "acme", r.facts)
    ]
    assert types == ["invoice.created", "subscription.activated", "entitlement.usage.threshold"]
    uuid.UUID(hex=rendered.id.removeprefix("msg_"))  # a UUID's hex: stable, unique


def test_whk_e3_notify_at_percent_round_trips_and_bad_values_name_the_field(
    client: Client,
) -> None:
    """WHK-E3, WHK-E10: the catalog document carries notifyAtPercent and lowBalanceThreshold
    both ways; out-of-order percents, a limitless link, or a threshold <= 0 get a 400 naming
    the field, and change nothing."""
    model = {"key": "tok", "denomination": "TOKENS", "lowBalanceThreshold": 25}
    catalog = put_catalog(client, _alerts_plan(), creditModels=[model])
    [alerts] = [p for p in catalog["plans"] if p["key"] == "alerts"]
    assert alerts["features"][0]["notifyAtPercent"] == [50, 100]
    [tok] = [m for m in catalog["creditModels"] if m["key"] == "tok"]
    assert tok["lowBalanceThreshold"] == 25
    cases = [
        ({"plans": [_alerts_plan(notifyAtPercent=[100, 50])]}, "notifyAtPercent"),
        ({"plans": [_alerts_plan(notifyAtPercent=[0])]}, "notifyAtPercent"),
        ({"plans": [_alerts_plan(maxUsage=None)]}, "notifyAtPercent"),
        ({"creditModels": [{**model, "lowBalanceThreshold": 0}]}, "lowBalanceThreshold"),
    ]
    for document, field in cases:
        message = error(client.put(f"{A}/catalog", json=document), 400)
        assert field in message, message
    after = ok(client.get(f"{A}/catalog"))
    assert after == catalog
