"""A CloudEvents batch of 1,000 shares its journal writes (OM-5): one record per customer per
stretch of 100 events, at most one write per stretch, and one durable wait before the 204;
and a body over the request limit is a 413 problem that writes nothing. The official client
cannot see a journal's commits, so this runs in process, over raw HTTP, as
tests/http/test_events_batch.py does for the Tanso batch."""

from __future__ import annotations

from pathlib import Path

import msgspec
from litestar.testing import TestClient

from allotment.config import Settings
from allotment.http.app import create_app
from allotment.persistence.keys import KeyStore
from allotment.runtime.batch_ingest import YIELD_EVERY
from allotment.runtime.clock import ManualClock
from allotment.wiring import build_system
from tests.conftest import KEY

BATCH = 1000
CUSTOMERS = 7
BATCH_TYPE = {"content-type": "application/cloudevents-batch+json"}


def test_a_batch_of_1000_shares_its_commits(tmp_path: Path, keys: KeyStore) -> None:
    settings = Settings(clock="manual", data_dir=tmp_path)
    system = build_system(settings, ManualClock(), persistent=True)
    with TestClient(create_app(settings, system, keys)) as client:
        client.headers["Authorization"] = f"Bearer {KEY}"
        for n in range(CUSTOMERS):
            subjects = {"subjectKeys": [f"gc-{n}"]}
            body = {"name": f"gc{n}", "key": f"gc{n}", "usageAttribution": subjects}
            assert client.post("/api/v1/customers", json=body).status_code == 201
        assert system.storage is not None
        journal = system.storage.journal("test")
        client.blocking_portal.call(journal.flush)  # only the batch's commits are counted
        before, first = journal.commits, journal.position
        events = [
            {"id": f"g{i}", "source": "commit", "specversion": "1.0", "type": "gc.api",
             "subject": f"gc-{i % CUSTOMERS}"}
            for i in range(BATCH)
        ]  # fmt: skip
        batch = msgspec.json.encode(events)
        assert client.post("/api/v1/events", content=batch, headers=BATCH_TYPE).status_code == 204
        stretches = BATCH // YIELD_EVERY
        # The pipelined writer takes whatever is pending each time: at most one write per
        # stretch (the loop may serve others between stretches), plus one a tick may add.
        assert journal.commits - before <= stretches + 1
        # Acknowledged once durable; one record per customer per stretch, not one per event.
        assert journal.durable_position == journal.position == first + CUSTOMERS * stretches
        # Sent again: every (source, id) is a duplicate, and nothing is journalled (OM-6).
        assert client.post("/api/v1/events", content=batch, headers=BATCH_TYPE).status_code == 204
        assert journal.position == first + CUSTOMERS * stretches


def test_a_body_over_the_limit_is_a_problem_and_writes_nothing(
    tmp_path: Path, keys: KeyStore
) -> None:
    settings = Settings(clock="manual", data_dir=tmp_path)
    system = build_system(settings, ManualClock(), persistent=True)
    with TestClient(create_app(settings, system, keys)) as client:
        client.headers["Authorization"] = f"Bearer {KEY}"
        assert client.get("/api/v1/meters").status_code == 200  # opens the environment
        assert system.storage is not None
        journal = system.storage.journal("test")
        client.blocking_portal.call(journal.flush)
        first = journal.position
        padding = "x" * (settings.request_body_size_max // BATCH)  # 1,000 events over 1 MiB
        events = [
            {"id": f"big{i}", "source": "limit", "specversion": "1.0", "type": "gc.api",
             "subject": "nobody", "data": {"padding": padding}}
            for i in range(BATCH)
        ]  # fmt: skip
        answer = client.post("/api/v1/events", content=msgspec.json.encode(events),
                             headers=BATCH_TYPE)  # fmt: skip
        assert answer.status_code == 413
        assert answer.headers["content-type"] == "application/problem+json"
        assert journal.position == first
