"""Unapplied payments on disk (MNY-C3): in the analytics database, and recovered from a
snapshot plus the journal's tail after a restart."""

from __future__ import annotations

import gc
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import duckdb
from litestar.testing import TestClient

from allotment.config import Settings
from allotment.http.app import create_app
from allotment.persistence.keys import KeyStore
from allotment.runtime.clock import ManualClock
from allotment.wiring import build_system, checkout_service
from tests.conftest import KEY, START
from tests.http.helpers import A, C, create_customer, subscribe
from tests.payments.conftest import STRIPE_KEY, WEBHOOK_SECRET
from tests.stripe_double import StripeDouble


def _settings(data_dir: Path, double: StripeDouble) -> Settings:
    return Settings(
        clock="manual", data_dir=data_dir, durability="write", stripe_secret_key=STRIPE_KEY,
        stripe_webhook_secret=WEBHOOK_SECRET, stripe_api_base=double.url,
    )  # fmt: skip


def _first_start(data_dir: Path, keys: KeyStore, double: StripeDouble) -> list[dict[str, Any]]:
    """Keep one payment for a customer (its invoice voided) and two at the environment's
    level, one of them after a checkpoint; take an analytics snapshot. Returns the listing."""
    settings = _settings(data_dir, double)
    clock = ManualClock(START)
    system = build_system(settings, clock)
    app = create_app(settings, system, keys, checkout_service(settings, clock))
    with TestClient(app, base_url="http://testserver.local") as client:
        client.headers["Authorization"] = f"Bearer {KEY}"
        double.deliver = lambda payload, headers: (
            client.post("/api/v1/webhooks/stripe", content=payload, headers=headers).status_code
        )
        create_customer(client, "gone")
        data = subscribe(client, "gone", "pro_monthly")
        url = client.post(f"{C}/billing/invoices/{data['invoice']['id']}/stripe/checkout")
        session = url.json()["data"]["url"].rsplit("/", 1)[-1]
        client.post(
            f"{C}/subscriptions/cancellation/{data['subscription']['id']}",
            json={"cancelMode": "IMMEDIATE"},
        )
        assert double.complete(session) == 200
        assert double.pay_elsewhere({"invoice_id": "x"}, amount_total=1999) == 200
        assert system.storage is not None
        client.blocking_portal.call(system.storage.checkpoint, "test", system.shard("test"))
        assert double.pay_elsewhere({}, amount_total=5, currency="jpy") == 200  # the tail
        assert client.post(f"{A}/snapshots").status_code == 201
        listed: list[dict[str, Any]] = client.get(f"{A}/unapplied-payments").json()["data"]
    return listed


def test_mny_c3_unapplied_payments_reach_analytics_and_survive_a_snapshot_restart(
    tmp_path: Path, keys: KeyStore
) -> None:
    """MNY-C3 (issue 12 item 6): one payment kept for a customer (voided invoice), two at the
    environment's level (no invoice, no customer). All are rows of `unapplied_payments`, and
    all are listed again after a restart from a checkpoint followed by a journal tail."""
    with StripeDouble(STRIPE_KEY, WEBHOOK_SECRET) as double:
        before = _first_start(tmp_path, keys, double)
        gc.collect()  # the first start's system is gone: its data directory is free
        connection = duckdb.connect(str(tmp_path / "analytics.duckdb"), read_only=True)
        rows = connection.execute(
            "SELECT environment, customer_id IS NULL, amount_minor, amount, currency "
            "FROM unapplied_payments ORDER BY amount_minor"
        ).fetchall()
        connection.close()
        assert rows == [
            ("test", True, 5, Decimal(5), "JPY"),  # yen have no minor unit
            ("test", True, 1999, Decimal("19.99"), "USD"),
            ("test", False, 4900, Decimal("49.00"), "USD"),
        ]
        again = build_system(_settings(tmp_path, double), ManualClock(START))

        async def listed() -> list[str]:
            async with again.running():
                records = await again.shard("test").list_unapplied_payments()
            return [r.payment.session_id for r in records]

        assert anyio.run(listed) == [p["sessionId"] for p in before]
        assert len(before) == 3


def test_unapplied_payments_table_exists_without_any(tmp_path: Path) -> None:
    """The table fixes its schema even when nothing was ever unapplied (an empty server)."""
    system = build_system(Settings(data_dir=tmp_path, clock="manual"), ManualClock(START))

    async def snapshot() -> None:
        async with system.running():
            system.shard("test")
            await system.snapshot_analytics()

    anyio.run(snapshot)
    connection = duckdb.connect(str(tmp_path / "analytics.duckdb"), read_only=True)
    assert connection.execute("SELECT count(*) FROM unapplied_payments").fetchone() == (0,)
    connection.close()
