"""OpenMeter notification rules in the domain (OM-141..OM-146): the rule checks, and the pure
decision, in the customer's turn, that a threshold was reached or a reset happened."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allotment.domain.catalog import Catalog
from allotment.domain.catalog_facts import evolve_catalog
from allotment.domain.facts import NotificationRaised
from allotment.domain.meter_rules import CatalogRefused
from allotment.domain.notice_marks import NoticeMarks
from allotment.domain.om_commands import DeleteEntitlement, ResetEntitlement
from allotment.domain.om_notify import check_rule, delete_rule
from allotment.domain.om_notify_notices import (
    EntitlementBalanceThreshold,
    EntitlementResetNotice,
    OmNotice,
)
from allotment.domain.om_notify_rules import (
    NotificationRule,
    RuleKind,
    Threshold,
    ThresholdKind,
    threshold_key,
)
from tests.domain.harness import START, D, demo_catalog, encoded, replay
from tests.domain.om_world import FEATURE, OmWorld

CHANNEL = "01J2KNP1YTXQRXHTDJ4KPR7PZ0"


def rule(
    kind: RuleKind = RuleKind.BALANCE_THRESHOLD,
    thresholds: tuple[tuple[int | str, ThresholdKind], ...] = ((50, ThresholdKind.USAGE_VALUE),),
    **fields: object,
) -> NotificationRule:
    values = {
        "id": "01J2KNP1YTXQRXHTDJ4KPR7R01",
        "kind": kind,
        "name": "rule",
        "channels": (CHANNEL,),
        "created_at": START,
        "updated_at": START,
        "thresholds": tuple(Threshold(value=Decimal(v), kind=k) for v, k in thresholds)
        if kind is RuleKind.BALANCE_THRESHOLD
        else (),
        **fields,
    }
    return msgspec.convert(values, NotificationRule, from_attributes=True)


def world_with(*rules: NotificationRule, amount: int = 100) -> tuple[OmWorld, str]:
    """A customer with a monthly metered `api_calls` entitlement granted `amount` each period
    (min and max rollover = amount: a reset restores it, OM-85), and `rules` in the catalog."""
    world = OmWorld()
    for r in rules:
        world.catalog = evolve_catalog(world.catalog, check_rule(world.catalog, r))
    ent = world.create()
    world.grant(ent, amount, min_rollover=Decimal(amount), max_rollover=Decimal(amount))
    return world, ent


def notices(world: OmWorld, start: int = 0) -> list[OmNotice]:
    return [
        f.payload
        for f in world.facts[start:]
        if isinstance(f, NotificationRaised)
        and isinstance(f.payload, EntitlementBalanceThreshold | EntitlementResetNotice)
    ]


def fired(world: OmWorld, start: int = 0) -> list[str]:
    return [
        threshold_key(n.threshold)
        for n in notices(world, start)
        if isinstance(n, EntitlementBalanceThreshold)
    ]


# -- the rules (OM-141) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("thresholds", "field"),
    [
        (((-1, ThresholdKind.USAGE_VALUE),), "thresholds[0].value"),
        (((0, ThresholdKind.PERCENT),), "thresholds[0].value"),
        (((5, ThresholdKind.NUMBER), (5, ThresholdKind.USAGE_VALUE)), "thresholds[1].value"),
        (((1, ThresholdKind.USAGE_VALUE), ("NaN", ThresholdKind.USAGE_VALUE)),
         "thresholds[1].value"),
        ((), "thresholds"),
        (tuple((i, ThresholdKind.USAGE_VALUE) for i in range(1, 12)), "thresholds"),
    ],
)  # fmt: skip
def test_om141_a_bad_threshold_is_refused_naming_it(
    thresholds: tuple[tuple[int | str, ThresholdKind], ...], field: str
) -> None:
    with pytest.raises(CatalogRefused) as refused:
        check_rule(demo_catalog(), rule(thresholds=thresholds))
    assert (refused.value.status, refused.value.field) == (400, field)


def test_om141_features_by_id_or_key_are_kept_as_keys_and_unknown_ones_refused() -> None:
    catalog = demo_catalog()
    feature = catalog.features[FEATURE]
    fact = check_rule(catalog, rule(features=(str(feature.id), FEATURE)))
    assert fact.rule.features == (FEATURE,)
    with pytest.raises(CatalogRefused) as refused:
        check_rule(catalog, rule(features=(FEATURE, "no_such_feature")))
    assert (refused.value.status, refused.value.field) == (400, "features[1]")


def test_om141_a_balance_value_of_zero_is_a_threshold_and_a_reset_rule_has_none() -> None:
    check_rule(demo_catalog(), rule(thresholds=((0, ThresholdKind.BALANCE_VALUE),)))
    with pytest.raises(CatalogRefused) as refused:
        check_rule(demo_catalog(), rule(RuleKind.RESET, channels=()))
    assert refused.value.field == "channels"


def test_om141_delete_is_soft_and_an_unknown_rule_is_404() -> None:
    catalog = evolve_catalog(demo_catalog(), check_rule(demo_catalog(), rule()))
    deleted = evolve_catalog(catalog, delete_rule(catalog, rule().id, START))
    assert deleted.notification_rules[rule().id].deleted_at == START
    with pytest.raises(CatalogRefused) as refused:
        delete_rule(deleted, rule().id, START)
    assert refused.value.status == 404


# -- the decision (OM-142..OM-146) ----------------------------------------------------------


def test_om142_om143_each_threshold_fires_once_when_reached_in_the_period() -> None:
    world, ent = world_with(
        rule(
            thresholds=(
                (50, ThresholdKind.USAGE_VALUE),
                (80, ThresholdKind.PERCENT),
                (10, ThresholdKind.BALANCE_VALUE),
            )
        )
    )
    world.use(40)
    assert fired(world) == []
    world.use(20)  # usage 60 >= 50
    assert fired(world) == ["usage_value:50"]
    world.use(25)  # usage 85 of 100 granted: 85% >= 80%; balance 15 > 10
    assert fired(world) == ["usage_value:50", "usage_percentage:80"]
    world.use(5)  # balance 10
    assert fired(world)[-1] == "balance_value:10"
    mark = len(world.facts)
    world.use(50)  # past everything again: nothing fires twice
    assert fired(world, mark) == []
    notice = notices(world)[0]
    assert isinstance(notice, EntitlementBalanceThreshold)
    assert notice.channels == (CHANNEL,)
    assert notice.value.usage == D(60)  # the value right after the event that reached it
    assert notice.entitlement.id == ent
    assert notice.feature.key == FEATURE


def test_om142_one_event_reaching_two_thresholds_fires_both_in_the_rules_order() -> None:
    world, _ = world_with(
        rule(thresholds=((90, ThresholdKind.USAGE_VALUE), (50, ThresholdKind.USAGE_VALUE)))
    )
    world.use(95)
    assert fired(world) == ["usage_value:90", "usage_value:50"]


def test_om142_usage_percentage_never_holds_without_grants() -> None:
    world = OmWorld()
    world.catalog = evolve_catalog(
        world.catalog, check_rule(world.catalog, rule(thresholds=((1, ThresholdKind.PERCENT),)))
    )
    world.create()
    world.use(1000)
    assert fired(world) == []


def test_om144_om145_a_reset_notifies_and_the_thresholds_fire_again() -> None:
    threshold = rule(thresholds=((50, ThresholdKind.USAGE_VALUE),))
    reset_rule = rule(RuleKind.RESET, id="01J2KNP1YTXQRXHTDJ4KPR7R02")
    world, ent = world_with(threshold, reset_rule)
    world.use(60)
    world.advance(60)
    mark = len(world.facts)
    world.run(ResetEntitlement(entitlement=ent))
    reset = notices(world, mark)
    assert len(reset) == 1
    assert isinstance(reset[0], EntitlementResetNotice)
    assert reset[0].value.usage == D(0)
    assert reset[0].value.balance == D(100)  # the grant rolled over whole
    assert reset[0].period_start == world.now
    world.use(60)  # the new period: the same threshold fires again
    assert fired(world, mark) == ["usage_value:50"]
    # the marks keep one period per rule and entitlement (bounded)
    assert len(world.state.notices.om_thresholds) == 1


def test_om145_an_automatic_reset_notifies_once_stamped_at_the_boundary() -> None:
    world, _ = world_with(rule(RuleKind.RESET))
    boundary = START + timedelta(days=31)  # MONTH from Jan 15 10:30
    world.now = boundary + timedelta(days=40)  # two boundaries passed in one catch-up
    mark = len(world.facts)
    world.use(1)
    raised = [
        f for f in world.facts[mark:]
        if isinstance(f, NotificationRaised) and isinstance(f.payload, EntitlementResetNotice)
    ]  # fmt: skip
    assert len(raised) == 1  # one notice per entitlement and turn, after its last reset
    assert raised[0].at == boundary + timedelta(days=28)  # Mar 15 10:30, the last boundary


def test_om146_disabled_deleted_and_other_feature_rules_raise_nothing() -> None:
    world, ent = world_with(
        rule(disabled=True),
        rule(id="01J2KNP1YTXQRXHTDJ4KPR7R03", deleted_at=START),
        rule(id="01J2KNP1YTXQRXHTDJ4KPR7R04", features=("storage_gb",)),
    )
    world.use(100)
    world.run(ResetEntitlement(entitlement=ent))
    world.run(DeleteEntitlement(entitlement=ent))
    assert notices(world) == []


def test_om146_replay_gives_the_same_state_and_decides_nothing_again() -> None:
    world, _ = world_with(rule(thresholds=((10, ThresholdKind.USAGE_VALUE),)))
    world.use(20)
    world.use(20)
    assert encoded(replay(world.facts)) == encoded(world.state)
    assert len(fired(world)) == 1


def test_om146_snapshots_from_before_rules_decode_with_none() -> None:
    old_marks = msgspec.msgpack.encode({"usage_thresholds": {}, "pool_levels": {}})
    assert msgspec.msgpack.decode(old_marks, type=NoticeMarks).om_thresholds == {}
    old_catalog = msgspec.msgpack.encode({"features": {}, "credit_models": {}, "plans": {}})
    assert msgspec.msgpack.decode(old_catalog, type=Catalog).notification_rules == {}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=12))
def test_om143_property_a_threshold_fires_once_exactly_when_usage_first_reaches_it(
    usages: list[int],
) -> None:
    """Whatever the events, each threshold fires at most once in the period, and it fires
    exactly when the running usage first reaches it."""
    values = (25, 50, 100)
    world, _ = world_with(rule(thresholds=tuple((v, ThresholdKind.USAGE_VALUE) for v in values)))
    total = 0
    for units in usages:
        mark = len(world.facts)
        before, total = total, total + units
        expected = [f"usage_value:{v}" for v in values if before < v <= total and units > 0]
        world.use(units) if units else None
        assert fired(world, mark) == expected
