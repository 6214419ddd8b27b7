"""Credit notes in the analytics snapshot (CN-46): the `credit_notes` and `credit_note_lines`
tables, the invoices' numbers and running totals, and `net_revenue_by_month` on a scenario."""

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
from tests.http.helpers import A, Client, create_customer, ok, paid_subscriber, subscribe


@pytest.fixture
def durable_client(tmp_path: Path, clock: ManualClock, keys: KeyStore) -> Iterator[Client]:
    settings = Settings(clock="manual", data_dir=tmp_path, durability="write")
    app = create_app(settings, build_system(settings, clock), keys)
    with TestClient(app, base_url="http://testserver.local") as client:
        client.headers["x-api-key"] = KEY  # the Flexprice paths' header; Tanso takes it too
        yield client


def _flex(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def _note(client: Client, invoice: str, amount: str, **extra: Any) -> dict[str, Any]:
    line = _flex(client.get(f"/v1/invoices/{invoice}"))["line_items"][0]["id"]
    body = {"invoice_id": invoice, "reason": "BILLING_ERROR",
            "line_items": [{"invoice_line_item_id": line, "amount": amount}], **extra}  # fmt: skip
    note: dict[str, Any] = _flex(client.post("/v1/creditnotes", json=body), 201)
    return note


def _query(data_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    connection = duckdb.connect(str(data_dir / "analytics.duckdb"), read_only=True)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def test_cn46_net_revenue_by_month_is_invoiced_less_credited(
    durable_client: Client, tmp_path: Path
) -> None:
    """Two 49.00 invoices; an adjustment of 9.00, a refund of 10.00, and a 2.00 note voided:
    net revenue 98.00 - 19.00 = 79.00 in USD; the voided note counts for nothing."""
    create_customer(durable_client, "an-unpaid")
    unpaid = subscribe(durable_client, "an-unpaid", "pro_monthly")["invoice"]["id"]
    paid = paid_subscriber(durable_client, "an-paid")["invoice"]["id"]
    adjustment = _note(durable_client, unpaid, "9.00")
    _note(durable_client, paid, "10.00")
    voided = _note(durable_client, unpaid, "2.00")
    _flex(durable_client.post(f"/v1/creditnotes/{voided['id']}/void"))
    ok(durable_client.post(f"{A}/snapshots"), 201)

    rows = _query(tmp_path, "SELECT currency, invoiced, credited, net_revenue "
                            "FROM net_revenue_by_month")  # fmt: skip
    assert [(c, Decimal(i), Decimal(cr), Decimal(n)) for c, i, cr, n in rows] == [
        ("USD", Decimal(98), Decimal(19), Decimal(79))
    ]
    invoice = _query(tmp_path, "SELECT invoice_number, amount_due, adjustment_amount, "
                     f"amount_remaining, payment_status FROM invoices WHERE invoice_id = '{unpaid}'")  # fmt: skip
    assert invoice == [(adjustment_number(durable_client, unpaid), Decimal(40), Decimal(9),
                        Decimal(40), "PENDING")]  # fmt: skip
    refunded = _query(tmp_path, f"SELECT refunded_amount, amount_paid FROM invoices "
                      f"WHERE invoice_id = '{paid}'")  # fmt: skip
    assert refunded == [(Decimal(10), Decimal(49))]
    notes = _query(tmp_path, "SELECT credit_note_status, credit_note_type, total_amount, "
                   "refund_status FROM credit_notes ORDER BY total_amount")  # fmt: skip
    assert notes == [("VOIDED", "ADJUSTMENT", Decimal(2), None),
                     ("FINALIZED", "ADJUSTMENT", Decimal(9), None),
                     ("FINALIZED", "REFUND", Decimal(10), "PENDING")]  # fmt: skip
    lines = _query(tmp_path, "SELECT credit_note_id, amount FROM credit_note_lines "
                   f"WHERE credit_note_id = '{adjustment['id']}'")  # fmt: skip
    assert lines == [(adjustment["id"], Decimal(9))]


def adjustment_number(client: Client, invoice: str) -> str:
    number: str = _flex(client.get(f"/v1/invoices/{invoice}"))["invoice_number"]
    return number
