"""Each actor keeps its last plain-check answer (ENT-10..ENT-17 are pure in state and
catalog); a new catalog must be seen at once, and replaced catalogs must not stay alive."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import pytest

from allotment.config import Settings
from allotment.domain.commands import RecordUsage
from allotment.domain.replies import DenialReason
from allotment.domain.state import Profile
from allotment.runtime.clock import ManualClock
from allotment.runtime.local_shard import LocalShard
from allotment.runtime.ports import CustomerLookup
from allotment.runtime.records import EvaluationContext
from allotment.wiring import build_system
from tests.conftest import START

pytestmark = pytest.mark.anyio
GET = EvaluationContext(method="GET")


def _shard(tmp_path: Path) -> LocalShard:
    settings = Settings(data_dir=tmp_path, clock="manual")
    return build_system(settings, ManualClock(START), persistent=False).shard("test")


async def _auto_create(shard: LocalShard, ref: str, feature: str) -> None:
    """EVT-21: an event naming an unknown feature creates it, in a new catalog."""
    event = RecordUsage(idempotency_key=f"{ref}-{feature}", event_name="x",
                        feature_key=feature, occurred_at=START)  # fmt: skip
    await shard.ingest(CustomerLookup(external_id=ref), event, None)


async def test_a_cached_answer_gives_way_to_a_new_catalog_ent_11(tmp_path: Path) -> None:
    shard = _shard(tmp_path)
    for ref in ("a", "b"):
        await shard.create_customer(ref, Profile(first_name="A"))
    first = await shard.evaluate("a", "brand_new", None, GET)
    assert first.reason is DenialReason.FEATURE_NOT_FOUND
    assert await shard.evaluate("a", "brand_new", None, GET) is first  # answered from cache
    await _auto_create(shard, "b", "brand_new")  # another customer's event: a's state is as was
    after = await shard.evaluate("a", "brand_new", None, GET)
    assert after.reason is not DenialReason.FEATURE_NOT_FOUND


async def test_cached_answers_do_not_keep_replaced_catalogs_alive(tmp_path: Path) -> None:
    shard = _shard(tmp_path)
    for i in range(50):
        await shard.create_customer(f"c{i}", Profile(first_name="A"))
    replaced = []
    for i in range(50):
        replaced.append(weakref.ref(shard.catalog))
        await _auto_create(shard, f"c{i}", f"auto_{i}")
        await shard.evaluate(f"c{(i + 1) % 50}", "api_calls", None, GET)
    gc.collect()
    assert sum(ref() is not None for ref in replaced) <= 1
