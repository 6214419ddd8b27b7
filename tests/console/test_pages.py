"""The console's overview, plans, invoices, webhooks & keys and clock pages in a real Chromium
(docs/console.md CON-40..CON-79): each page loads, passes axe-core (CON-15) and is
photographed; the catalog editor, the invoice filter, a webhook resend, a key shown once and
revoked, and the clock's advance each work end to end through the admin API's own calls."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from tests.console.conftest import ConsoleServer, axe_check, screenshot, sign_in
from tests.waiting import wait_until
from tests.webhooks.receiver import Receiver

CUSTOMERS = "/api/v1/client/customers"


def _subscriber(server: ConsoleServer, ref: str, plan_key: str, paid: bool) -> str:
    """A customer on `plan_key`, its initial invoice paid or left DUE; the invoice id."""
    api = server.api
    customer = {"externalClientCustomerId": ref, "firstName": "Console", "lastName": "Test",
                "email": f"{ref}@example.com"}  # fmt: skip
    server.ok(api.post(CUSTOMERS, json=customer), 201)
    plans = server.ok(api.get("/api/v1/client/plans"))
    plan_id = next(p["plan"]["id"] for p in plans if p["plan"]["key"] == plan_key)
    body = {"customerReferenceId": ref, "planId": plan_id}
    subscribed = server.ok(api.post("/api/v1/client/subscriptions", json=body), 201)
    invoice_id: str = subscribed["invoice"]["id"]
    if paid:
        server.ok(api.post(f"/api/v1/client/billing/invoices/{invoice_id}/mark-paid"))
    return invoice_id


def _event(server: ConsoleServer, ref: str, key: str) -> None:
    body = {"customerReferenceId": ref, "eventName": "api_calls", "eventIdempotencyKey": key}
    server.ok(server.api.post("/api/v1/client/events", json=body), 201)


def test_catalog_editor_shows_field_errors_then_saves(
    page: Page, console_server: ConsoleServer, shots_dir: Path
) -> None:
    """CON-50..CON-55: a wrong price is refused with its field and line, then fixed and
    saved through the admin API's path, and the plan page shows the new price."""
    server = console_server
    sign_in(page, server, "/console/plans")
    expect(page.get_by_role("heading", name=re.compile(r"^Pro"))).to_be_visible()
    axe_check(page)
    screenshot(page, shots_dir, "plans")

    editor = page.get_by_label("Catalog document (JSON)")
    original = editor.input_value()
    pro = original.index('"key": "pro_monthly"')
    price = original.index('"priceAmount": ', pro)
    end = original.index(",", price)
    wrong = original[:price] + '"priceAmount": -5' + original[end:]
    editor.fill(wrong)
    page.get_by_role("button", name="Save the catalog").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("plans[pro_monthly].priceAmount")
    expect(alert).to_contain_text("must be a finite number >= 0")
    line = wrong[: wrong.index('"priceAmount": -5')].count("\n") + 1
    expect(alert).to_contain_text(f"Line {line}")  # CON-53: where the field is
    expect(alert.locator("pre.excerpt")).to_contain_text('"priceAmount": -5')
    expect(editor).to_have_attribute("aria-invalid", "true")
    alert.get_by_role("link", name=f"Line {line}").click()  # the cursor goes to the line
    selected = editor.evaluate("e => e.value.slice(e.selectionStart, e.selectionEnd)")
    assert selected.strip() == '"priceAmount": -5,'
    axe_check(page)
    screenshot(page, shots_dir, "plans-catalog-error")
    catalog = server.ok(server.api.get("/api/v1/admin/catalog"))  # nothing changed
    assert next(p for p in catalog["plans"] if p["key"] == "pro_monthly")["priceAmount"] != -5

    fixed = editor.input_value().replace('"priceAmount": -5', '"priceAmount": 59', 1)
    editor.fill(fixed)
    page.get_by_role("button", name="Save the catalog").click()
    expect(page).to_have_url(f"{server.url}/console/plans?saved=true")
    card = page.locator("section.plan", has=page.locator("#plan-pro_monthly"))
    expect(card).to_contain_text("59.00 USD")
    catalog = server.ok(server.api.get("/api/v1/admin/catalog"))
    assert next(p for p in catalog["plans"] if p["key"] == "pro_monthly")["priceAmount"] == 59


