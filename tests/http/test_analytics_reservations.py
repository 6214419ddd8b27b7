"""Reservations in the analytics snapshot (issue 14 item 9): the `reservations` state table and
the `reservation_history` view, through the public API and `POST /api/v1/admin/snapshots`; and
held units are never usage (RSV-11): `events`, `usage_counters` and `credit_transactions`
count only what was committed."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from litestar.testing import TestClient

from allotment.config import Settings
from allotment.http.app import create_app
from allotment.persistence.keys import KeyStore
from allotment.runtime.clock import ManualClock
from allotment.wiring import build_system
from tests.conftest import KEY
from tests.http.helpers import A, C, Client, advance, check, ok
from tests.http.reservation_helpers import holder, reserve, settle


@pytest.fixture
def durable_client(tmp_path: Path, clock: ManualClock, keys: KeyStore) -> Iterator[Client]:
    """An app on a data directory (analytics snapshots need one), sandbox key."""
    settings = Settings(clock="manual", data_dir=tmp_path, durability="write")
    app = create_app(settings, build_system(settings, clock), keys)
    with TestClient(app, base_url="http://testserver.local") as client:
        client.headers["Authorization"] = f"Bearer {KEY}"
        yield client


def _query(data_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    connection = duckdb.connect(str(data_dir / "analytics.duckdb"), read_only=True)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def _d(value: str | int) -> Decimal:
    return Decimal(value).quantize(Decimal(1).scaleb(-12))


def _life(client: Client) -> None:
    """One customer's reservations, each settled its own way, 10 s apart on the manual clock:
    c (100 held, 80 committed), r (30 released), x (50, expired, then 40 committed late, RSV-16),
    e (5, extended, still held) and o (200, still held)."""
    holder(client, "an1", tokens=1000)
    ok(reserve(client, "an1", featureKey="ai_chat", units=100, reservationId="c"), 201)
    ok(reserve(client, "an1", featureKey="api_calls", units=30, reservationId="r"), 201)
    ok(reserve(client, "an1", featureKey="ai_chat", units=50, reservationId="x",
               ttlSeconds=15, eventName="llm_call"), 201)  # fmt: skip
    advance(client, seconds=10)
    ok(settle(client, "c", "commit", usageUnits=80, eventIdempotencyKey="k-c"))
    ok(settle(client, "r", "release"))
    advance(client, seconds=10)
    check(client, "an1", "ai_chat")  # a turn: x, due 5 s ago, expires (RSV-23)
    ok(settle(client, "x", "commit", usageUnits=40))
    ok(reserve(client, "an1", featureKey="api_calls", units=5, reservationId="e"), 201)
    ok(settle(client, "e", "extend", ttlSeconds=7200))
    ok(reserve(client, "an1", featureKey="ai_chat", units=200, reservationId="o"), 201)
    assert ok(client.post(f"{A}/snapshots"), 201)["customers"] == 1


def test_rsv_27_reservations_table_holds_every_kept_reservation(
    durable_client: Client, tmp_path: Path
) -> None:
    """One row per item of every reservation the state keeps, held and settled."""
    _life(durable_client)
    rows = _query(
        tmp_path,
        "SELECT reservation_id, feature_key, status, item_status, held_units, held_credits,"
        " usage_units, recorded_units, hold_expired, ttl_seconds,"
        " epoch(expires_at) - epoch(created_at), settled_at IS NOT NULL"
        " FROM reservations WHERE environment = 'test' ORDER BY created_at, reservation_id",
    )
    assert rows == [
        ("c", "ai_chat", "COMMITTED", "COMMITTED", _d(100), _d(100), _d(80), _d(80), False,
         3600, 3600, True),
        ("r", "api_calls", "RELEASED", "RELEASED", _d(30), None, None, None, None, 3600, 3600,
         True),
        ("x", "ai_chat", "COMMITTED", "EXPIRED", _d(50), _d(50), _d(40), _d(40), True, 15, 15,
         True),
        ("e", "api_calls", "HELD", "HELD", _d(5), None, None, None, None, 3600, 7200, False),
        ("o", "ai_chat", "HELD", "HELD", _d(200), _d(200), None, None, None, 3600, 3600, False),
    ]  # fmt: skip
    held = _query(
        tmp_path,
        "SELECT feature_key, sum(held_units) FROM reservations WHERE item_status = 'HELD'"
        " GROUP BY ALL ORDER BY 1",
    )
    assert held == [("ai_chat", _d(200)), ("api_calls", _d(5))]


def test_rsv_25_reservation_history_has_every_fact_with_its_timings(
    durable_client: Client, tmp_path: Path
) -> None:
    """One row per fact and item it concerns, in journal order, with the held units joined
    from the reserve and how long each hold lasted (the expiry is stamped when due, SCH-1)."""
    _life(durable_client)
    rows = _query(
        tmp_path,
        "SELECT reservation_id, fact, feature_key, held_units, held_seconds, usage_units,"
        " recorded_units, over_held_units, hold_expired, external_id"
        " FROM reservation_history ORDER BY journal_position, fact_index, feature_key",
    )
    assert rows == [
        ("c", "reserve", "ai_chat", _d(100), None, None, None, None, None, "an1"),
        ("r", "reserve", "api_calls", _d(30), None, None, None, None, None, "an1"),
        ("x", "reserve", "ai_chat", _d(50), None, None, None, None, None, "an1"),
        ("c", "commit", "ai_chat", _d(100), 10, _d(80), _d(80), _d(-20), False, "an1"),
        ("r", "release", "api_calls", _d(30), 10, None, None, None, None, "an1"),
        ("x", "expire", "ai_chat", _d(50), 15, None, None, None, None, "an1"),
        ("x", "commit", "ai_chat", _d(50), None, _d(40), _d(40), _d(-10), True, "an1"),
        ("e", "reserve", "api_calls", _d(5), None, None, None, None, None, "an1"),
        ("e", "extend", "api_calls", _d(5), None, None, None, None, None, "an1"),
        ("o", "reserve", "ai_chat", _d(200), None, None, None, None, None, "an1"),
    ]  # fmt: skip
    unique = _query(
        tmp_path,
        "SELECT count(*) FROM (SELECT journal_position, fact_index, feature_key"
        " FROM reservation_history GROUP BY ALL HAVING count(*) > 1)",
    )
    assert unique == [(0,)]


def test_rsv_11_held_units_are_never_usage_in_analytics(
    durable_client: Client, tmp_path: Path
) -> None:
    """RSV-11: 285 units were held at some point and 205 are still held, but `events`,
    `usage_counters` and the ledger's debits count the 120 committed units only."""
    _life(durable_client)
    events = _query(
        tmp_path,
        "SELECT feature_key, count(*), sum(usage_units) FROM events GROUP BY ALL ORDER BY 1",
    )
    assert events == [("ai_chat", 2, _d(120))]
    counters = _query(
        tmp_path,
        "SELECT feature_key, sum(used) FROM usage_counters GROUP BY ALL ORDER BY 1",
    )
    assert counters in ([("ai_chat", _d(120))], [("ai_chat", _d(120)), ("api_calls", _d(0))])
    debits = _query(
        tmp_path,
        "SELECT sum(amount) FROM credit_transactions WHERE type = 'DEBIT'",
    )
    assert debits == [(_d(-120),)]
    pools = _query(tmp_path, "SELECT balance FROM credit_pools")
    assert pools == [(_d(880),)]  # the 200 held are not spent (RSV-9: available 680)
    daily = _query(tmp_path, "SELECT sum(usage_units) FROM daily_usage_by_feature")
    assert daily == [(_d(120),)]
    assert check(durable_client, "an1", "ai_chat")["credit"]["available"] == 680
    assert durable_client.get(f"{C}/reservations/o").json()["data"]["status"] == "HELD"


