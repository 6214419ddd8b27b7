"""The manual clock survives a real restart (issue 13 item 7, OPS-D4): a sandbox 40 days into
the tutorial stays 40 days in after `kill -9` and a new `allotment serve`, and moves on from
there. Before, it jumped back to the real time."""

from __future__ import annotations

import os
import stat
from datetime import datetime, timedelta
from pathlib import Path

import httpx

from tests.reliability.server import KEY, Server

A = "/api/v1/admin"
HEADERS = {"Authorization": f"Bearer {KEY}"}


def _clock(server: Server) -> datetime:
    response = httpx.get(f"{server.url}{A}/clock", headers=HEADERS, timeout=30)
    assert response.status_code == 200, response.text
    return datetime.fromisoformat(response.json()["data"]["now"])


def _advance(server: Server, seconds: int) -> datetime:
    response = httpx.post(
        f"{server.url}{A}/clock/advance", json={"seconds": seconds}, headers=HEADERS, timeout=30
    )
    assert response.status_code == 200, response.text
    return datetime.fromisoformat(response.json()["data"]["now"])


def test_the_manual_clock_resumes_where_it_was_after_a_kill(tmp_path: Path) -> None:
    server = Server(tmp_path, "--clock", "manual")
    try:
        started = _clock(server)
        moved = _advance(server, 40 * 86400)
        assert moved == started + timedelta(days=40)
        saved = tmp_path / "clock.json"
        assert stat.S_IMODE(os.stat(saved).st_mode) == 0o600  # a state file: owner only
    finally:
        server.kill()  # SIGKILL: no shutdown hook writes anything
    restarted = Server(tmp_path, "--clock", "manual")
    try:
        assert _clock(restarted) == moved
        assert _advance(restarted, 3600) == moved + timedelta(hours=1)
    finally:
        restarted.stop()
    again = Server(tmp_path, "--clock", "manual")  # after a clean stop, likewise
    try:
        assert _clock(again) == moved + timedelta(hours=1)
    finally:
        again.stop()
