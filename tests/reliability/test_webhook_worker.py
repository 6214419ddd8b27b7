"""The delivery worker of a served data directory (`--webhook-worker`, docs/webhooks.md
WHK-D50..WHK-D56): started only once webhooks are used, restarted and handed again what it had
not logged when it dies, gone when its server is killed, and on the server's manual clock; and
main's rules where the worker meets them: `/health`'s backlog (WHK-D28a), no message for an
endpoint while it is disabled (WHK-D45). Real `allotment serve` processes and a real receiver
verifying every delivery with standardwebhooks (the `verified_receiver` rule: any delivery
that does not verify fails the test)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.reliability.server import KEY, Server
from tests.waiting import wait_until
from tests.webhooks.conftest import verified_receiver
from tests.webhooks.receiver import Receiver

C, A = "/api/v1/client", "/api/v1/admin"
HEADERS = {"Authorization": f"Bearer {KEY}"}
THRESHOLD = "entitlement.usage.threshold"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A receiver that fails the test if any delivery does not verify with standardwebhooks."""
    with verified_receiver() as receiver:
        yield receiver


def _post(server: Server, path: str, body: dict[str, object]) -> dict[str, object]:
    response = httpx.post(f"{server.url}{path}", json=body, headers=HEADERS, timeout=60)
    assert response.status_code in (200, 201, 202), response.text
    data: dict[str, object] = response.json().get("data") or {}
    return data


def _customer(server: Server, ref: str) -> None:
    plans = httpx.get(f"{server.url}{C}/plans", headers=HEADERS, timeout=60).json()["data"]
    free = next(p["plan"]["id"] for p in plans if p["plan"]["key"] == "free")
    _post(server, f"{C}/customers", {"externalClientCustomerId": ref, "firstName": "J",
                                      "lastName": "S", "email": "j@example.com"})  # fmt: skip
    _post(server, f"{C}/subscriptions", {"customerReferenceId": ref, "planId": free})


def _event(server: Server, ref: str, key: str, units: int) -> None:
    _post(server, f"{C}/events", {"eventName": "api_calls", "customerReferenceId": ref,
                                   "eventIdempotencyKey": key, "usageUnits": units})  # fmt: skip


