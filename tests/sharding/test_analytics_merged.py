"""The analytics snapshot over shards (docs/scale-out.md SCL-74, SCL-75): the same commands on
one process and on three shards give one `analytics.duckdb` each, with the same tables and
views holding the same rows (ids, journal positions and sequence numbers aside: those are
minted differently by design)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import msgspec
from litestar.testing import TestClient

from allotment.config import Settings
from allotment.http.app import create_app
from allotment.persistence.keys import KeyStore
from allotment.runtime.clock import ManualClock
from allotment.wiring import build_system
from tests.conftest import KEY, START
from tests.http.helpers import A, check, create_customer, event, grant, ok, paid_subscriber
from tests.http.reservation_helpers import holder, reserve, settle

# Differ between any two runs, or between one process and shards, by design.
_MINTED = ("id", "journal_position", "invoice_number", "credit_note_number", "sequence", "path")


def _scenario(client: TestClient[Any]) -> dict[str, Any]:
    """Customers on every shard with subscriptions, credits, usage, checks, a reservation
    and a credit note; then the snapshot (its report)."""
    invoice_id = ""
    for n in range(8):
        ref = f"an-{n}"
        if n % 2 == 0:
            invoice_id = paid_subscriber(client, ref)["invoice"]["id"]
        else:
            create_customer(client, ref)
        assert grant(client, ref, 50 + n).status_code == 201
        for k in range(n % 3 + 1):
            assert event(client, ref, f"{ref}-e{k}", usageUnits=k + 1).status_code in (200, 201)
        check(client, ref, "api_calls")
    holder(client, "an-holder")
    ok(reserve(client, "an-holder", featureKey="ai_chat", units=10, reservationId="r1"), 201)
    ok(settle(client, "r1", "commit", usageUnits=4, eventIdempotencyKey="k-r1"))
    line = client.get(f"/v1/invoices/{invoice_id}").json()["line_items"][0]["id"]
    body = {"invoice_id": invoice_id, "reason": "BILLING_ERROR",
            "line_items": [{"invoice_line_item_id": line, "amount": "3.00"}]}  # fmt: skip
    assert client.post("/v1/creditnotes", json=body).status_code == 201
    report: dict[str, Any] = ok(client.post(f"{A}/snapshots"), 201)
    return report


def _run(data_dir: Path, shards: int) -> dict[str, Any]:
    settings = Settings(clock="manual", data_dir=data_dir, durability="write", shards=shards)
    store = KeyStore()
    store.add(KEY)
    app = create_app(settings, build_system(settings, ManualClock(START)), store)
    with TestClient(app, base_url="http://testserver.local") as client:
        client.headers["Authorization"] = f"Bearer {KEY}"
        client.headers["x-api-key"] = KEY
        return _scenario(client)


def _contents(path: Path) -> dict[str, Counter[tuple[Any, ...]]]:
    """Every table and view: its rows without the minted columns, as a multiset."""
    connection = duckdb.connect(str(path), read_only=True)
    try:
        names = [n for (n,) in connection.execute(
            "SELECT table_name FROM information_schema.tables").fetchall()]  # fmt: skip
        contents = {}
        for name in names:
            columns = [c for (c,) in connection.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
                "ORDER BY ordinal_position", [name]).fetchall()]  # fmt: skip
            kept = [c for c in columns if not c.endswith(_MINTED)]
            rows = connection.execute(f'SELECT {", ".join(kept)} FROM "{name}"').fetchall()
            contents[name] = Counter(rows)
        return contents
    finally:
        connection.close()


def test_scl74_three_shards_merge_into_the_one_process_database(tmp_path: Path) -> None:
    """SCL-74, SCL-75: the merged database has every table and view of the one-process
    database with the same rows (plus `shard_info`, one row per shard and environment);
    its report counts every shard's customers and each table's rows."""
    single = _run(tmp_path / "one", 1)
    merged = _run(tmp_path / "three", 3)
    assert merged["path"] == str(tmp_path / "three" / "analytics.duckdb")
    one = _contents(tmp_path / "one" / "analytics.duckdb")
    three = _contents(tmp_path / "three" / "analytics.duckdb")
    shard_info = three.pop("shard_info")
    assert sorted(three) == sorted(one)
    for name in one:
        assert three[name] == one[name], name
    assert sum(shard_info.values()) == 3 * len(one["snapshot_info"])
    assert merged["customers"] == single["customers"] == 9
    assert merged["tables"]["customers"] == 9
    assert merged["tables"]["events"] == sum(one["events"].values()) > 0
    assert merged["tables"]["entitlement_checks"] == sum(one["entitlement_checks"].values()) > 0
    assert msgspec.json.decode(msgspec.json.encode(merged["exported"]))  # every environment
