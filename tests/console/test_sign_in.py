"""Sign-in, the session cookie, CSRF and sign-out in a real Chromium (CON-1..CON-12, CON-15)."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from tests.console.conftest import ConsoleServer, axe_check, screenshot, sign_in


def test_sign_in_session_csrf_and_sign_out(
    page: Page, console_server: ConsoleServer, shots_dir: Path
) -> None:
    server = console_server
    page.goto(f"{server.url}/console/customers")  # CON-6: no session, so the sign-in page
    expect(page).to_have_url(f"{server.url}/console/sign-in?next=/console/customers")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to the allotment console")
    axe_check(page)
    screenshot(page, shots_dir, "sign-in")

    page.get_by_label("Admin API key").fill("sk_test_" + "x" * 32)  # CON-2: refused, said so
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("That key was not accepted")
    expect(page.get_by_label("Admin API key")).to_have_value("")  # never echoed back

    sign_in(page, server)
    expect(page.locator(".env-banner")).to_contain_text("Test environment")  # CON-8
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "allotment_console"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/console"
    assert cookie["expires"] > 0 and not cookie["secure"]  # CON-4: expiring; plain HTTP here
    assert server.key not in cookie["value"]

    # CON-9: a post without the token is refused, with the session cookie and all.
    refused = page.request.post(f"{server.url}/console/sign-out", form={"x": "1"})
    assert refused.status == 403
    expect(page.locator(".env-banner")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()  # CON-7
    expect(page).to_have_url(f"{server.url}/console/sign-in")
    old = {"name": cookie["name"], "value": cookie["value"], "url": f"{server.url}/console"}
    page.context.add_cookies([old])  # type: ignore[list-item]  # it names no session now
    page.goto(f"{server.url}/console/customers")
    expect(page).to_have_url(f"{server.url}/console/sign-in?next=/console/customers")

    assert server.key not in server.log()  # CON-5: the access log of all this
    assert "/console/sign-in" in server.log()  # ... which did record the sign-in
