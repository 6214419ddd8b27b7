"""The (source, id) window (OM-6), through the official client on a manual clock: a CloudEvent
sent again 35 days after the first, across a `kill -9` and a restart, is still a duplicate,
whether its key was in the last snapshot or only in the journal after it, and whether a
customer claimed its subject or not. Meters, features and subject keys changed after the last
snapshot come back from the journal alone (OM-16)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import httpx

from openmeter import Client
from openmeter import models as m
from tests.openmeter.support import A, om_client, tanso
from tests.reliability.server import Server

WINDOW = timedelta(days=35)  # the shortest window allotment keeps keys for (OM-6)
# Checkpoints only when asked (POST /admin/snapshots): what follows one is in the journal only.
SERVE = ("--clock", "manual", "--checkpoint-every", "86400")


def _event(event_id: str, subject: str) -> m.Event:
    return m.Event(id=event_id, source="window", specversion="1.0", type="dw.api",
                   subject=subject)  # fmt: skip


def _now(http: httpx.Client) -> datetime:
    answer = http.get(f"{A}/clock")
    assert answer.status_code == 200, answer.text
    return datetime.fromisoformat(answer.json()["data"]["now"])


def _count(om: Client) -> float:
    [row] = om.meters.query_json("dw_calls").data
    return row.value


def test_a_pair_is_a_duplicate_35_days_later_across_kill_9(tmp_path: Path) -> None:
    server = Server(tmp_path, *SERVE)
    try:
        om = om_client(server)
        om.meters.create(m.MeterCreate(slug="dw_calls", aggregation="COUNT", event_type="dw.api"))
        attribution = m.CustomerUsageAttribution(subject_keys=["dw-a"])
        om.customers.create(m.CustomerCreate(name="dw", key="dw", usage_attribution=attribution))
        with tanso(server) as http:
            start = _now(http)
            om.events.ingest_events([_event("a", "dw-a"), _event("b", "nobody")])
            assert http.post(f"{A}/snapshots").status_code == 201  # a and b: in the snapshot
            om.events.ingest_event(_event("c", "dw-a"))  # c: only in the journal after it
            # Changed after the snapshot: only the journal has these.
            om.meters.update("dw_calls", m.MeterUpdate(name="DW", group_by={"region": "$.region"}))
            om.meters.create(m.MeterCreate(slug="dw_late", aggregation="SUM", event_type="dw.api",
                                           value_property="$.n"))  # fmt: skip
            om.features.create(m.FeatureCreateInputs(key="dw_feature", name="DW",
                                                     meter_slug="dw_calls",
                                                     meter_group_by_filters={"region": "eu"}))  # fmt: skip
            late = m.CustomerUsageAttribution(subject_keys=["dw-b"])
            om.customers.create(m.CustomerCreate(name="dw2", key="dw2", usage_attribution=late))
            seconds = WINDOW // timedelta(seconds=1)
            advanced = http.post(f"{A}/clock/advance", json={"seconds": seconds})
            assert advanced.status_code == 200, advanced.text
        assert _count(om) == 3
    finally:
        server.kill()  # SIGKILL: no shutdown, no final snapshot
    restarted = Server(tmp_path, *SERVE)
    try:
        om = om_client(restarted)
        with tanso(restarted) as http:
            assert _now(http) >= start + WINDOW  # the manual clock kept its time (OPS-D4)
        meter = om.meters.get("dw_calls")
        assert (meter.name, meter.group_by) == ("DW", {"region": "$.region"})
        assert om.meters.get("dw_late").value_property == "$.n"
        feature = om.features.get("dw_feature")
        assert (feature.meter_slug, feature.meter_group_by_filters) == (
            "dw_calls",
            {"region": "eu"},
        )
        om.events.ingest_event(_event("e", "dw-b"))
        [event_e] = om.events.list(id="e", from_parameter=start)
        assert event_e.customer_id == om.customers.get("dw2").id  # its subject key came back
        om.events.ingest_events([_event(i, s) for i, s in
                                 (("a", "dw-a"), ("b", "nobody"), ("c", "dw-a"), ("d", "dw-a"))])  # fmt: skip
        assert _count(om) == 5  # a, b and c once each; d and e are new
        listed = om.events.list(id="c", from_parameter=start - timedelta(days=1))
        assert [e.event.time for e in listed] == [listed[0].ingested_at]  # the first c, only
        assert listed[0].ingested_at < start + timedelta(days=1)
    finally:
        restarted.kill()
