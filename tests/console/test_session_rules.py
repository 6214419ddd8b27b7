"""The console's session and CSRF rules over HTTP, in process (CON-2..CON-11): what a browser
test cannot set up cheaply, such as a live key, a revoked key, an idle session, another
origin, and every log line a sign-in writes."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from litestar.testing import TestClient

from allotment.config import Settings
from allotment.console.sessions import IDLE_S, LIFETIME_S, SessionStore, forget_all, sessions_dir
from allotment.console.sign_in import safe_next
from allotment.http.app import create_app
from allotment.http.fast_path import FastPath
from allotment.persistence.keys import KeyStore
from allotment.runtime.clock import ManualClock
from allotment.wiring import build_system
from tests.conftest import CLIENT_KEY, KEY, LIVE_KEY, START

BASE = "http://console.test"


@pytest.fixture
def console(tmp_path: Path, keys: KeyStore) -> Iterator[TestClient[FastPath]]:
    """The app in memory with the access log on, and a client that sends no API key."""
    settings = Settings(clock="manual", data_dir=tmp_path, access_log=True)
    system = build_system(settings, ManualClock(START), persistent=False)
    with TestClient(create_app(settings, system, keys), base_url=BASE) as client:
        yield client


def _token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def sign_in(client: TestClient[FastPath], key: str = KEY) -> str:
    """Sign in through the form; the page's CSRF token of the signed-in layout."""
    token = _token(client.get("/console/sign-in").text)
    response = client.post("/console/sign-in", data={"api_key": key, "csrf_token": token,
                                                     "next": "/console/customers"})  # fmt: skip
    assert response.status_code == 200, response.text  # followed to the customers page
    assert str(response.url) == f"{BASE}/console/customers"
    return _token(response.text)


def test_sign_in_writes_no_key_to_any_log(
    console: TestClient[FastPath], caplog: pytest.LogCaptureFixture
) -> None:
    """CON-5: every record any logger writes during a sign-in, at every level, and the URLs."""
    caplog.set_level(logging.DEBUG)
    history: list[httpx.Response] = []
    console.event_hooks["response"].append(history.append)
    sign_in(console)
    console.get("/console/customers?q=nobody")
    assert any("/console/sign-in" in r.getMessage() for r in caplog.records)  # logged at all
    for record in caplog.records:
        assert KEY not in record.getMessage()
        assert KEY not in repr(record.__dict__)
    assert all(KEY not in str(r.url) and KEY not in r.headers.get("location", "") for r in history)


