"""The Customers pages in Chromium (CON-20..CON-31): search, the detail page, and each action
confirmed and seen to take effect, through the same runtime calls as the API."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.console.conftest import ConsoleServer, axe_check, screenshot, sign_in

C = "/api/v1/client"
REF = "acme-co"


@pytest.fixture(scope="module")
def seeded(console_server: ConsoleServer) -> tuple[ConsoleServer, str]:
    """Three customers through the API; acme-co on pro_monthly (its first invoice DUE) with
    1,000 TOKENS granted, and one check denied (its reason returned)."""
    api, ok = console_server.api, console_server.ok
    for ref, email in (
        (REF, "Ops@Acme.example"),
        ("bravo", "b@bravo.example"),
        ("carol", "c@c.example"),
    ):
        body = {
            "customerReferenceId": ref,
            "firstName": ref.title(),
            "lastName": "Ltd",
            "email": email,
        }
        ok(api.post(f"{C}/customers", json=body), 201)
    plans = ok(api.get(f"{C}/plans"))
    pro = next(p["plan"]["id"] for p in plans if p["plan"]["key"] == "pro_monthly")
    ok(api.post(f"{C}/subscriptions", json={"customerReferenceId": REF, "planId": pro}), 201)
    denied = ok(api.get(f"{C}/entitlements/{REF}/api_calls"))  # unpaid: a denial (CON-26)
    assert denied["isAllowed"] is False
    grant = {"customerReferenceId": REF, "denomination": "TOKENS", "amount": 1000,
             "source": "PURCHASE"}  # fmt: skip
    ok(api.post("/api/v1/admin/credits/grants", json=grant), 201)
    return console_server, denied["meta"]["reason"]["description"]


def _confirm(page: Page, button: str) -> None:
    """Every action shows the API call first, then runs once confirmed (CON-28)."""
    page.get_by_role("button", name=button).click()
    expect(page.get_by_role("heading", name="What the API would do")).to_be_visible()
    page.get_by_role("button", name="Confirm:").click()


def test_search_open_grant_pay_cancel_revert(
    page: Page, seeded: tuple[ConsoleServer, str], shots_dir: Path
) -> None:
    server, reason = seeded
    sign_in(page, server)
    expect(page.get_by_text("3 customers in this environment")).to_be_visible()
    axe_check(page)
    screenshot(page, shots_dir, "customers")

    page.get_by_label("Reference id or email").fill("ops@ACME.example")  # CON-20: any case
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("1 customer match")).to_be_visible()
    page.get_by_role("link", name=REF).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(REF)
    balance = page.get_by_test_id("balance-TOKENS")
    expect(balance).to_have_text("1000")
    chart = page.locator("svg.chart").first
    assert chart.get_attribute("data-points") == "1"
    expect(page.get_by_test_id("sub-state")).to_have_text("PENDING_PAYMENT")
    expect(page.get_by_test_id("denial-reason")).to_have_text([reason])  # CON-26: the API's words
    axe_check(page)

    page.get_by_label("Amount").fill("250")  # CON-28: grant, confirm, see it
    page.get_by_role("button", name="Grant credits…").click()
    expect(page.locator("pre")).to_contain_text('"amount": 250')
    expect(page.locator("main")).to_contain_text("POST /api/v1/admin/credits/grants")
    axe_check(page)
    screenshot(page, shots_dir, "confirm-grant")
    page.get_by_role("button", name="Confirm:").click()
    expect(page.get_by_role("status")).to_have_text("Credits granted.")
    expect(balance).to_have_text("1250")
    assert chart.get_attribute("data-points") == "2" and chart.get_attribute("data-last") == "1250"

    expect(page.get_by_test_id("event-row")).to_have_count(0)  # CON-80: none yet
    event = {"eventName": "api_calls", "customerReferenceId": REF,
             "eventIdempotencyKey": "console-evt-1"}  # fmt: skip
    response = server.api.post(f"{C}/events", json=event)
    assert response.status_code in (200, 201), response.text
    _confirm(page, "Mark paid…")  # CON-28: the subscription waiting on it turns ACTIVE
    expect(page.get_by_test_id("event-row")).to_have_count(1)  # CON-80: read from the journal
    expect(page.get_by_test_id("event-row")).to_contain_text("console-evt-1")
    expect(page.get_by_role("status")).to_have_text("Invoice marked paid.")
    expect(page.get_by_test_id("invoice-status").first).to_have_text("PAID")
    expect(page.get_by_test_id("sub-state")).to_have_text("ACTIVE")

    _confirm(page, "Cancel subscription…")
    expect(page.get_by_role("status")).to_have_text("Subscription cancelled.")
    expect(page.get_by_text("Cancellation", exact=True)).to_be_visible()
    screenshot(page, shots_dir, "customer")
    _confirm(page, "Revert cancellation…")
    expect(page.get_by_role("status")).to_have_text("Scheduled cancellation reverted.")
    expect(page.get_by_text("Cancellation", exact=True)).to_have_count(0)
    expect(page.get_by_role("button", name="Cancel subscription…")).to_be_visible()

    # The API sees what the console did: the same state, through the same calls.
    data = server.ok(server.api.get(f"{C}/credits/{REF}/pools"))
    assert [p["balance"] for p in data] == [1250] or data[0]["balance"] > 1250  # + plan credits
