"""The sweep and the bounds of issue 10 (scenarios 4 and 5): due customers are turned in
batches sharing one durable wait, one failing customer never stops the others, and a change is
refused with 503 before its turn when the journal's backlog is over its bound."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from allotment import cli
from allotment.config import Settings
from allotment.domain.commands import RecordUsage, Subscribe
from allotment.domain.evolve import evolve as real_evolve
from allotment.domain.facts import InvoiceIssued
from allotment.domain.replies import Rejected, Subscribed, UsageAccepted
from allotment.domain.schedule import apply_due as real_apply_due
from allotment.domain.state import Profile
from allotment.runtime import actor as actor_module
from allotment.runtime import local_shard as shard_module
from allotment.runtime.clock import ManualClock
from allotment.runtime.errors import Overloaded, ShardUnavailable
from allotment.runtime.local_shard import LocalShard
from allotment.runtime.ports import CustomerLookup
from allotment.runtime.records import EvaluationContext
from allotment.runtime.system import ActorSystem
from allotment.wiring import build_system
from tests.conftest import START
from tests.http.helpers import shard_holding

pytestmark = pytest.mark.anyio


def _durable(data_dir: Path, clock: ManualClock) -> ActorSystem:
    return build_system(Settings(data_dir=data_dir, clock="manual"), clock)


async def _subscribers(shard: LocalShard, count: int, plan_key: str = "usage_monthly") -> None:
    plan = shard.catalog.plan_by_key(plan_key)
    assert plan is not None
    for n in range(count):
        await shard.create_customer(f"c{n}", Profile(first_name="C"))
        reply = await shard.command(CustomerLookup(external_id=f"c{n}"), Subscribe(plan_id=plan.id))
        assert isinstance(reply, Subscribed), reply


def _renewals(shard: LocalShard) -> int:
    return sum(len(state.invoices) for state in shard.states())


async def test_scenario4_200_renewals_at_one_instant_share_a_durable_wait(tmp_path: Path) -> None:
    """200 in-arrears subscribers whose periods end together: the sweep turns them all and
    waits for the disk once per batch, not once per customer (one batch of 512 here)."""
    clock = ManualClock(START)
    system = _durable(tmp_path, clock)
    async with system.running():
        shard = system.shard("test")
        await _subscribers(shard, 200)
        invoices_before = _renewals(shard)
        assert system.storage is not None
        journal = system.storage.journal("test")
        await journal.flush()  # the subscribers' records are committed before counting
        commits_before = journal.commits
        assert await system.advance_clock(START + timedelta(days=32)) == 200
        assert _renewals(shard) == invoices_before + 200  # one period-end invoice each
        assert journal.commits - commits_before <= 2  # one batch: one group commit (+ a straggler)
        assert journal.durable_position == journal.position


async def test_scenario4_a_customer_whose_catch_up_raises_does_not_stop_the_sweep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The failing customer is logged and tried again a minute later; the other 19 renew, and
    the server stays up. Once the bug is gone, the retry catches the customer up."""
    clock = ManualClock(START)
    system = _durable(tmp_path, clock)
    async with system.running():
        shard = system.shard("test")
        await _subscribers(shard, 20)
        bad = shard.find(CustomerLookup(external_id="c7"))
        assert bad is not None
        real = real_apply_due

        def apply_due(state: Any, ctx: Any, apply: Any) -> None:
            if state.id == bad.state.id:
                raise RuntimeError("a bug in one customer's period end")
            real(state, ctx, apply)

        before = {s.id: len(s.invoices) for s in shard.states()}
        with monkeypatch.context() as patch:
            patch.setattr(actor_module, "apply_due", apply_due)
            assert await system.advance_clock(START + timedelta(days=32)) == 20
        after = {s.id: len(s.invoices) for s in shard.states()}
        assert [i for i in after if after[i] == before[i]] == [bad.state.id]
        assert "a bug in one customer's period end" in caplog.text
        assert shard.failure is None
        await system.advance_clock(clock.now() + shard_module.SWEEP_RETRY)  # bug gone: retried
        assert len(bad.state.invoices) == before[bad.state.id] + 1


