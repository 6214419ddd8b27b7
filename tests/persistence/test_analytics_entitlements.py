"""The `entitlements` and `grants` analytics tables (OM-158): their rows after a scenario, the
same rows from a replay from zero and from a snapshot, and a customer state written before
issue 17 still decoding (OM-106), its subscription's links showing as derived views only."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec

from allotment.domain.commands import MarkInvoicePaid, Subscribe
from allotment.domain.evolve import evolve
from allotment.domain.om_commands import DeleteEntitlement, VoidGrant
from allotment.domain.om_state import EntitlementKind
from allotment.domain.om_views import derived_id
from allotment.domain.replies import Subscribed
from allotment.domain.state import CustomerState
from allotment.persistence.analytics_rows import StateRows
from tests.domain.harness import D, replay
from tests.domain.om_world import OmWorld

FIXTURE = Path(__file__).parent / "fixtures" / "state-pre-issue-17" / "customer.msgpack"


def _tables(world: OmWorld, state: CustomerState) -> dict[str, list[dict[str, Any]]]:
    rows = StateRows()
    rows.add(state, world.catalog)
    return {
        name: [dict(zip(rows.tables[name], values, strict=True))
               for values in zip(*rows.tables[name].values(), strict=True)]
        for name in ("entitlements", "grants")
    }  # fmt: skip


def _scenario() -> tuple[OmWorld, list[int]]:
    """A subscription to `pro_monthly`, a native metered entitlement on `api_calls` (three
    grants, one voided), a static one on `projects`, a boolean on `seats` created and deleted.
    Returns the world and the fact counts after each step (the snapshot points)."""
    world = OmWorld()
    cuts = []
    reply = world.run(Subscribe(plan_id=world.plan_id("pro_monthly")))
    assert isinstance(reply, Subscribed)
    world.run(MarkInvoicePaid(invoice_id=reply.invoice.id))
    metered = world.create(usage_period="DAY", is_soft_limit=False)
    world.create(feature_key="projects", kind=EntitlementKind.STATIC, config='{"max": 3}')
    seats = world.create(feature_key="seats", kind=EntitlementKind.BOOLEAN)
    cuts.append(len(world.facts))
    world.grant(metered, 10, priority=1)
    world.grant(metered, 5, priority=2, expiration_duration="DAY", expiration_count=2)
    voided = world.grant(metered, 7, priority=3, recurrence="PT6H")
    world.advance(60)
    world.use(12)  # 10 from the first grant, 2 from the second
    cuts.append(len(world.facts))
    world.run(VoidGrant(grant=voided.grant.public_id))
    world.run(DeleteEntitlement(entitlement=seats))
    world.advance(3600)
    world.use(4)  # 3 from the second grant, 1 over
    return world, cuts


def test_om158_entitlements_and_grants_tables_after_a_scenario() -> None:
    world, _ = _scenario()
    tables = _tables(world, world.state)
    by_feature = {(r["feature_key"], r["is_derived"]): r for r in tables["entitlements"]}
    assert set(by_feature) == {
        ("api_calls", False), ("projects", False), ("seats", False),  # native
        ("seats", True), ("ai_chat", True),  # views: seats' native one is deleted
    }  # fmt: skip
    metered = by_feature["api_calls", False]
    assert (metered["entitlement_type"], metered["usage_period"], metered["has_access"]) == (
        "metered", "P1D", False,
    )  # fmt: skip
    assert (metered["balance"], metered["period_usage"], metered["period_overage"]) == (
        D(0),
        D(16),
        D(1),
    )
    assert metered["deleted_at"] is None and metered["subscription_id"] is None
    assert by_feature["projects", False]["config"] == '{"max": 3}'
    assert by_feature["seats", False]["deleted_at"] == world.now - timedelta(seconds=3600)
    assert not by_feature["seats", False]["has_access"]
    sub = next(iter(world.state.subscriptions.values()))
    view = by_feature["ai_chat", True]
    assert view["entitlement_id"] == derived_id(sub.id, "ai_chat")
    assert view["subscription_id"] == str(sub.id) and view["has_access"]
    assert view["current_period_start"] == sub.current_period_start
    grants = sorted(tables["grants"], key=lambda g: g["priority"])
    assert [(g["amount"], g["remaining"], g["is_voided"]) for g in grants] == [
        (D(10), D(0), False), (D(5), D(0), False), (D(7), D(0), True),
    ]  # fmt: skip
    assert grants[1]["expires_at"] == grants[1]["effective_at"] + timedelta(days=2)
    assert (grants[1]["expiration_duration"], grants[1]["expiration_count"]) == ("DAY", 2)
    assert grants[2]["recurrence"] == "PT6H" and grants[2]["voided_at"] is not None
    assert {g["entitlement_id"] for g in grants} == {metered["entitlement_id"]}


def test_om158_replay_from_zero_and_from_snapshots_gives_the_same_tables() -> None:
    world, cuts = _scenario()
    expected = _tables(world, world.state)
    assert _tables(world, replay(world.facts)) == expected
    for cut in cuts:
        snapshot = msgspec.msgpack.decode(
            msgspec.msgpack.encode(replay(world.facts[:cut])), type=CustomerState
        )
        for fact in world.facts[cut:]:
            evolve(snapshot, fact)
        assert _tables(world, snapshot) == expected


def test_om106_om158_a_state_from_before_issue_17_decodes_with_views_only() -> None:
    state = msgspec.msgpack.decode(FIXTURE.read_bytes(), type=CustomerState)
    assert state.entitlements == {}
    world = OmWorld()  # the demo catalog the fixture's subscription was made with
    tables = _tables(world, state)
    assert tables["grants"] == []
    rows = {r["feature_key"]: r for r in tables["entitlements"]}
    assert list(rows) == ["projects", "seats", "api_calls", "ai_chat"]
    assert all(r["is_derived"] and r["has_access"] for r in rows.values())
    assert rows["ai_chat"]["period_usage"] == D(2700)
    assert (rows["api_calls"]["entitlement_type"], rows["api_calls"]["balance"]) == (
        "metered", D(100000),
    )  # fmt: skip
