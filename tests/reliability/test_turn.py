"""The transactional turn (issue 10, item 1; docs/internals.md "The turn"): everything a turn
applied is journalled whatever the reply, and state the journal does not hold is never served.

Each scenario runs through the public API on the durable path (a file journal under a tmp data
dir), then restarts on the same data dir and compares the recovered state with the live one.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from allotment.domain import evolve as evolve_module
from allotment.domain.facts import InvoiceIssued
from allotment.http.fast_path import FastPath
from allotment.runtime import actor as actor_module
from allotment.runtime.clock import ManualClock
from allotment.runtime.ports import CustomerLookup
from tests.conftest import START
from tests.http.helpers import C, create_customer, event, invoices, mark_paid, paid_subscriber
from tests.reliability.durable import durable, picture

A = "/api/v1/admin"


def renewal_of(client: TestClient[FastPath], ref: str) -> dict[str, Any]:
    (renewal,) = [i for i in invoices(client, ref) if i["metadata"]["invoiceType"] == "RENEWAL"]
    return renewal


def period_end(client: TestClient[FastPath], ref: str) -> datetime:
    (sub,) = client.get(f"{C}/customers/{ref}").json()["data"]["subscriptions"]
    return datetime.fromisoformat(sub["currentPeriodEnd"].replace("Z", "+00:00"))


def test_a_rejected_event_keeps_the_catch_up_it_caused(tmp_path: Path) -> None:
    """Scenario 1: a period ends; before the sweep reaches the customer, an event naming another
    customer's invoice is rejected (400). The renewal invoice catch-up created is journalled
    and indexed: mark-paid finds it, and a restart recovers the same state."""
    clock = ManualClock(START)
    with durable(tmp_path, clock) as (client, system):
        paid_subscriber(client, "late")
        other = paid_subscriber(client, "other")
        clock.advance_to(period_end(client, "late") + timedelta(seconds=1))  # no sweep runs
        response = event(client, "late", "bad-ref", eventName="api_calls",
                         invoiceId=other["invoice"]["id"])  # fmt: skip
        assert response.status_code == 400, response.text
        renewal = renewal_of(client, "late")
        assert mark_paid(client, renewal["id"]).status_code == 200
        live = picture(system)
    with durable(tmp_path, clock) as (_, recovered):
        assert picture(recovered) == live


def test_a_decide_that_raises_keeps_the_catch_up_it_caused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scenario 1, second half: `decide` raises after catch-up applied a renewal. The client
    gets a 500, the catch-up facts are journalled, and the shard goes on serving."""
    clock = ManualClock(START)
    with durable(tmp_path, clock) as (client, system):
        paid_subscriber(client, "boom")
        clock.advance_to(period_end(client, "boom") + timedelta(seconds=1))

        def explode(*_: Any) -> Any:
            raise RuntimeError("a bug in decide")

        with monkeypatch.context() as patch:
            patch.setattr(actor_module, "decide", explode)
            response = event(client, "boom", "k1", eventName="api_calls")
            assert response.status_code == 500
        assert client.get("/health").status_code == 200
        assert mark_paid(client, renewal_of(client, "boom")["id"]).status_code == 200
        live = picture(system)
    with durable(tmp_path, clock) as (_, recovered):
        assert picture(recovered) == live


def test_a_read_journals_the_catch_up_before_it_projects(tmp_path: Path) -> None:
    """Scenario 1, `read()`: a GET after the period end shows the renewal invoice, whose id
    survives a restart (the catch-up was journalled before the view was built)."""
    clock = ManualClock(START)
    with durable(tmp_path, clock) as (client, _):
        paid_subscriber(client, "reader")
        clock.advance_to(period_end(client, "reader") + timedelta(seconds=1))
        shown = renewal_of(client, "reader")["id"]
    with durable(tmp_path, clock) as (client, _):
        assert renewal_of(client, "reader")["id"] == shown
        assert mark_paid(client, shown).status_code == 200


def test_an_evolve_failure_stops_the_shard_until_it_is_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 1: when `evolve` raises halfway through a fact, memory holds state no journal
    gives. The shard answers 503 (and /health says why) until it is rebuilt from disk; the
    rebuilt shard holds exactly what was acknowledged."""
    clock = ManualClock(START)
    with durable(tmp_path, clock, rebuild_every_s=3600.0) as (client, system):
        create_customer(client, "victim")
        assert event(client, "victim", "before", eventName="api_calls").status_code == 201
        acknowledged = picture(system)
        real = evolve_module.evolve

        def half_applied(state: Any, fact: Any) -> None:
            if isinstance(fact, InvoiceIssued):
                state.invoices[fact.invoice.id] = fact.invoice  # the half that happened
                raise RuntimeError("evolve bug after a partial change")
            real(state, fact)

        with monkeypatch.context() as patch:
            patch.setattr(actor_module, "evolve", half_applied)
            plans = client.get(f"{C}/plans").json()["data"]
            pro = next(p["plan"]["id"] for p in plans if p["plan"]["key"] == "pro_monthly")
            body = {"customerReferenceId": "victim", "planId": pro}
            response = client.post(f"{C}/subscriptions", json=body)
        assert response.status_code == 503 and response.headers["retry-after"] == "5"
        health = client.get("/health")
        assert health.status_code == 503
        assert "evolve" in health.json()["error"]["message"] or "InvoiceIssued" in health.text
        assert client.get(f"{C}/entitlements/victim/api_calls").status_code == 503
        assert client.blocking_portal.call(system.rebuild, "test") is True
        assert client.get("/health").status_code == 200
        assert picture(system) == acknowledged  # the half-applied invoice is gone
        assert event(client, "victim", "after", eventName="api_calls").status_code == 201


def test_the_shard_is_found_by_external_id_after_rebuild(tmp_path: Path) -> None:
    """A rebuild replaces the shard: routes must reach the new one (they look it up per call)."""
    clock = ManualClock(START)
    with durable(tmp_path, clock, rebuild_every_s=3600.0) as (client, system):
        create_customer(client, "kept")
        system.shard("test").fail("forced for the test")
        assert client.get(f"{C}/customers/kept").status_code == 503
        assert client.blocking_portal.call(system.rebuild, "test") is True
        assert client.get(f"{C}/customers/kept").status_code == 200
        shard = system.shard("test")
        assert shard.find(CustomerLookup(external_id="kept")) is not None