def _processes() -> dict[int, tuple[int, int, str, str]]:
    """Every process: pid -> (parent pid, process group, state, command line)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            command = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        found[int(entry)] = (int(fields[1]), int(fields[2]), fields[0], command)
    return found


def _workers(server: Server) -> list[int]:
    """The live webhook workers of `server` (its process group)."""
    return [
        pid for pid, (_, group, state, command) in _processes().items()
        if group == server.process.pid and state != "Z" and "allotment.webhooks.worker" in command
    ]  # fmt: skip


def _statuses(server: Server, endpoint_id: str) -> list[str]:
    messages = httpx.get(f"{server.url}{A}/webhooks/{endpoint_id}/messages", headers=HEADERS,
                         timeout=60).json()["data"]  # fmt: skip
    return sorted(m["status"] for m in messages)


def _gone(pid: int) -> bool:
    found = _processes().get(pid)
    return found is None or found[2] == "Z"


def test_the_worker_starts_with_webhooks_and_ends_with_its_server(
    tmp_path: Path, receiver: Receiver
) -> None:
    """WHK-D50: no worker for a data directory whose webhooks were never used; the first
    webhook call starts it. WHK-D53: SIGKILL of the process that runs the app (and started
    the worker) ends the worker too."""
    server = Server(tmp_path, "--allow-private-webhooks", "--webhook-worker")
    try:
        # A customer without a subscription: nothing to notify (a subscription's start is
        # `subscription.activated`, WHK-E30).
        _post(server, f"{C}/customers", {"externalClientCustomerId": "acme", "firstName": "J",
                                          "lastName": "S", "email": "j@example.com"})  # fmt: skip
        assert _workers(server) == []
        endpoint = _post(server, f"{A}/webhooks", {"url": receiver.url})
        receiver.secrets = [str(endpoint["secret"])]
        (worker,) = wait_until(lambda: _workers(server), "the webhook worker")
        parent = _processes()[worker][0]
        os.kill(parent, signal.SIGKILL)
        wait_until(lambda: _gone(worker), "the worker to end with its server")
    finally:
        server.kill()


def test_the_worker_leaves_sigint_and_sigterm_to_its_server(
    tmp_path: Path, receiver: Receiver
) -> None:
    """WHK-D56: SIGINT and SIGTERM, which reach the worker with its server (Ctrl-C, a stop of
    the process group), do not end it: the same worker delivers after them. SIGTERM to the
    whole group then stops the server cleanly, the worker ends with it, and no other worker
    is started meanwhile."""
    server = Server(tmp_path, "--allow-private-webhooks", "--webhook-worker")
    try:
        endpoint = _post(server, f"{A}/webhooks", {"url": receiver.url})
        receiver.secrets = [str(endpoint["secret"])]
        (worker,) = wait_until(lambda: _workers(server), "the webhook worker")
        os.kill(worker, signal.SIGINT)
        os.kill(worker, signal.SIGTERM)
        _post(server, f"{A}/webhooks/{endpoint['id']}/test", {})
        wait_until(receiver.accepted, "the test event, delivered")
        assert _workers(server) == [worker]
        os.killpg(server.process.pid, signal.SIGTERM)
        assert server.process.wait(timeout=60) == 0  # a bound, not an expectation
        wait_until(lambda: _gone(worker), "the worker to end with its server")
        assert _workers(server) == []
        log = server.log.read_text()
        assert "the webhook worker exited" not in log, log
    finally:
        server.stop()  # the group is gone already when the test got this far


def test_a_killed_worker_is_replaced_and_handed_what_it_had_not_logged(
    tmp_path: Path, receiver: Receiver
) -> None:
    """WHK-D52: a worker killed while a delivery is in flight, and while a committed
    notification waits in its socket unlogged (the worker stopped), is replaced; the new one
    delivers both, the first again with the same webhook-id, each verified."""
    server = Server(tmp_path, "--allow-private-webhooks", "--webhook-worker")
    try:
        endpoint = _post(server, f"{A}/webhooks", {"url": receiver.url, "eventTypes": [THRESHOLD]})
        receiver.secrets = [str(endpoint["secret"])]
        _customer(server, "acme")
        receiver.gate.clear()  # the 80% delivery is held at the receiver
        _event(server, "acme", "e1", 850)
        wait_until(lambda: receiver.held >= 1, "the 80% delivery in flight")
        (worker,) = _workers(server)
        os.kill(worker, signal.SIGSTOP)  # it can no longer log what it is handed ...
        _event(server, "acme", "e2", 150)  # ... such as the 100% notification
        os.kill(worker, signal.SIGKILL)
        receiver.gate.set()
        first = wait_until(lambda: receiver.deliveries, "the held request to finish")[0]
        wait_until(
            lambda: (
                [d.id for d in receiver.accepted()].count(first.id) >= 2
                and 100 in {d.body["data"]["threshold"]["percent"] for d in receiver.accepted()}
            ),
            "the new worker: the held delivery again, and the 100% one",
        )
        assert worker not in _workers(server)
        wait_until(lambda: _statuses(server, str(endpoint["id"])) == ["delivered"] * 2,
                   "both messages delivered in the new worker's log")  # fmt: skip
    finally:
        server.kill()


def test_the_worker_retries_on_the_servers_manual_clock(tmp_path: Path, receiver: Receiver) -> None:
    """WHK-D54: a failed attempt's retry is due 5 s later on the server's clock; with
    `--clock manual` it goes when the clock is advanced, and not before."""
    receiver.statuses.append(500)
    server = Server(tmp_path, "--allow-private-webhooks", "--webhook-worker", "--clock", "manual")
    try:
        endpoint = _post(server, f"{A}/webhooks", {"url": receiver.url, "eventTypes": [THRESHOLD]})
        receiver.secrets = [str(endpoint["secret"])]
        _customer(server, "acme")
        _event(server, "acme", "e1", 850)
        wait_until(lambda: len(receiver.deliveries) >= 1, "the first attempt")
        assert receiver.accepted() == []
        _post(server, f"{A}/clock/advance", {"seconds": 6})
        wait_until(receiver.accepted, "the retry after the clock moved")
        assert [d.status for d in receiver.deliveries] == [500, 200]
    finally:
        server.kill()


# Nothing listens on the discard port: every attempt fails, and each message waits for its
# retry in 5 s of the manual clock, which the test never advances.
UNREACHABLE = "http://127.0.0.1:9/hooks"


def _health(server: Server, key: str | None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    # A bound far above /health's own wait for the worker: the test waits for its answer.
    response = httpx.get(f"{server.url}/health", headers=headers, timeout=60)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def _backlog(server: Server) -> int | None:
    rows = _health(server, KEY)["webhooks"]
    return None if rows is None else sum(row["backlog"] for row in rows)


def test_health_shows_the_workers_backlog_or_says_it_is_unknown(tmp_path: Path) -> None:
    """WHK-D28a with the worker: an admin key's `/health` has the backlog as the worker's
    dispatchers hold it, asked for at that moment; a worker that does not answer in time
    (stopped here) leaves it unknown (`null`, and why) while `/health` still answers ok;
    a look starts no worker (WHK-D50); strangers see the status alone (OPS-K8)."""
    server = Server(tmp_path, "--allow-private-webhooks", "--webhook-worker", "--clock", "manual")
    try:
        assert _health(server, KEY) == {"status": "ok", "webhooks": []}  # no endpoint yet
        assert _workers(server) == []  # and no worker started for the look
        endpoint = _post(server, f"{A}/webhooks", {"url": UNREACHABLE})
        _customer(server, "acme")  # subscription.activated, invoice.created, invoice.paid
        wait_until(lambda: _backlog(server) == 3, "the three messages, none delivered")
        (row,) = _health(server, KEY)["webhooks"]
        assert (row["endpoint"], row["backlog_max"]) == (endpoint["id"], 10000)
        (worker,) = _workers(server)
        os.kill(worker, signal.SIGSTOP)
        try:
            data = _health(server, KEY)
            assert data["status"] == "ok"
            assert data["webhooks"] is None
            assert "did not answer" in data["webhooks_unknown"]
            assert _health(server, None) == {"status": "ok"}
        finally:
            os.kill(worker, signal.SIGCONT)
        wait_until(lambda: _backlog(server) == 3, "the worker's answer once it goes on")
        os.kill(worker, signal.SIGKILL)
        # Restarting (WHK-D52): unknown until the new worker answers, then its log's backlog.
        assert _backlog(server) in (None, 3)
        wait_until(lambda: _backlog(server) == 3, "the new worker's backlog, from its log")
    finally:
        server.kill()


def _enabled(server: Server, endpoint_id: str) -> bool:
    response = httpx.get(f"{server.url}{A}/webhooks/{endpoint_id}", headers=HEADERS, timeout=60)
    enabled: bool = response.json()["data"]["enabled"]
    return enabled


def _feed(server: Server) -> list[dict[str, Any]]:
    response = httpx.get(f"{server.url}{A}/events", headers=HEADERS, timeout=60,
                         params={"types": THRESHOLD})  # fmt: skip
    events: list[dict[str, Any]] = response.json()["data"]["events"]
    return events


def test_the_worker_queues_nothing_for_an_endpoint_while_it_is_disabled(
    tmp_path: Path, receiver: Receiver
) -> None:
    """WHK-D45 in the worker's dispatcher: after a 410 disabled the endpoint, the 100%
    threshold committed before it is enabled again gets no message (none listed, a resend is
    a 404, nothing sent once enabled); the 80% one, pending when it was disabled, goes on its
    retry; the feed has both."""
    receiver.statuses.append(410)
    server = Server(tmp_path, "--allow-private-webhooks", "--webhook-worker", "--clock",
                    "manual")  # fmt: skip
    try:
        endpoint = _post(server, f"{A}/webhooks",
                         {"url": receiver.url, "eventTypes": [THRESHOLD]})  # fmt: skip
        endpoint_id = str(endpoint["id"])
        receiver.secrets = [str(endpoint["secret"])]
        _customer(server, "acme")
        _event(server, "acme", "e1", 850)
        wait_until(lambda: not _enabled(server, endpoint_id), "disabled by the 410")
        _event(server, "acme", "e2", 150)
        wait_until(lambda: len(_feed(server)) == 2, "the 100% event logged by the worker")
        response = httpx.patch(f"{server.url}{A}/webhooks/{endpoint_id}", headers=HEADERS,
                               json={"enabled": True}, timeout=60)  # fmt: skip
        assert response.status_code == 200, response.text
        _post(server, f"{A}/clock/advance", {"seconds": 6})  # the 410's retry (WHK-D20)
        wait_until(lambda: "delivered" in _statuses(server, endpoint_id), "the 80% one")
        assert _statuses(server, endpoint_id) == ["delivered"]  # and no message for the 100%
        first, second = (event["id"] for event in _feed(server))
        resend = httpx.post(
            f"{server.url}{A}/webhooks/{endpoint_id}/messages/{second}/resend",
            headers=HEADERS,
            timeout=60,
        )
        assert resend.status_code == 404, resend.text
        assert [d.id for d in receiver.deliveries] == [first, first]
        assert [d.status for d in receiver.deliveries] == [410, 200]
    finally:
        server.kill()