def test_overview_invoices_filter_and_clock(
    page: Page, console_server: ConsoleServer, shots_dir: Path
) -> None:
    """CON-40..CON-46 (the overview from a snapshot), CON-56..CON-59 (the invoice filter,
    statuses read live) and CON-67..CON-69 (the clock's advance)."""
    server = console_server
    due = _subscriber(server, "inv-due", "pro_monthly", paid=False)
    _subscriber(server, "inv-paid", "starter_monthly", paid=True)
    for n in range(3):
        _event(server, "inv-paid", f"ov-{n}")
    server.ok(server.api.post("/api/v1/admin/snapshots"), 201)

    sign_in(page, server, "/console/")
    expect(page.locator("#freshness")).to_contain_text("analytics snapshot")
    subs = page.locator(
        "section", has=page.get_by_role("heading", name="Active subscriptions by plan")
    )
    expect(subs).to_contain_text("starter_monthly")
    expect(page.locator("#events-chart-title")).to_contain_text("total 3 events")
    recv = page.locator("section", has=page.get_by_role("heading", name="Receivables by age"))
    expect(recv).to_contain_text("USD")
    axe_check(page)
    screenshot(page, shots_dir, "overview")
    _event(server, "inv-paid", "ov-3")  # CON-42: a new snapshot replaces the kept figures
    page.get_by_role("button", name="Take a snapshot now").click()
    expect(page.get_by_role("status")).to_contain_text("A new analytics snapshot was taken")
    expect(page.locator("#events-chart-title")).to_contain_text("total 4 events")

    page.get_by_role("link", name="Invoices").click()
    page.get_by_label("Status").select_option("DUE")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"/console/invoices\?status=DUE"))
    rows = page.locator("tbody tr")
    expect(rows.filter(has_text="inv-due")).to_have_count(1)
    expect(rows.filter(has_text="inv-paid")).to_have_count(0)
    axe_check(page)
    screenshot(page, shots_dir, "invoices")
    server.ok(server.api.post(f"/api/v1/client/billing/invoices/{due}/mark-paid"))
    page.reload()  # the list is the snapshot's; the status is read now (CON-58)
    expect(rows.filter(has_text="inv-due")).to_contain_text("was DUE at the snapshot")
    page.get_by_label("Status").select_option("PAID")
    page.get_by_label("Age").select_option("older")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#invoice-count")).to_have_text("0 invoices match.")

    page.get_by_role("link", name="Clock").click()
    before = datetime.fromisoformat(page.locator("#clock-now").get_attribute("datetime") or "")
    axe_check(page)
    screenshot(page, shots_dir, "clock")
    page.get_by_role("button", name="Advance 1 day").click()
    expect(page.get_by_role("status")).to_contain_text("The clock moved")
    after = datetime.fromisoformat(page.locator("#clock-now").get_attribute("datetime") or "")
    assert after - before == timedelta(days=1)
    now = server.ok(server.api.get("/api/v1/admin/clock"))["now"]
    assert datetime.fromisoformat(now.replace("Z", "+00:00")) == after


def test_webhook_resend_and_key_shown_once_then_revoked(
    page: Page, console_server: ConsoleServer, shots_dir: Path
) -> None:
    """CON-60..CON-66: a delivery resent from the page arrives again, same webhook-id; a key
    created on the page is shown once, works, and is refused once revoked there."""
    server = console_server
    receiver = Receiver()  # a real endpoint on loopback, answering 200
    try:
        body = {"url": receiver.url, "eventTypes": ["invoice.created"]}
        server.ok(server.api.post("/api/v1/admin/webhooks", json=body), 201)
        _subscriber(server, "hook-1", "pro_monthly", paid=False)  # sends invoice.created
        (first,) = wait_until(receiver.accepted, "the invoice.created delivery")
        _resend_from_the_page(page, server, receiver, first.id)
    finally:
        receiver.close()
    _key_shown_once_then_revoked(page, server, shots_dir)


def _resend_from_the_page(page: Page, server: ConsoleServer, receiver: Receiver, sent: str) -> None:
    sign_in(page, server, "/console/webhooks")
    card = page.locator("section.endpoint", has_text=receiver.url)
    expect(card.locator("tr", has_text=sent)).to_contain_text("delivered")
    axe_check(page)
    card.get_by_role("button", name=f"Resend invoice.created {sent}").click()
    expect(page.get_by_role("status")).to_contain_text("queued to be sent again")
    wait_until(  # the same webhook-id, delivered a second time (WHK-D36)
        lambda: len([d for d in receiver.accepted() if d.id == sent]) == 2, "the resend"
    )


def _key_shown_once_then_revoked(page: Page, server: ConsoleServer, shots_dir: Path) -> None:
    page.get_by_label("Name").fill("console-made")
    page.get_by_label("client:read").check()
    page.get_by_role("button", name="Create key").click()
    new_key = page.get_by_label("New API key").input_value()
    assert new_key.startswith("sk_test_")
    screenshot(page, shots_dir, "webhooks-keys")
    headers = {"Authorization": f"Bearer {new_key}"}
    assert httpx.get(f"{server.url}/api/v1/client/plans", headers=headers).status_code == 200
    page.goto(f"{server.url}/console/webhooks")  # CON-63: never shown again
    assert new_key not in page.content()
    row = page.locator("tr", has_text="console-made")
    expect(row).to_contain_text("client:read")
    row.get_by_role("button", name="Revoke console-made").click()
    expect(page.get_by_role("status")).to_contain_text("The key is revoked")
    expect(page.locator("tr", has_text="console-made")).to_contain_text("REVOKED")
    axe_check(page)
    assert httpx.get(f"{server.url}/api/v1/client/plans", headers=headers).status_code == 401
    assert new_key not in server.log()  # CON-5's rule holds for keys made here too
