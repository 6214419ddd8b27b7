"""The console's browser harness (issue 20): a real `allotment serve` on a free port (manual
clock, the embedded demo catalog), Debian's chromium driven by Playwright, one browser per
module, and per test a fresh browser context whose every request is checked to go to the
server's own origin (CON-12).

Helpers: `sign_in(page, server)`, `axe_check(page)` (vendored axe-core, no serious or critical
violation, CON-15) and `screenshot(page, name)`: to a tmp artifacts dir, and to docs/console/
when CONSOLE_SCREENSHOTS=docs (how the committed set is refreshed).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright, Request, expect, sync_playwright

from tests.reliability.server import KEY, Server

__all__ = ("ConsoleServer", "axe_check", "screenshot", "sign_in")

CHROMIUM = "/usr/bin/chromium"
VENDOR = Path(__file__).parent / "vendor"
AXE = VENDOR / "axe-4.14.1.min.js"
DOCS_SHOTS = Path(__file__).parents[2] / "docs" / "console"
# No host resolves but loopback, and no proxy could help: anything from outside fails at once,
# and the network log below still records that it was asked for.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--proxy-server=direct://"]  # fmt: skip
BOUND_MS = 60_000  # Playwright's waits: a bound only a broken build reaches, never a duration
expect.set_options(timeout=BOUND_MS)


class ConsoleServer:
    """The server under test and an API client on it (the admin key, all scopes)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.url = server.url
        self.key = KEY
        self.api = httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=60
        )

    def ok(self, response: httpx.Response, status: int = 200) -> Any:
        assert response.status_code == status, response.text
        return response.json().get("data")

    def log(self) -> str:
        return self.server.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleServer]:
    data = tmp_path_factory.mktemp("console-data")
    # Debug logging and the access log on: the logs a sign-in writes are checked for the key.
    # Loopback webhook endpoints allowed: the webhooks page's test sends to a closed local port.
    server = Server(
        data, "--clock", "manual", "--access-log", "--allow-private-webhooks",
        env={"ALLOTMENT_LOG_LEVEL": "DEBUG"},
    )  # fmt: skip
    console = ConsoleServer(server)
    try:
        yield console
    finally:
        console.api.close()
        server.stop()


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: apt-get install chromium (.ci/run does)")
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def page(browser: Browser, console_server: ConsoleServer) -> Iterator[Page]:
    """A page in a fresh context (no cookies); after the test, every request it made must
    have gone to the server (CON-12) and none may carry the key in its URL (CON-5)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(BOUND_MS)
    requested: list[str] = []

    def record(request: Request) -> None:
        requested.append(request.url)

    context.on("request", record)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()
    origin = console_server.url + "/"
    outside = [url for url in requested if not url.startswith(origin)]
    assert not outside, f"requests outside the server: {outside}"
    assert requested, "the test loaded nothing"
    assert not [url for url in requested if console_server.key in url]


def sign_in(page: Page, server: ConsoleServer, next_path: str = "/console/customers") -> None:
    """Sign in through the form, as a person would, and land on `next_path`."""
    page.goto(f"{server.url}/console/sign-in?next={next_path}")
    page.get_by_label("Admin API key").fill(server.key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{server.url}{next_path}")


def axe_check(page: Page) -> None:
    """CON-15: axe-core (vendored) finds no serious or critical violation on the page. It is
    evaluated through the driver, not added as a script tag: the console's CSP allows no
    inline script, and the test must not weaken it."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    violations: list[dict[str, Any]] = page.evaluate(
        "async () => (await axe.run(document)).violations"
    )
    serious = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in violations
        if v["impact"] in ("serious", "critical")
    ]
    assert not serious, f"axe-core on {page.url}: {serious}"


@pytest.fixture(scope="session")
def shots_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test-artifact directory of this run's screenshots (printed by `screenshot`)."""
    return tmp_path_factory.mktemp("console-screenshots", numbered=False)


def screenshot(page: Page, shots: Path, name: str) -> Path:
    """The whole page as `name`.png in `shots`; with CONSOLE_SCREENSHOTS=docs, also in
    docs/console/ (the committed set the README links)."""
    path = shots / f"{name}.png"
    page.screenshot(path=path, full_page=True)
    assert path.stat().st_size > 5_000, f"{name}: a blank screenshot"
    if os.environ.get("CONSOLE_SCREENSHOTS") == "docs":
        DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_SHOTS / path.name)
    return path