def test_cookie_rules_and_sign_out_ends_the_session(console: TestClient[FastPath]) -> None:
    token = sign_in(console)
    set_cookie = console.cookies.jar
    (cookie,) = [c for c in set_cookie if c.name == "allotment_console"]
    assert cookie.path == "/console" and KEY not in (cookie.value or "")
    assert cookie.has_nonstandard_attr("HttpOnly") and not cookie.secure  # plain HTTP
    value = cookie.value
    response = console.post("/console/sign-out", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/console/sign-in"
    console.cookies.set("allotment_console", value or "", path="/console")  # CON-7: replayed
    replay = console.get("/console/customers", follow_redirects=False)
    assert replay.status_code == 303
    assert replay.headers["location"] == "/console/sign-in?next=/console/customers"


def test_secure_cookie_over_tls(tmp_path: Path, keys: KeyStore) -> None:
    """CON-4: served over TLS (the scheme the server sees), the cookies are Secure."""
    settings = Settings(clock="manual", data_dir=tmp_path)
    system = build_system(settings, ManualClock(START), persistent=False)
    with TestClient(create_app(settings, system, keys), base_url="https://console.test") as client:
        page = client.get("/console/sign-in")
        assert "secure" in page.headers["set-cookie"].lower()
        response = client.post("/console/sign-in", follow_redirects=False, data={
            "api_key": KEY, "csrf_token": _token(page.text)})  # fmt: skip
        session = next(
            h for h in response.headers.get_list("set-cookie") if "allotment_console=" in h
        )
        assert "Secure" in session and "HttpOnly" in session and "SameSite=strict" in session


def test_csrf_is_refused_without_the_token_and_from_another_origin(
    console: TestClient[FastPath],
) -> None:
    token = sign_in(console)
    ref = "/console/customers/nobody/grant"
    assert console.post(ref, data={"amount": "1"}).status_code == 403  # CON-9: no token
    assert console.post(ref, data={"amount": "1", "csrf_token": "x" * 43}).status_code == 403
    other = console.post(ref, data={"amount": "1", "denomination": "T", "csrf_token": token},
                         headers={"Origin": "https://evil.example"})  # fmt: skip
    assert other.status_code == 403  # CON-11
    same = console.post(ref, data={"amount": "1", "denomination": "T", "csrf_token": token},
                        headers={"Origin": BASE})  # fmt: skip
    assert same.status_code == 200 and "What the API would do" in same.text
    header = console.post(ref, data={"amount": "1", "denomination": "T"},
                          headers={"X-CSRF-Token": token})  # fmt: skip
    assert header.status_code == 200  # what htmx sends (hx-headers on the layout)


def test_sign_in_form_has_its_own_token(console: TestClient[FastPath]) -> None:
    """CON-10: a sign-in post without the sign-in cookie's token is refused (login CSRF)."""
    refused = console.post("/console/sign-in", data={"api_key": KEY, "csrf_token": "forged"})
    assert refused.status_code == 403
    assert "allotment_console=" not in refused.headers.get("set-cookie", "")


@pytest.mark.parametrize("key", [CLIENT_KEY, "sk_test_" + "n" * 32, ""])
def test_only_an_admin_key_signs_in(console: TestClient[FastPath], key: str) -> None:
    """CON-2: a key without the admin scope, an unknown key, none: the same refusal."""
    token = _token(console.get("/console/sign-in").text)
    response = console.post("/console/sign-in", data={"api_key": key, "csrf_token": token})
    assert response.status_code == 401 and "That key was not accepted" in response.text
    assert key == "" or key not in response.text
    assert not [c for c in console.cookies.jar if c.name == "allotment_console"]


def test_live_and_test_environments_look_different(console: TestClient[FastPath]) -> None:
    """CON-8: the banner's words and the body's colour class."""
    sign_in(console)
    test_page = console.get("/console/customers").text
    assert 'class="env-test"' in test_page and "Test environment" in test_page
    console.cookies.clear()
    sign_in(console, LIVE_KEY)
    live_page = console.get("/console/customers").text
    assert 'class="env-live"' in live_page and "LIVE environment" in live_page


def test_a_revoked_key_ends_its_sessions(console: TestClient[FastPath], keys: KeyStore) -> None:
    """CON-6: each request re-authenticates the session's key, as the API would."""
    key, record = keys.create("support")
    sign_in(console, key)
    assert console.get("/console/customers", follow_redirects=False).status_code == 200
    keys.revoke(record.key_id)
    assert console.get("/console/customers", follow_redirects=False).status_code == 303


def test_sessions_expire_when_idle_and_at_their_lifetime() -> None:
    """CON-4: an hour idle, or eight hours in all, and the session is gone."""
    now = [0.0]
    store = SessionStore(now=lambda: now[0])
    idle = store.open(KEY, "test")
    now[0] = IDLE_S - 1
    assert _found(store, idle.token) == idle.token
    now[0] += IDLE_S
    assert store.find(idle.token) is None
    busy = store.open(KEY, "test")
    for _ in range(int(LIFETIME_S // (IDLE_S / 2)) - 1):
        now[0] += IDLE_S / 2
        assert _found(store, busy.token) == busy.token
    now[0] += IDLE_S / 2
    assert store.find(busy.token) is None
    assert KEY not in repr(busy)


def _found(store: SessionStore, token: str) -> str | None:
    session = store.find(token)
    return None if session is None else session.token


@pytest.mark.parametrize(
    ("asked", "goes"),
    [("/console/customers", "/console/customers"), ("https://evil.example/", "/console/"),
     ("//evil.example/console/", "/console/"), ("/console//evil.example", "/console/"),
     ("/console/\\evil", "/console/"), (None, "/console/")],
)  # fmt: skip
def test_sign_in_returns_only_to_the_console(asked: str | None, goes: str) -> None:
    assert safe_next(asked) == goes


def test_workers_of_one_server_share_sessions(tmp_path: Path, keys: KeyStore) -> None:
    """CON-81: two app instances over one data directory, as the workers of one server: a
    sign-in on one is honoured by the other (same session, same CSRF token), the session's
    file is 0600 in a 0700 directory and holds neither the key nor the cookie's token, and a
    sign-out on the other ends it on both."""
    settings = Settings(clock="manual", data_dir=tmp_path)
    apps = [create_app(settings, build_system(settings, ManualClock(START), persistent=False),
                       keys) for _ in range(2)]  # fmt: skip
    with TestClient(apps[0], base_url=BASE) as one, TestClient(apps[1], base_url=BASE) as two:
        token = sign_in(one)
        value = one.cookies.get("allotment_console")
        assert value
        two.cookies.set("allotment_console", value, path="/console")
        page = two.get("/console/customers", follow_redirects=False)
        assert page.status_code == 200 and _token(page.text) == token
        directory = sessions_dir(tmp_path)
        (stored,) = directory.iterdir()
        assert directory.stat().st_mode & 0o777 == 0o700
        assert stored.stat().st_mode & 0o777 == 0o600
        assert KEY.encode() not in stored.read_bytes() and value not in stored.name
        assert value.encode() not in stored.read_bytes()

        out = two.post("/console/sign-out", data={"csrf_token": token}, follow_redirects=False)
        assert out.status_code == 303
        assert list(directory.iterdir()) == []
        replay = one.get("/console/customers", follow_redirects=False)
        assert replay.status_code == 303
        assert replay.headers["location"] == "/console/sign-in?next=/console/customers"


def test_a_restart_signs_everybody_out(tmp_path: Path) -> None:
    """CON-81: `allotment serve` empties the sessions directory as it starts (CON-3)."""
    store = SessionStore(sessions_dir(tmp_path))
    session = store.open(KEY, "test")
    forget_all(tmp_path)
    assert SessionStore(sessions_dir(tmp_path)).find(session.token) is None


def test_the_customer_list_pages_by_its_cursor_over_shards(tmp_path: Path, keys: KeyStore) -> None:
    """CON-20 over three shards (docs/scale-out.md SCL-100): "Next page" carries the merged
    page's cursor, and the two pages list each of 30 customers once."""
    settings = Settings(clock="manual", data_dir=tmp_path, shards=3)
    system = build_system(settings, ManualClock(START), persistent=False)
    with TestClient(create_app(settings, system, keys), base_url=BASE) as client:
        for i in range(30):
            created = client.post(
                "/api/v1/client/customers",
                json={
                    "customerReferenceId": f"c{i:02}",
                    "firstName": "C",
                    "lastName": "Ltd",
                    "email": f"c{i}@x.io",
                },
                headers={"Authorization": f"Bearer {KEY}"},
            )
            assert created.status_code == 201, created.text
        sign_in(client)
        first = client.get("/console/customers")
        found = re.search(r'href="\?q=&amp;page=2&amp;after=([^"]+)" rel="next"', first.text)
        assert found, first.text
        second = client.get(f"/console/customers?q=&page=2&after={found.group(1)}")
        refs = re.findall(r'href="/console/customers/(c\d\d)"', first.text + second.text)
        assert sorted(refs) == [f"c{i:02}" for i in range(30)]
        assert "Page 2 of 2" in second.text
