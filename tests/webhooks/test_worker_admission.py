"""WHK-D46 across the process boundary: with `--webhook-worker`, the records the server holds
for its worker (not yet handed, or handed and not reported logged) are bounded, and at the
bound the shard refuses changes with a 503 and `Retry-After`, as in one process. The app runs
in the test's process, wired as `serve --webhook-worker` wires it; the worker is a real child
process, which the test stops (SIGSTOP) to stand for a stalled one."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from litestar.testing import TestClient

from allotment.config import Settings
from allotment.http.app import create_app
from allotment.http.fast_path import FastPath
from allotment.persistence.keys import KeyStore
from allotment.runtime.clock import ManualClock
from allotment.webhooks.worker_webhooks import WorkerWebhooks
from allotment.wiring import build_system
from tests.conftest import KEY
from tests.http.helpers import A, C, create_customer, plan_id, subscribe
from tests.reliability.test_webhook_worker import _processes
from tests.waiting import wait_until

INCOMING_MAX = 3
ACTIVATED = "subscription.activated"


@pytest.fixture
def worker_app(
    tmp_path: Path, clock: ManualClock, keys: KeyStore
) -> Iterator[tuple[TestClient[FastPath], WorkerWebhooks]]:
    """The app and its `WorkerWebhooks`, with a bound of `INCOMING_MAX` records."""
    settings = Settings(
        clock="manual", data_dir=tmp_path, durability="write", allow_private_webhooks=True,
        webhook_worker=True,
    )  # fmt: skip
    webhooks = WorkerWebhooks(settings)
    webhooks.outbox("test").incoming_max = INCOMING_MAX  # the one the shard is given
    system = build_system(settings, clock, webhooks=webhooks)
    webhooks.now = clock.now
    app = create_app(settings, system, keys, webhooks=webhooks)
    with TestClient(app, base_url="http://t.local") as client:
        client.headers["Authorization"] = f"Bearer {KEY}"
        yield client, webhooks


def _workers() -> list[int]:
    """The live webhook workers this process started."""
    return [
        pid for pid, (parent, _, state, command) in _processes().items()
        if parent == os.getpid() and state != "Z" and "allotment.webhooks.worker" in command
    ]  # fmt: skip


def _activated(client: TestClient[FastPath]) -> int:
    response = client.get(f"{A}/events", params={"types": ACTIVATED, "limit": 1000})
    if response.status_code != 200:  # the worker is between two answers: look again
        return 0
    return len(response.json()["data"]["events"])


def _subscribed(client: TestClient[FastPath], ref: str, free: str) -> httpx.Response:
    """A new customer and its subscription; the first refusal, if either is refused."""
    created = _customer(client, ref)
    if created.status_code != 201:
        return created
    return client.post(f"{C}/subscriptions", json={"customerReferenceId": ref, "planId": free})


def _customer(client: TestClient[FastPath], ref: str) -> httpx.Response:
    return client.post(f"{C}/customers", json={
        "externalClientCustomerId": ref, "firstName": "J", "lastName": "S",
        "email": "j@example.com",
    })  # fmt: skip


def _admitted(send: Callable[[], httpx.Response], what: str) -> httpx.Response:
    """`send()`'s first answer that is not a 503, sent again while it is."""

    def answered() -> httpx.Response | None:
        answer = send()
        return None if answer.status_code == 503 else answer

    return wait_until(answered, what)


def test_a_stopped_worker_makes_the_shard_refuse_changes_and_loses_nothing(
    worker_app: tuple[TestClient[FastPath], WorkerWebhooks],
) -> None:
    """WHK-D46 with the worker: while it is stopped, at most about `INCOMING_MAX` notifying
    records are admitted; the next change gets a 503 with `Retry-After` before its turn.
    Once the worker goes on, changes are admitted again and the feed has every accepted
    record's event: nothing committed was dropped."""
    client, webhooks = worker_app
    free = plan_id(client, "free")
    create_customer(client, "c0")
    subscribe(client, "c0", "free")  # the first notification starts the worker (WHK-D50)
    (worker,) = wait_until(_workers, "the webhook worker")
    wait_until(lambda: _activated(client) == 1, "c0's event logged by the worker")
    wait_until(lambda: not webhooks.outbox("test").full, "the worker's report of it")
    os.kill(worker, signal.SIGSTOP)  # a worker whose disk stalled, or that is descheduled
    try:
        accepted: list[str] = []
        refused: httpx.Response | None = None
        for n in range(1, 4 * INCOMING_MAX):
            answer = _subscribed(client, f"c{n}", free)
            if answer.status_code == 503:
                refused = answer
                break
            assert answer.status_code == 201, answer.text
            accepted.append(f"c{n}")
        assert refused is not None, "the shard admitted every change"
        assert int(refused.headers["retry-after"]) > 0
        assert "notifications" in refused.json()["error"]["message"]
        # Each accepted subscription is one record or more; the bound is in records.
        assert len(accepted) <= INCOMING_MAX
        assert webhooks.outbox("test").full
    finally:
        os.kill(worker, signal.SIGCONT)
    # Admitted again once the worker reports what it was handed (each send is looked at anew).
    assert _admitted(lambda: _customer(client, "after"), "a change admitted").status_code == 201
    after = _admitted(
        lambda: client.post(f"{C}/subscriptions", json={"customerReferenceId": "after",
                                                         "planId": free}),
        "the subscription admitted",
    )  # fmt: skip
    assert after.status_code == 201, after.text
    wait_until(lambda: _activated(client) == 2 + len(accepted), "every accepted event logged")
    assert _workers() == [worker]  # the same worker: it was slow, not replaced
