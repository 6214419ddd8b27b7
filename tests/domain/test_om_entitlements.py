"""OpenMeter entitlements and grants in the domain: research/openmeter.md 4.3's worked
semantics as tables (OM-84, OM-95, OM-85, OM-98, OM-97), and the rules around them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import msgspec
import pytest

from allotment.domain import invariants
from allotment.domain.cloud_usage import usage_commands
from allotment.domain.commands import GrantCredits
from allotment.domain.credits import GrantSource, TransactionType
from allotment.domain.facts import CreditsReversed
from allotment.domain.meters import CloudEventRecorded, Meter, MeterAggregation
from allotment.domain.om_commands import (
    AccessShown,
    CreateEntitlement,
    DeleteEntitlement,
    EntitlementShown,
    GrantShown,
    IssueGrant,
    OverrideEntitlement,
    ReadAccess,
    ResetEntitlement,
    VoidGrant,
)
from allotment.domain.om_history import WindowSize, burn_down, window_of, windowed_history
from allotment.domain.om_state import EntitlementKind, pool_denomination
from allotment.domain.replies import Done, Rejected, RejectionKind
from tests.domain.harness import START, D, demo_catalog
from tests.domain.om_world import FEATURE, OmWorld

PERIOD_END = START + timedelta(days=31)  # MONTH from Jan 15 10:30: Feb 15 10:30


def test_om84_lower_priority_number_burns_first() -> None:
    world = OmWorld()
    ent = world.create()
    low = world.grant(ent, 10, priority=2).grant.public_id
    high = world.grant(ent, 10, priority=1).grant.public_id
    assert list(world.remaining(ent)) == [high, low]
    world.use(15)
    assert world.remaining(ent) == {low: D(5)}  # the priority-1 grant was spent first
    assert world.value(ent).balance == D(5)


def test_om84_ties_burn_soonest_expiry_then_non_expiring_then_oldest() -> None:
    world = OmWorld()
    ent = world.create()
    never_old = world.grant(ent, 10).grant.public_id
    world.advance(60)
    never_new = world.grant(ent, 10).grant.public_id
    week = world.grant(ent, 10, expiration_duration="WEEK", expiration_count=1).grant.public_id
    day = world.grant(ent, 10, expiration_duration="DAY", expiration_count=1).grant.public_id
    assert list(world.remaining(ent)) == [day, week, never_old, never_new]
    world.use(25)
    assert world.remaining(ent) == {never_old: D(5), never_new: D(10)}


@pytest.mark.parametrize(
    ("amount", "used", "min_rollover", "max_rollover", "after"),
    [
        (100, 30, 0, 50, 50),  # capped at max
        (100, 30, 0, 100, 70),  # what is left, within the bounds
        (100, 90, 20, 100, 20),  # raised to min
        (100, 100, 20, 100, 20),  # a grant spent to zero comes back at min
        (100, 30, 0, 0, 0),  # v1's default max: nothing rolls over
        (100, 0, 0, 100, 100),
    ],
)
def test_om95_rollover_clamps_between_min_and_max(
    amount: int, used: int, min_rollover: int, max_rollover: int, after: int
) -> None:
    world = OmWorld()
    ent = world.create()
    world.grant(ent, amount, min_rollover=D(min_rollover), max_rollover=D(max_rollover))
    world.use(used)
    world.now = PERIOD_END  # the automatic reset is due at the boundary (OM-94)
    value = world.value(ent)
    assert value.balance == D(after)
    assert value.usage == 0
    assert world.entitlement(ent).period_start == PERIOD_END
    invariants.check(world.state)


def test_om85_issue_after_reset_brings_the_balance_back_every_period() -> None:
    world = OmWorld()
    ent = world.create(issue_after_reset=D(100), issue_after_reset_priority=3)
    (grant,) = world.entitlement(ent).grants.values()
    assert (grant.amount, grant.min_rollover, grant.max_rollover, grant.priority) == (
        D(100),
        D(100),
        D(100),
        3,
    )
    world.use(80)
    assert world.value(ent).balance == D(20)
    world.now = PERIOD_END + timedelta(days=40)  # two boundaries pass: Feb 15 and Mar 15
    value = world.value(ent)
    assert (value.balance, value.usage, value.overage) == (D(100), D(0), D(0))
    assert world.entitlement(ent).period_start == START.replace(month=3)


@pytest.mark.parametrize(
    ("soft", "has_access"),
    [(True, True), (False, False)],
)
def test_om98_soft_limit_keeps_access_and_tracks_overage(soft: bool, has_access: bool) -> None:
    world = OmWorld()
    ent = world.create(is_soft_limit=soft)
    world.grant(ent, 80)
    world.use(100)  # OM-93: never refused, whatever the limit
    value = world.value(ent)
    assert value.has_access is has_access
    assert (value.balance, value.usage, value.overage) == (D(0), D(100), D(20))
    assert value.total_available_grant_amount == D(80)


@pytest.mark.parametrize(
    ("issue", "used", "preserve", "balance", "overage"),
    [
        (100, 120, True, 80, 0),  # the 20 over is taken from the new period's allowance
        (100, 120, False, 100, 0),  # forgiven
        (10, 40, True, 0, 20),  # more carried than the new period grants: the rest stays over
    ],
)
def test_om97_preserve_overage_at_reset(
    issue: int, used: int, preserve: bool, balance: int, overage: int
) -> None:
    world = OmWorld()
    ent = world.create(issue_after_reset=D(issue), preserve_overage_at_reset=preserve)
    world.use(used)
    world.now = PERIOD_END
    value = world.value(ent)
    assert (value.balance, value.overage, value.usage) == (D(balance), D(overage), D(0))
    invariants.check(world.state)


def test_om96_manual_reset_rolls_over_and_may_reanchor() -> None:
    world = OmWorld()
    ent = world.create(issue_after_reset=D(50))
    world.use(30)
    world.advance(3600)
    assert isinstance(world.run(ResetEntitlement(entitlement=FEATURE)), Done)
    state = world.entitlement(ent)
    assert (state.period_start, state.anchor) == (world.now, world.now)
    assert world.value(ent).balance == D(50)
    world.advance(3600)
    kept = world.run(ResetEntitlement(entitlement=ent, retain_anchor=True))
    assert isinstance(kept, Done)
    assert world.entitlement(ent).anchor == world.now - timedelta(hours=1)


@pytest.mark.parametrize(
    ("offset", "field"),
    [(timedelta(seconds=1), "effective_at"), (-timedelta(days=1), "effective_at")],
)
def test_om96_a_reset_in_the_future_or_before_the_period_is_refused(
    offset: timedelta, field: str
) -> None:
    world = OmWorld()
    ent = world.create()
    world.advance(60)
    before = len(world.facts)
    reply = world.run(ResetEntitlement(entitlement=ent, effective_at=world.now + offset))
    assert isinstance(reply, Rejected)
    assert (reply.kind, reply.field) == (RejectionKind.INVALID, field)
    assert len(world.facts) == before


@pytest.mark.parametrize(
    ("command", "kind", "field"),
    [
        (
            CreateEntitlement(feature_key="nope", kind=EntitlementKind.BOOLEAN),
            "not_found",
            "feature_key",
        ),
        (
            CreateEntitlement(
                feature_key=FEATURE, kind=EntitlementKind.METERED, usage_period="P1Q"
            ),
            "invalid",
            "usage_period.interval",
        ),
        (
            CreateEntitlement(
                feature_key=FEATURE, kind=EntitlementKind.METERED, usage_period="PT5M"
            ),
            "invalid",
            "usage_period.interval",
        ),
        (CreateEntitlement(feature_key=FEATURE, kind=EntitlementKind.STATIC), "invalid", "config"),
    ],
)
def test_om80_om81_bad_entitlements_change_nothing(
    command: CreateEntitlement, kind: str, field: str
) -> None:
    world = OmWorld()
    reply = world.run(command)
    assert isinstance(reply, Rejected)
    assert (reply.kind.value, reply.field) == (kind, field)
    assert len(world.facts) == 1 and not world.state.entitlements


def test_om80_one_live_entitlement_per_feature() -> None:
    world = OmWorld()
    world.create(kind=EntitlementKind.BOOLEAN)
    reply = world.run(CreateEntitlement(feature_key=FEATURE, kind=EntitlementKind.BOOLEAN))
    assert isinstance(reply, Rejected) and reply.kind is RejectionKind.CONFLICT


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"amount": D(-1)}, "amount"),
        ({"priority": 0}, "priority"),
        ({"expiration_duration": "FORTNIGHT", "expiration_count": 1}, "expiration.duration"),
        ({"expiration_duration": "DAY", "expiration_count": 0}, "expiration.count"),
        ({"recurrence": "P1Z"}, "recurrence.interval"),
        ({"min_rollover": D(5), "max_rollover": D(1)}, "min_rollover_amount"),
    ],
)
def test_om85_bad_grants_change_nothing(fields: dict[str, object], field: str) -> None:
    world = OmWorld()
    ent = world.create()
    before = len(world.facts)
    command = {"entitlement": ent, "amount": D(10), "effective_at": world.now, **fields}
    reply = world.run(IssueGrant(**command))  # type: ignore[arg-type]
    assert isinstance(reply, Rejected)
    assert (reply.kind, reply.field) == (RejectionKind.INVALID, field)
    assert len(world.facts) == before


def test_om85_a_grant_on_a_boolean_entitlement_is_refused() -> None:
    world = OmWorld()
    ent = world.create(kind=EntitlementKind.BOOLEAN)
    reply = world.run(IssueGrant(entitlement=ent, amount=D(1), effective_at=world.now))
    assert isinstance(reply, Rejected) and reply.field == "entitlement"


def test_om87_tanso_grants_cannot_reach_an_entitlement_pool() -> None:
    world = OmWorld()
    ent = world.create()
    reply = world.run(
        GrantCredits(denomination=pool_denomination(ent), amount=D(5), source=GrantSource.MANUAL)
    )
    assert isinstance(reply, Rejected)


def test_om88_a_future_grant_enters_the_pool_at_its_effective_instant() -> None:
    world = OmWorld()
    ent = world.create()
    world.grant(ent, 40, effective_at=START + timedelta(hours=2))
    assert world.value(ent).balance == 0
    world.use(5)  # covered by nothing yet: overage that the later grant does not erase
    world.advance(2 * 3600)
    value = world.value(ent)
    assert (value.balance, value.overage) == (D(40), D(5))
    assert world.value(ent, at=START + timedelta(hours=1)).balance == 0


def test_om89_void_is_not_retroactive_and_happens_once() -> None:
    world = OmWorld()
    ent = world.create()
    grant = world.grant(ent, 100).grant.public_id
    world.use(60)
    assert isinstance(world.run(VoidGrant(grant=grant)), GrantShown)
    value = world.value(ent)
    assert (value.balance, value.usage, value.overage) == (D(0), D(60), D(0))
    assert value.total_available_grant_amount == D(60)
    reversal = [f for f in world.facts if isinstance(f, CreditsReversed)]
    assert reversal[-1].transaction.type is TransactionType.REVERSAL
    assert reversal[-1].transaction.amount == D(-40)
    again = world.run(VoidGrant(grant=grant))
    assert isinstance(again, Rejected) and again.kind is RejectionKind.CONFLICT
    missing = world.run(VoidGrant(grant="01NOPE"))
    assert isinstance(missing, Rejected) and missing.kind is RejectionKind.NOT_FOUND


def test_om86_expiry_is_the_pools_due_transition() -> None:
    world = OmWorld()
    ent = world.create()
    world.grant(ent, 10, expiration_duration="HOUR", expiration_count=2)
    world.use(4)
    world.advance(2 * 3600)
    assert world.value(ent).balance == 0
    assert world.value(ent, at=START + timedelta(hours=1)).balance == D(6)


def test_om91_late_and_early_events_count_toward_nothing() -> None:
    world = OmWorld()
    ent = world.create(measure_usage_from=START + timedelta(minutes=10))
    world.grant(ent, 10)
    world.advance(3600)
    world.use(3, occurred_at=START + timedelta(minutes=5))  # before measureUsageFrom
    assert world.value(ent).usage == 0
    world.now = PERIOD_END + timedelta(hours=1)
    world.use(2, occurred_at=PERIOD_END - timedelta(minutes=1))  # for the closed period
    assert world.value(ent).usage == 0


def test_om83_delete_and_override_are_not_retroactive() -> None:
    world = OmWorld()
    ent = world.create()
    world.grant(ent, 10)
    world.use(4)
    world.advance(60)
    reply = world.run(
        OverrideEntitlement(
            entitlement=FEATURE,
            replacement=CreateEntitlement(
                feature_key=FEATURE, kind=EntitlementKind.METERED, usage_period="DAY"
            ),
        )
    )
    assert isinstance(reply, EntitlementShown)
    new = reply.definition.id
    assert world.entitlement(ent).deleted_at == world.now
    assert world.value(ent, at=START + timedelta(seconds=30)).balance == D(6)
    assert world.value(new).balance == 0  # grants do not move
    world.advance(60)
    assert isinstance(world.run(DeleteEntitlement(entitlement=new)), Done)
    assert world.value(new).has_access is False
    assert world.value(new, at=world.now - timedelta(seconds=30)).has_access is False  # empty


def test_om99_om101_boolean_static_and_access() -> None:
    world = OmWorld()
    world.create(kind=EntitlementKind.BOOLEAN, feature_key="sso")
    world.create(kind=EntitlementKind.STATIC, feature_key="seats", config='{"max": 3}')
    metered = world.create(issue_after_reset=D(5))
    reply = world.run(ReadAccess())
    assert isinstance(reply, AccessShown)
    assert reply.values["sso"].has_access and reply.values["sso"].balance is None
    assert reply.values["seats"].config == '{"max": 3}'
    assert reply.values[FEATURE] == world.value(metered)


def test_om103_day_windows_follow_the_local_clock_across_dst() -> None:
    world = OmWorld()
    world.now = START.replace(month=3, day=7, hour=12)  # US DST starts Sun 9 March 2025
    ent = world.create(usage_period="P1M", issue_after_reset=D(100))
    for _ in range(4):
        world.use(5)
        world.advance(86400)
    zone = ZoneInfo("America/New_York")
    rows = windowed_history(
        world.entitlement(ent),
        world.entitlement(ent).period_start or START,
        world.now,
        WindowSize.DAY,
        zone,
    )
    lengths = [(row.end - row.start).total_seconds() / 3600 for row in rows]
    assert lengths[1:3] == [24, 23]  # 8 March is whole; 9 March lost an hour
    assert [row.usage for row in rows] == [D(5)] * 4
    assert [row.balance_at_start for row in rows] == [D(100), D(95), D(90), D(85)]


def test_om104_burn_down_cuts_at_expiry_and_reset() -> None:
    world = OmWorld()
    ent = world.create(usage_period="DAY")
    short = world.grant(ent, 10, priority=1, expiration_duration="HOUR", expiration_count=1)
    long = world.grant(ent, 10, priority=2, max_rollover=D(10))
    world.use(4)
    world.advance(7200)
    world.use(3)
    world.now = START + timedelta(days=1, hours=1)
    world.use(1)
    segments = burn_down(world.entitlement(ent), START, START + timedelta(days=1, hours=2))
    assert [s.end - s.start for s in segments] == [
        timedelta(hours=1),
        timedelta(hours=23),
        timedelta(hours=2),
    ]
    first, second, third = segments
    assert first.grant_usages == {short.grant.public_id: D(4)}
    assert first.grant_balances_at_end == {short.grant.public_id: D(6), long.grant.public_id: D(10)}
    assert second.balance_at_start == D(10) and second.grant_usages == {long.grant.public_id: D(3)}
    assert (third.balance_at_start, third.usage, third.balance_at_end) == (D(7), D(1), D(6))


def test_om95_rollover_ledger_conserves_the_pool() -> None:
    world = OmWorld()
    ent = world.create(usage_period="DAY", issue_after_reset=D(5))
    world.grant(ent, 20, min_rollover=D(1), max_rollover=D(3))
    for _ in range(5):
        world.use(Decimal("7.5"))
        world.advance(86400)
        invariants.check(world.state)
    balance = world.value(ent).balance
    # each day: 5 (issueAfterReset) + 1 (the other grant's min rollover) = 6 (OM-95)
    assert world.state.pools[pool_denomination(ent)].balance == balance == D(6)


def test_om85_a_recurring_grant_is_reissued_whole_each_interval() -> None:
    world = OmWorld()
    ent = world.create(usage_period="P1W")
    world.grant(ent, 10, recurrence="DAY", max_rollover=D(10))
    world.use(7)
    world.advance(86400 - 1)
    assert world.value(ent).balance == D(3)
    world.advance(1)
    value = world.value(ent)
    assert (value.balance, value.usage) == (D(10), D(7))  # re-issued; the period goes on
    world.use(10)
    world.advance(2 * 86400)  # two re-issues in one catch-up
    assert world.value(ent).balance == D(10)
    assert world.value(ent, at=START + timedelta(days=1, seconds=1)).balance == 0


def test_om90_tanso_events_and_cloudevents_count_toward_one_entitlement() -> None:
    catalog = demo_catalog()
    meter = Meter(id="m1", slug="calls", name="calls", aggregation=MeterAggregation.SUM,
                  event_type="api", value_property="$.n", created_at=START, updated_at=START)  # fmt: skip
    feature = msgspec.structs.replace(catalog.features[FEATURE], meter_slug="calls")
    catalog = msgspec.structs.replace(
        catalog, meters={meter.id: meter}, features={**catalog.features, FEATURE: feature}
    )
    world = OmWorld(catalog)
    ent = world.create()
    world.grant(ent, 10)
    world.use(3)  # a Tanso event of the feature
    event = CloudEventRecorded(at=START, source="s", event_id="1", event_type="api",
                               subject="c1", time=START, data={"n": 4})  # fmt: skip
    for command in usage_commands(event, catalog):  # what the shard runs after journalling it
        world.run(command)
    value = world.value(ent)
    assert (value.usage, value.balance) == (D(7), D(3))


def test_om103_minute_windows_are_local_minutes() -> None:
    """OM-103 (MINUTE, which the document's `WindowSize` has too): a minute of the zone's
    clock, so a zone whose offset had seconds (local mean time) cuts it there."""
    utc = ZoneInfo("UTC")
    instant = datetime(2025, 3, 9, 7, 30, 42, 5, tzinfo=UTC)
    assert window_of(instant, WindowSize.MINUTE, utc) == (
        datetime(2025, 3, 9, 7, 30, tzinfo=UTC),
        datetime(2025, 3, 9, 7, 31, tzinfo=UTC),
    )
    amsterdam_1930 = datetime(1930, 1, 1, 12, 0, 30, tzinfo=UTC)  # +00:19:32 then
    start, end = window_of(amsterdam_1930, WindowSize.MINUTE, ZoneInfo("Europe/Amsterdam"))
    assert start == datetime(1930, 1, 1, 12, 0, 28, tzinfo=UTC)
    assert end - start == timedelta(minutes=1)