async def test_scenario5_changes_over_the_journal_backlog_are_refused_before_their_turn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past `journal_pending_bytes_max`, writes raise Overloaded (503 + Retry-After at the
    edge) and change nothing, not even the idempotency key; checks still answer."""
    settings = Settings(clock="manual")
    system = build_system(settings, ManualClock(START), persistent=False)
    shard = system.shard("test")
    journal = shard.journal
    event = RecordUsage(
        idempotency_key="k", event_name="api_calls", occurred_at=START, units=Decimal(1)
    )
    monkeypatch.setattr(settings, "journal_pending_bytes_max", -1)  # any backlog is too much
    with pytest.raises(Overloaded):
        await shard.ingest(CustomerLookup(external_id="u"), event, None)
    assert shard.customer_count() == 0 and journal.position == 0
    decision = await shard.evaluate("u", "api_calls", None, EvaluationContext(method="GET"))
    assert not decision.allowed
    monkeypatch.undo()
    reply = await shard.ingest(CustomerLookup(external_id="u"), event, None)
    assert isinstance(reply, UsageAccepted)  # the key was never claimed by the refusal


def test_scenario5_the_overload_is_a_503_with_retry_after(
    client: Any, system: ActorSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = {"eventName": "api_calls", "customerReferenceId": "u", "eventIdempotencyKey": "o1"}
    assert client.get("/api/v1/client/entitlements/u/api_calls").status_code == 200
    with monkeypatch.context() as patch:  # any backlog at all is over this bound
        patch.setattr(shard_holding(system, "u")._settings, "journal_pending_bytes_max", -1)
        response = client.post("/api/v1/client/events", json=body)
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "1"
        assert "waiting for the disk" in response.json()["error"]["message"]
        assert client.get("/api/v1/client/entitlements/u/api_calls").status_code == 200
    assert client.post("/api/v1/client/events", json=body).status_code == 201


async def test_scenario5_event_keys_are_forgotten_after_the_default_35_day_window(
    tmp_path: Path,
) -> None:
    """The default window is 35 days (a period plus grace): a retry within it is a 409, and a
    key older than the window is forgotten, so memory stays bounded."""
    clock = ManualClock(START)
    system = _durable(tmp_path, clock)
    async with system.running():
        shard = system.shard("test")

        async def send(key: str) -> Any:
            event = RecordUsage(
                idempotency_key=key, event_name="ping", occurred_at=clock.now(), units=Decimal(1)
            )
            return await shard.ingest(CustomerLookup(external_id="u"), event, None)

        assert isinstance(await send("old"), UsageAccepted)
        clock.advance_to(START + timedelta(days=34))
        list(shard.event_keys.expire_gradually(clock.now().date()))  # every table, at once
        reply = await send("old")
        assert isinstance(reply, Rejected) and reply.kind == "conflict"
        clock.advance_to(START + timedelta(days=37))
        list(shard.event_keys.expire_gradually(clock.now().date()))  # every table, at once
        assert "old" not in shard.event_keys
        assert isinstance(await send("old"), UsageAccepted)


async def test_a_failed_memory_shard_stays_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without storage there is nothing to rebuild from: the shard fails stop."""
    system = build_system(Settings(clock="manual"), ManualClock(START), persistent=False)
    shard = system.shard("test")
    await shard.create_customer("x", Profile())
    real = real_evolve

    def broken(state: Any, fact: Any) -> None:
        if isinstance(fact, InvoiceIssued):
            raise RuntimeError("boom")
        real(state, fact)

    monkeypatch.setattr(actor_module, "evolve", broken)
    plan = shard.catalog.plan_by_key("pro_monthly")
    assert plan is not None
    with pytest.raises(ShardUnavailable):
        await shard.command(CustomerLookup(external_id="x"), Subscribe(plan_id=plan.id))
    async with system.running():
        assert await system.rebuild("test") is False
    with pytest.raises(ShardUnavailable):
        await shard.evaluate("x", "api_calls", None, EvaluationContext(method="GET"))
    assert uuid.UUID(int=0) not in {s.id for s in shard.states()}


def test_the_window_is_a_serve_flag_of_at_least_35_days(capsys: pytest.CaptureFixture[str]) -> None:
    parse = cli._parser().parse_args
    assert parse(["serve"]).idempotency_window_days == 35
    assert parse(["serve", "--idempotency-window-days", "90"]).idempotency_window_days == 90
    assert parse(["serve", "--idempotency-window-days", "forever"]).idempotency_window_days is None
    with pytest.raises(SystemExit):
        parse(["serve", "--idempotency-window-days", "10"])
    assert "at least 35 days" in capsys.readouterr().err
