"""HTTP-test fixtures: every response of the shared client is checked against the envelope
rules (API-3..API-7) as it arrives, so every test also checks the envelope."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from allotment.config import Settings
from allotment.http.app import create_app
from allotment.http.fast_path import FastPath
from allotment.persistence.keys import KeyStore
from allotment.runtime.clock import ManualClock
from allotment.wiring import build_system
from tests.conftest import KEY, START

_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
_TIMESTAMP_KEYS = frozenset(
    {
        "createdAt", "modifiedAt", "dueDate", "currentPeriodStart", "currentPeriodEnd",
        "cancelEffectiveAt", "cancelledAt", "effectiveAt", "grantedAt", "expiresAt",
        "periodStart", "periodEnd", "now",
    }
)  # fmt: skip


@contextmanager
def served_in_memory(directory: Path) -> Iterator[TestClient[FastPath]]:
    """A client of an in-memory app that knows `KEY`, sending no key of its own: for a module's
    requests whose answer the HTTP layer alone makes, whatever system is behind it (refused
    before any route runs, unrouted, the OpenAPI document). They share one app instead of
    building one, half a second each, per request and per system of the `system` fixture."""
    settings = Settings(clock="manual", data_dir=directory)
    keys = KeyStore()
    keys.add(KEY)
    system = build_system(settings, ManualClock(START), persistent=False)
    app = create_app(settings, system, keys)
    with TestClient(app, base_url="http://testserver.local") as client:
        yield client


def find_nulls(value: Any, path: str = "$") -> list[str]:
    """Paths of every JSON null inside `value` (API-6 forbids them all)."""
    if value is None:
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in find_nulls(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in find_nulls(v, f"{path}[{i}]")]
    return []


def bad_timestamps(value: Any, path: str = "$") -> list[str]:
    """Paths of timestamp fields that are not RFC 3339 UTC with a `Z` suffix (API-7)."""
    found: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if k in _TIMESTAMP_KEYS and isinstance(v, str) and not _TIMESTAMP.fullmatch(v):
                found.append(f"{path}.{k}={v}")
            found += bad_timestamps(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += bad_timestamps(v, f"{path}[{i}]")
    return found


def check_envelope(response: httpx.Response) -> None:
    """API-3..API-7 for one response."""
    response.read()
    where = f"{response.request.method} {response.request.url.path} -> {response.status_code}"
    assert response.headers.get("content-type", "").startswith("application/json"), where
    body = response.json()
    assert isinstance(body, dict), where
    assert isinstance(body.get("success"), bool), f"{where}: no boolean success: {body}"
    assert not find_nulls(body), f"{where}: nulls at {find_nulls(body)}"
    assert not bad_timestamps(body), f"{where}: timestamps {bad_timestamps(body)}"
    if body["success"]:
        assert response.status_code < 400, where
        assert "error" not in body, where
    else:
        assert response.status_code >= 400, where
        assert "data" not in body, where
        assert set(body) == {"success", "error"}, where
        assert isinstance(body["error"].get("message"), str), where
        assert body["error"]["message"], where
        assert set(body["error"]) <= {"message", "detail"}, where


@pytest.fixture
def client(client: TestClient[FastPath]) -> TestClient[FastPath]:
    """The root `client`, with the envelope checked on every response."""
    client.event_hooks["response"].append(check_envelope)
    return client
