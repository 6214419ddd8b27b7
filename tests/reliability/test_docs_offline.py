"""The API docs page renders with no network (issue 13 item 4, OPS-D1): a real `allotment
serve`, and headless Chromium that can resolve no host but 127.0.0.1, renders /schema/swagger
with every operation listed, and its screenshot is not blank.

Chromium is Debian's `chromium` package, which .ci/run installs; the test does not skip
without it, it fails and says so.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import zlib
from pathlib import Path

import httpx
import pytest

from tests.reliability.server import Server

# No host resolves but loopback, and no proxy could help: any CDN request fails at once.
OFFLINE = ("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--proxy-server=direct://")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", *OFFLINE)  # fmt: skip
WIDTH, HEIGHT = 1280, 1600
# Virtual time: the page's scripts run until idle or this much simulated time, whichever is
# first, however slow the machine is; the subprocess bound below is only a backstop.
BUDGET = "--virtual-time-budget=30000"


def _chromium(tmp_path: Path, *args: str) -> str:
    binary = shutil.which("chromium")
    if binary is None:
        pytest.fail("chromium is not installed: apt-get install chromium (.ci/run does)")
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"  # fresh each run
    done = subprocess.run(
        [binary, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _summaries(dom: str) -> list[str]:
    return re.findall(r'class="opblock-summary-description">([^<]*)<', dom)


def _distinct_bytes(png: bytes) -> int:
    """How many distinct byte values the decoded image rows hold: a blank page (one colour)
    has a handful, a rendered one hundreds."""
    assert png.startswith(b"\x89PNG\r\n\x1a\n"), "not a PNG"
    chunks, offset = b"", 8
    while offset < len(png):
        length = int.from_bytes(png[offset : offset + 4], "big")
        kind = png[offset + 4 : offset + 8]
        if kind == b"IDAT":
            chunks += png[offset + 8 : offset + 8 + length]
        offset += 12 + length
    return len(set(zlib.decompress(chunks)))


def test_the_docs_page_renders_every_operation_offline(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    server = Server(tmp_path / "data")
    try:
        document = httpx.get(f"{server.url}/schema/openapi.json", timeout=30).json()
        html = httpx.get(f"{server.url}/schema/swagger", timeout=30).text
        url = f"{server.url}/schema/swagger"
        shot = tmp_path / "docs.png"
        # One render gives both the DOM and the screenshot (a second Chromium start and render
        # of the same page cost CI 5 s or more and checked nothing more).
        window = f"--window-size={WIDTH},{HEIGHT}"
        dom = _chromium(tmp_path, BUDGET, window, f"--screenshot={shot}", "--dump-dom", url)
    finally:
        server.stop()

    loaded = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", html)
    assert loaded and all(link.startswith("/schema/") for link in loaded), loaded
    expected = {op["summary"] for item in document["paths"].values() for op in item.values()}
    assert len(expected) >= 26  # the 14 of the contract and allotment's own
    assert set(_summaries(dom)) == expected  # each listed under each of its tags
    assert "Ingest a usage event" in dom and "Replace the model price table" in dom

    png = shot.read_bytes()
    assert int.from_bytes(png[16:20], "big") == WIDTH
    assert int.from_bytes(png[20:24], "big") == HEIGHT
    assert _distinct_bytes(png) > 100, "the screenshot is blank"


def test_the_same_chromium_cannot_reach_a_cdn(tmp_path: Path) -> None:
    """The control that makes the test above mean "offline": with the same flags, a script
    from the CDN Litestar's docs page would use does not load."""
    cdn = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5.18.2/swagger-ui-bundle.js"
    page = (f'data:text/html,<script src="{cdn}"></script>'
            "<script>document.title = typeof SwaggerUIBundle</script>")  # fmt: skip
    dom = _chromium(tmp_path, BUDGET, "--dump-dom", page)
    assert "<title>undefined</title>" in dom
