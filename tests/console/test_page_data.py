"""The console pages' data, without a browser (CON-40..CON-59): the analytics snapshot's
figures agree with a pass over every customer, the editor finds the line of each refused
field, and the charts scale to round numbers."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from allotment.config import Settings
from allotment.console.bar_charts import bar_chart
from allotment.console.catalog_editor import catalog_text, layout, submit_catalog
from allotment.console.invoices import scan_invoices
from allotment.console.overview_data import age_bucket, figures_of, forget, scan_shard
from allotment.domain.commands import MarkInvoicePaid, RecordUsage, Subscribe
from allotment.domain.replies import Subscribed
from allotment.domain.state import Profile
from allotment.runtime.analytics_reads import InvoiceQuery
from allotment.runtime.clock import ManualClock
from allotment.runtime.ports import CustomerLookup
from allotment.runtime.system import ActorSystem
from allotment.wiring import build_system
from tests.conftest import START

pytestmark = pytest.mark.anyio
PLANS = ("pro_monthly", "starter_monthly", "enterprise_monthly", "free")


async def _populate(system: ActorSystem, count: int, jump: bool = True) -> None:
    """Customers on several plans, two in three initial invoices paid, one event each; with
    `jump`, the clock moves 40 days half way, so the receivables fall in two age buckets."""
    shard = system.shard("test")
    plans = {p.key: p for p in shard.catalog.plans.values()}
    for index in range(count):
        lookup = CustomerLookup(external_id=f"c{index}")
        await shard.create_customer(f"c{index}", Profile(email=f"c{index}@example.com"))
        reply = await shard.command(lookup, Subscribe(plan_id=plans[PLANS[index % 4]].id))
        assert isinstance(reply, Subscribed)
        if index % 3 and reply.invoice.status == "DUE":
            await shard.command(lookup, MarkInvoicePaid(invoice_id=reply.invoice.id))
        event = RecordUsage(idempotency_key=f"e{index}", event_name="ai_chat",
                            feature_key="ai_chat", occurred_at=system.clock.now(),
                            units=Decimal(500))  # fmt: skip
        await shard.ingest(lookup, event, None)
        if jump and index == count // 2:
            await system.advance_clock(system.clock.now() + timedelta(days=40))


async def test_the_snapshot_and_a_pass_over_every_customer_agree(tmp_path: Path) -> None:
    """CON-41, CON-44, CON-57: the two sources of the overview and the invoice list give the
    same figures for the same state."""
    clock = ManualClock(START)
    system = build_system(Settings(data_dir=tmp_path, clock="manual"), clock)
    async with system.running():
        await _populate(system, 24)
        await system.snapshot_analytics()
        reads = system.analytics_reads
        assert reads is not None
        snapshot = await figures_of(system, "test")
        scanned = await scan_shard(system.shard("test"), clock.now())
        assert snapshot.source == "snapshot"
        assert snapshot.active_by_plan == scanned.active_by_plan != {}
        assert snapshot.mrr_by_currency == scanned.mrr_by_currency != {}
        assert snapshot.receivables == scanned.receivables
        assert len(snapshot.receivables["USD"]) >= 2  # two age buckets at least, as built
        assert snapshot.events_per_minute is not None
        assert sum(snapshot.events_per_minute.values()) == 11  # c13..c23, after the jump
        assert snapshot.burn_per_day is not None and snapshot.burn_per_day["TOKENS"]
        for query in (InvoiceQuery(statuses=("DUE",)), InvoiceQuery(limit=5, offset=5)):
            page = await reads.invoices("test", query)
            total, listed = await scan_invoices(system.shard("test"), query)
            assert page.total == total > 0
            assert {r.invoice_id for r in page.rows} == {r.invoice_id for r in listed}
        await clock_moves_the_figures_on(system)


async def clock_moves_the_figures_on(system: ActorSystem) -> None:
    """CON-42: kept while the manual clock stands still; read again once it moved."""
    kept = await figures_of(system, "test")
    assert await figures_of(system, "test") is kept
    await system.advance_clock(system.clock.now() + timedelta(seconds=1))
    assert await figures_of(system, "test") is not kept
    forget(system, "test")


async def test_without_a_data_directory_the_pass_answers(tmp_path: Path) -> None:
    """CON-41: no snapshot, no history: the figures come from the pass, and say why there
    are no charts."""
    system = build_system(Settings(data_dir=tmp_path), ManualClock(START), persistent=False)
    async with system.running():
        await _populate(system, 4, jump=False)
        figures = await figures_of(system, "test")
    assert figures.source == "scan"
    assert figures.events_per_minute is None
    assert figures.no_history and "data directory" in figures.no_history
    # c0's pro_monthly invoice is left DUE (every third is): no access until it is paid
    assert figures.active_by_plan == {"enterprise_monthly": 1, "free": 1, "starter_monthly": 1}


async def test_editor_places_each_refusal_on_its_line(tmp_path: Path) -> None:
    """CON-52, CON-53: a decode error (by index) and a rule's problem (by key) each land on
    the line of the field they name; nothing is saved; a valid text saves."""
    system = build_system(Settings(data_dir=tmp_path), ManualClock(START), persistent=False)
    async with system.running():
        shard = system.shard("test")
        text = catalog_text(shard.catalog)
        before = shard.catalog
        for wrong, path, message in (
            ('"priceAmount": "lots"', "plans[0].priceAmount", "Invalid decimal string"),
            ('"priceAmount": -1', "plans[free].priceAmount", "must be a finite number"),
        ):
            edited = text.replace('"priceAmount": 0', wrong, 1)
            outcome = await submit_catalog(shard, edited, system.clock.now())
            (error,) = outcome.errors
            assert (error.path, error.message[: len(message)]) == (path, message)
            assert error.line is not None
            assert wrong in outcome.text.splitlines()[error.line - 1]
            assert outcome.catalog is None and shard.catalog is before
        broken = await submit_catalog(shard, text[:200] + "\n}", system.clock.now())
        assert broken.errors[0].message.startswith("Malformed JSON")
        assert broken.text == text[:200] + "\n}"  # kept as typed
        saved = await submit_catalog(shard, text, system.clock.now())
        assert saved.errors == () and saved.catalog is shard.catalog


def test_layout_records_paths_by_index_and_by_key() -> None:
    text, where = layout({"plans": [{"key": "a", "tiers": [{"upTo": 1}]}], "x": []})
    lines = text.splitlines()
    assert where["plans[0].tiers[0].upTo"] == where["plans[a].tiers[0].upTo"]
    assert lines[where["plans[a].tiers[0].upTo"] - 1].strip() == '"upTo": 1'
    assert lines[where["x"] - 1].strip() == '"x": []'


def test_ages_and_chart_scales() -> None:
    assert [age_bucket(d) for d in (-3, 0, 30, 31, 90, 91)] == [
        "not yet due", "0-30 days past due", "0-30 days past due", "31-60 days",
        "61-90 days", "over 90 days",
    ]  # fmt: skip
    chart = bar_chart("t", "u", [("a", Decimal(3)), ("b", Decimal(0)), ("c", Decimal(170))])
    assert chart.peak == Decimal(200)
    assert [bar.height > 0 for bar in chart.bars] == [True, False, True]
    assert chart.bars[2].height / chart.bars[0].height == pytest.approx(170 / 3)
    assert bar_chart("t", "u", []).peak == 1