def test_rsv_18_rsv_23_an_expiry_row_stands_for_the_items_still_held(
    durable_client: Client, tmp_path: Path
) -> None:
    """A reservation of two items: one committed, the other left to expire. The expiry gives a
    row for the item it released only, and `reservations` says which item ended how."""
    holder(durable_client, "an2", tokens=1000)
    items = [{"featureKey": "ai_chat", "units": 10}, {"featureKey": "api_calls", "units": 5}]
    ok(reserve(durable_client, "an2", items=items, reservationId="m", ttlSeconds=20), 201)
    advance(durable_client, seconds=5)
    ok(settle(durable_client, "m", "commit", featureKey="ai_chat", usageUnits=7))
    advance(durable_client, seconds=30)
    check(durable_client, "an2", "api_calls")  # a turn: m is due (RSV-23)
    assert ok(durable_client.post(f"{A}/snapshots"), 201)["customers"] == 1
    history = _query(
        tmp_path,
        "SELECT fact, feature_key, held_units, held_seconds, recorded_units"
        " FROM reservation_history ORDER BY journal_position, fact_index, feature_key",
    )
    assert history == [
        ("reserve", "ai_chat", _d(10), None, None),
        ("reserve", "api_calls", _d(5), None, None),
        ("commit", "ai_chat", _d(10), 5, _d(7)),
        ("expire", "api_calls", _d(5), 20, None),
    ]
    items_now = _query(
        tmp_path,
        "SELECT feature_key, status, item_status FROM reservations ORDER BY feature_key",
    )
    assert items_now == [
        ("ai_chat", "COMMITTED", "COMMITTED"),
        ("api_calls", "COMMITTED", "EXPIRED"),
    ]
