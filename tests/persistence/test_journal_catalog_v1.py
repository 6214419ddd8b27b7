"""Journals written before catalog facts were domain facts (issue 11, item 2) still recover.

`fixtures/journal-catalog-v1/` was written by the code of commit 0038a40, whose journal
recorded a catalog change as the admin API's camelCase document (`catalog_upserted`). Its
workload: an empty base catalog (`base.toml`); a PUT of a feature, a credit model and a plan
with an allocation; a customer subscribed to it and an event; an hour later a PUT that adds a
feature and a graduated plan and renames the first plan (in use, so createdAt must survive);
a second customer on the new plan with events on both features and one on an unknown feature
(EVT-21 auto-creation); 40 days later the sweep (period ends, credit expiry) and one event.
`expected.msgpack` is the state that code held at the end: the catalog, every customer state
sorted by id, and the number of remembered event keys.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import msgspec

from allotment.config import Settings
from allotment.domain.catalog import Catalog
from allotment.domain.state import CustomerState
from allotment.runtime.clock import ManualClock
from allotment.wiring import build_system
from tests.conftest import START

FIXTURE = Path(__file__).parent / "fixtures" / "journal-catalog-v1"


class Picture(msgspec.Struct, frozen=True):
    catalog: Catalog
    customers: list[CustomerState]
    event_keys: int


def test_a_journal_with_document_catalog_facts_recovers_to_the_state_it_was_written_with(
    tmp_path: Path,
) -> None:
    """Issue 11, item 2: the old `catalog_upserted` records are read and converted on replay;
    catalog, customers (subscriptions, invoices, pools, counters) and keys are as they were."""
    shutil.copytree(FIXTURE / "journal", tmp_path / "journal")  # recovery may repair in place
    settings = Settings(
        data_dir=tmp_path, clock="manual", catalog_path=FIXTURE / "base.toml", durability="none"
    )
    shard = build_system(settings, ManualClock(START)).shard("test")
    expected = msgspec.msgpack.decode((FIXTURE / "expected.msgpack").read_bytes(), type=Picture)
    assert shard.catalog == expected.catalog
    recovered = sorted(shard.states(), key=lambda s: s.id)
    billed = _take_billed(recovered)
    assert billed, "the sweep finalised usage: replay derives what each period billed"
    assert recovered == expected.customers
    assert len(shard.event_keys) == expected.event_keys
    assert [p.key for p in shard.catalog.plans.values()] == ["basic", "scale"]
    basic = shard.catalog.plan_by_key("basic")
    assert basic is not None and basic.name == "Basic (2025)" and basic.created_at == START


def _take_billed(states: list[CustomerState]) -> list[tuple[str, object, object]]:
    """MNY-B1: this code also derives, from the same `usage_billed` facts, the units each
    period billed (`UsageCounter.billed`), which the state of 0038a40 did not have. Each
    period's billed units are at most its used ones; they are then cleared so the rest of the
    state compares with the picture as written."""
    taken: list[tuple[str, object, object]] = []
    for state in states:
        for counters in state.usage.values():
            for key, counter in counters.items():
                for start, units in counter.billed.items():
                    assert 0 < units <= counter.used[start], (key, start, units)
                    assert start not in counter.unbilled
                    taken.append((key, start, units))
                counter.billed.clear()
    return taken
