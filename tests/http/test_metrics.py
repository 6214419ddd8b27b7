"""`GET /metrics` after real traffic (issue 13, item 5): every documented metric name is exported
in the Prometheus text format, requests are labelled by route template whichever path served
them, and only a key with the `metrics` scope reads it (OPS-M1, OPS-M2; docs/observability.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from allotment.config import Settings
from allotment.http.app import create_app
from allotment.http.fast_path import FastPath
from allotment.persistence.keys import KeyStore
from allotment.runtime.clock import ManualClock
from allotment.wiring import build_system
from tests.conftest import KEY, READ_ONLY_KEY
from tests.http.helpers import A, C, paid_subscriber

METRICS_KEY = "sk_test_" + "m" * 32  # the metrics scope alone
CHECK_ROUTE = f"{C}/entitlements/{{customerReferenceId}}/{{feature-key}}"

# Every name docs/observability.md lists (the client adds _total, _bucket, _count, _sum).
DOCUMENTED = {
    "allotment_http_requests_total",
    "allotment_http_request_duration_seconds_bucket",
    "allotment_turns_total",
    "allotment_customers",
    "allotment_event_keys",
    "allotment_timers",
    "allotment_shard_up",
    "allotment_shard_rebuilds_total",
    "allotment_journal_position",
    "allotment_journal_durable_position",
    "allotment_journal_pending_bytes",
    "allotment_journal_pending_bytes_max",
    "allotment_journal_commit_duration_seconds_bucket",
    "allotment_journal_commit_records_bucket",
    "allotment_audit_buffer_records",
    "allotment_audit_buffer_records_max",
    "allotment_audit_records_total",
    "allotment_audit_records_dropped_total",
    "allotment_checkpoints_total",
    "allotment_checkpoint_duration_seconds_bucket",
    "allotment_checkpoint_size_bytes",
    "allotment_analytics_runs_total",
    "allotment_analytics_duration_seconds_bucket",
    "allotment_recovery_records_replayed",
    "allotment_recovery_customers",
    "allotment_recovery_duration_seconds",
    "allotment_recovery_snapshot_position",
    "process_resident_memory_bytes",
    "python_gc_collections_total",
}


@pytest.fixture
def durable_app(tmp_path: Path, clock: ManualClock) -> FastPath:
    """The app on a file journal: journal, checkpoint and recovery metrics exist only there."""
    settings = Settings(clock="manual", data_dir=tmp_path, durability="write")
    keys = KeyStore()
    keys.add(KEY)
    keys.add(READ_ONLY_KEY, ("client:read",))
    keys.add(METRICS_KEY, ("metrics",))
    return create_app(settings, build_system(settings, clock), keys)


@pytest.fixture
def durable_client(durable_app: FastPath) -> Iterator[TestClient[FastPath]]:
    """No envelope check: /metrics answers text, not JSON."""
    with TestClient(durable_app, base_url="http://testserver.local") as client:
        client.headers["Authorization"] = f"Bearer {KEY}"
        yield client


def _samples(client: TestClient[FastPath], key: str = METRICS_KEY) -> list[Sample]:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    families = text_string_to_metric_families(response.text)
    return [sample for family in families for sample in family.samples]


def _value(samples: list[Sample], name: str, **labels: str) -> float:
    found = [s.value for s in samples if s.name == name and labels.items() <= s.labels.items()]
    assert len(found) == 1, (name, labels, found)
    return found[0]


def _traffic(client: TestClient[FastPath], app: FastPath) -> None:
    """A customer, a subscription, events, a check, a 404, then an analytics snapshot (through
    the admin API) and a checkpoint."""
    paid_subscriber(client, "acme")
    for n in range(3):
        event = {"eventName": "api_calls", "customerReferenceId": "acme",
                 "featureKey": "api_calls", "eventIdempotencyKey": f"e{n}"}  # fmt: skip
        assert client.post(f"{C}/events", json=event).status_code == 201
    assert client.get(f"{C}/entitlements/acme/api_calls").status_code == 200
    assert client.get("/no/such/path").status_code == 404
    assert client.post(f"{A}/snapshots").status_code == 201
    system = app.litestar.state["system"]
    client.blocking_portal.call(system.checkpoint_all)  # on the app's own event loop


def test_every_documented_metric_is_exported_after_real_traffic(
    durable_client: TestClient[FastPath], durable_app: FastPath
) -> None:
    """OPS-M1: the names of docs/observability.md, with values that follow the traffic."""
    _traffic(durable_client, durable_app)
    samples = _samples(durable_client)
    missing = DOCUMENTED - {sample.name for sample in samples}
    assert not missing, missing
    requests = "allotment_http_requests_total"
    assert _value(samples, requests, method="GET", route=CHECK_ROUTE, status="200") == 1
    assert _value(samples, requests, method="POST", route=f"{C}/events", status="201") == 3
    assert _value(samples, requests, method="GET", route="unmatched", status="404") == 1
    assert _value(samples, "allotment_customers", environment="test") == 1
    assert _value(samples, "allotment_turns_total", environment="test") >= 5
    commits = _value(samples, "allotment_journal_commit_records_sum", environment="test")
    assert commits == _value(samples, "allotment_journal_durable_position", environment="test")
    assert _value(samples, "allotment_analytics_runs_total", result="written") == 1
    assert _value(samples, "allotment_audit_records_total", environment="test") == 1
    latency = "allotment_http_request_duration_seconds_count"
    assert _value(samples, latency, method="GET", route=CHECK_ROUTE) == 1


def test_the_fast_path_and_litestar_label_a_request_alike(
    durable_client: TestClient[FastPath], durable_app: FastPath, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check served by the fast path and the same check left to Litestar count as one
    route: the template Litestar matched, not the path (whose ids would make series without
    bound)."""
    paid_subscriber(durable_client, "acme")
    assert durable_client.get(f"{C}/entitlements/acme/api_calls").status_code == 200
    monkeypatch.setattr(durable_app, "_serves_check", False)  # from now on Litestar answers
    assert durable_client.get(f"{C}/entitlements/acme/ai_chat").status_code == 200
    samples = _samples(durable_client)
    requests = "allotment_http_requests_total"
    assert _value(samples, requests, method="GET", route=CHECK_ROUTE, status="200") == 2


def test_metrics_need_a_key_with_the_metrics_scope(durable_client: TestClient[FastPath]) -> None:
    """OPS-M2: no key is 401, a key without the scope is 403 (both in the error envelope); the
    metrics scope alone is enough, and every scope (the default of `keys create`) includes it."""
    unauthenticated = durable_client.get("/metrics", headers={"Authorization": ""})
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["success"] is False
    assert durable_client.get("/metrics", headers={"Authorization": f"Bearer {READ_ONLY_KEY}"}
                              ).status_code == 403  # fmt: skip
    assert _samples(durable_client, METRICS_KEY)
    assert _samples(durable_client, KEY)
