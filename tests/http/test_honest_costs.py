"""Honest numbers, issue 13 item 7, through the API: an event whose model has no price has an
unknown cost, not a zero one (OPS-D5), and model prices are replaced at runtime, validated,
journalled and kept across restarts (OPS-D6); the shipped table is dated and sourced (OPS-D7).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from litestar.testing import TestClient

from allotment.config import DEFAULT_MODEL_PRICES, Settings
from allotment.http.app import create_app
from allotment.http.fast_path import FastPath
from allotment.persistence.keys import KeyStore
from allotment.runtime.clock import ManualClock
from allotment.runtime.system import ActorSystem
from allotment.wiring import build_system
from tests.conftest import KEY, LIVE_KEY
from tests.http.helpers import A, C, error, event, ok, paid_subscriber

PRICES: dict[str, Any] = {
    "asOf": "2026-01-15",
    "sources": ["https://example.com/pricing"],
    "models": {"house-model": {"provider": "Acme", "inputPerMillion": 4, "outputPerMillion": 8}},
}


class Server:
    """An app on a data directory, restartable: each `start` recovers from the disk."""

    def __init__(self, data_dir: Path, clock: ManualClock, keys: KeyStore) -> None:
        self.data_dir, self.clock, self.keys = data_dir, clock, keys
        self.system: ActorSystem | None = None

    def start(self, prices: Path | None = None) -> TestClient[FastPath]:
        settings = Settings(
            clock="manual", data_dir=self.data_dir, durability="write", model_prices_path=prices
        )
        self.system = build_system(settings, self.clock)
        app = create_app(settings, self.system, self.keys)
        client = TestClient(app, base_url="http://testserver.local")
        client.headers["Authorization"] = f"Bearer {KEY}"
        return client


@pytest.fixture
def server(tmp_path: Path, clock: ManualClock, keys: KeyStore) -> Server:
    return Server(tmp_path, clock, keys)


@pytest.fixture
def client(server: Server) -> Iterator[TestClient[FastPath]]:
    with server.start() as client:
        yield client


def _query(data_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    connection = duckdb.connect(str(data_dir / "analytics.duckdb"), read_only=True)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def _chat(client: TestClient[FastPath], key: str, model: str, revenue: str) -> Any:
    cost_input = {"model": model, "inputTokens": 1_000_000, "outputTokens": 500_000}
    return event(client, "buyer", key, eventName="chat", costInput=cost_input,
                 revenueAmount=int(revenue))  # fmt: skip


def test_an_unpriced_model_has_an_unknown_cost_left_out_of_margins(
    client: TestClient[FastPath], tmp_path: Path
) -> None:
    """OPS-D5: the reply says the cost is unknown; analytics stores NULL with cost_known false;
    the margin view excludes the event and counts it, instead of calling it free."""
    paid_subscriber(client, "buyer")
    priced = ok(_chat(client, "k1", "gpt-4o", "20"), 201)  # 2.50 + 5.00 = 7.50
    assert priced is None  # nothing to say: the cost is known
    unpriced = ok(_chat(client, "k2", "no-such-model", "30"), 201)
    assert unpriced["costKnown"] is False
    assert "Cost unknown" in unpriced["message"] and "'no-such-model'" in unpriced["message"]
    batch = client.post(f"{C}/events/batch", json={"events": [{
        "eventIdempotencyKey": "k3", "eventName": "chat", "customerReferenceId": "buyer",
        "costInput": {"model": "gpt-9", "inputTokens": 10}}]})  # fmt: skip
    assert ok(batch)["results"][0]["data"]["costKnown"] is False

    ok(client.post(f"{A}/snapshots"), 201)
    rows = _query(tmp_path, "SELECT model, cost_amount, cost_known FROM events "
                            "WHERE model IS NOT NULL ORDER BY model")  # fmt: skip
    assert rows == [
        ("gpt-4o", Decimal("7.5"), True),
        ("gpt-9", None, False),
        ("no-such-model", None, False),
    ]
    assert _query(tmp_path, "SELECT count(*) FROM events WHERE NOT cost_known") == [(2,)]
    margins = _query(tmp_path, """
        SELECT sum(events), sum(revenue), sum(cost), sum(margin),
               sum(events_cost_unknown), sum(revenue_cost_unknown)
        FROM margin_by_customer_feature_model WHERE model IS NOT NULL""")  # fmt: skip
    # Counted as free, the unpriced event would have made the margin 42.50, not 12.50.
    assert margins == [(1, Decimal(20), Decimal("7.5"), Decimal("12.5"), 2, Decimal(30))]


def test_prices_are_replaced_at_runtime_and_kept_across_restarts(server: Server) -> None:
    """OPS-D6: a PUT is validated (400 naming the field), applies to the next event, is
    journalled, survives a restart with and without a checkpoint, and is per environment."""
    with server.start() as client:
        paid_subscriber(client, "buyer")
        bad = {**PRICES, "models": {"m": {"provider": "x", "inputPerMillion": -1,
                                          "outputPerMillion": 1}}}  # fmt: skip
        assert "models.m.inputPerMillion" in error(client.put(f"{A}/model-prices", json=bad), 400)
        assert "asOf" in error(
            client.put(f"{A}/model-prices", json={**PRICES, "asOf": "soon"}), 400
        )
        before = ok(_chat(client, "k1", "house-model", "1"), 201)
        assert before["costKnown"] is False
        replaced = ok(client.put(f"{A}/model-prices", json=PRICES))
        assert replaced["models"]["house-model"]["provider"] == "acme"
        assert ok(_chat(client, "k2", "house-model", "1"), 201) is None  # priced now: 8.00
        client.headers["Authorization"] = f"Bearer {LIVE_KEY}"  # the other environment
        assert ok(client.get(f"{A}/model-prices"))["asOf"] != PRICES["asOf"]
    with server.start() as client:  # recovered from the journal alone
        assert ok(client.get(f"{A}/model-prices")) == replaced
        ok(client.post(f"{A}/snapshots"), 201)
        costs = _query(server.data_dir, "SELECT cost_amount FROM events WHERE model IS NOT NULL "
                                        "ORDER BY journal_position")  # fmt: skip
        assert costs == [(None,), (Decimal(8),)]  # the first event keeps its unknown cost
        assert server.system is not None
        client.blocking_portal.call(server.system.checkpoint_all)  # journal segments go
    with server.start() as client:  # recovered from the snapshot
        assert ok(client.get(f"{A}/model-prices")) == replaced


def test_a_later_price_file_replaces_the_recorded_table_at_start(
    server: Server, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """OPS-D6: the recorded table stays over a file of the same or an earlier date; a file
    dated later (an upgrade shipping new prices) replaces it, and that is journalled too."""
    folder = tmp_path_factory.mktemp("prices")
    with server.start() as client:
        ok(client.put(f"{A}/model-prices", json=PRICES))
    older = folder / "older.toml"
    older.write_text('asOf = "2026-01-14"\n[models.x]\nprovider = "p"\n'
                     "inputPerMillion = 1\noutputPerMillion = 1\n")  # fmt: skip
    with server.start(older) as client:
        assert ok(client.get(f"{A}/model-prices"))["asOf"] == "2026-01-15"
    newer = folder / "newer.toml"
    newer.write_text(older.read_text().replace("2026-01-14", "2026-02-01"))
    with server.start(newer) as client:
        assert ok(client.get(f"{A}/model-prices"))["models"] == {
            "x": {"provider": "p", "inputPerMillion": 1, "outputPerMillion": 1}
        }
    with server.start(older) as client:  # the newer table was journalled: it stays
        assert ok(client.get(f"{A}/model-prices"))["asOf"] == "2026-02-01"


def test_the_shipped_price_table_is_dated_and_sourced() -> None:
    """OPS-D7: later than the 2025-08-01 table the issue found, with the providers' pricing
    pages named in the file, and every model priced in both directions."""
    document = tomllib.loads(DEFAULT_MODEL_PRICES.read_text(), parse_float=Decimal)
    assert date.fromisoformat(document["asOf"]) > date(2025, 8, 1)
    assert {url.split("/")[2] for url in document["sources"]} == {
        "openai.com", "www.anthropic.com", "ai.google.dev"
    }  # fmt: skip
    providers = {price["provider"] for price in document["models"].values()}
    assert providers == {"openai", "anthropic", "google"}
    for name, price in document["models"].items():
        assert 0 < price["inputPerMillion"] <= price["outputPerMillion"], name
