"""OpenMeter entitlements through the official `openmeter` client, unchanged, against a real
allotment server (docs/openmeter.md OM-107..OM-119): create, list, get, delete, override and
reset on the v1 subject paths and the v2 customer paths, the environment-wide listings and
gets, the three types' shapes, refusals naming the field with nothing changed, and an
entitlement surviving kill -9.

One server for the module; each test uses customers and features of its own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from openmeter import Client
from openmeter import models as m
from tests.openmeter.subject_ops import entitlement as read
from tests.openmeter.subject_ops import subject_entitlements
from tests.openmeter.support import om_client, refused, running_server
from tests.reliability.server import Server


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("om-ent")


@pytest.fixture(scope="module")
def server(data_dir: Path, server_shards: int) -> Iterator[Server]:
    with running_server(data_dir, server_shards) as running:
        yield running


def _customer(om: Client, name: str, *features: str) -> None:
    """Customer `name` claiming subject `<name>-subject`, and the features `<name>_<f>`."""
    om.customers.create(m.CustomerCreate(name=name, key=name, usage_attribution=m.CustomerUsageAttribution(subject_keys=[f"{name}-subject"])))  # fmt: skip
    for feature in features:
        om.features.create(m.FeatureCreateInputs(key=f"{name}_{feature}", name=feature))


def _metered(feature: str, **extra: Any) -> m.EntitlementMeteredCreateInputs:
    period = m.RecurringPeriodCreateInput(interval=extra.pop("interval", "MONTH"),
                                          anchor=extra.pop("anchor", None))  # fmt: skip
    return m.EntitlementMeteredCreateInputs(type=m.EntitlementType.METERED, feature_key=feature,
                                            usage_period=period, **extra)  # fmt: skip


def _metered_v2(feature: str, interval: str) -> m.EntitlementMeteredV2CreateInputs:
    period = m.RecurringPeriodCreateInput(interval=interval)
    return m.EntitlementMeteredV2CreateInputs(type=m.EntitlementType.METERED,
                                              feature_key=feature, usage_period=period)  # fmt: skip


# -- v1: the subject paths ---------------------------------------------------------------------


def test_v1_subject_entitlements_round_trip(om: Client, subjects: Any) -> None:
    """OM-107, OM-110..OM-114: create the three types through a subject key, get, list,
    delete (soft: gone from the listing, still there by id with deletedAt)."""
    _customer(om, "v1rt", "calls", "seats", "sso")
    anchor = datetime(2025, 1, 31, tzinfo=UTC)
    metered = read(subjects.post("v1rt-subject", _metered("v1rt_calls", anchor=anchor,
                            is_soft_limit=True, issue_after_reset=100,
                            issue_after_reset_priority=3, preserve_overage_at_reset=True)))  # fmt: skip
    static = read(subjects.post("v1rt-subject", m.EntitlementStaticCreateInputs(
        type=m.EntitlementType.STATIC, feature_key="v1rt_seats", config='{"seats": 5}')))  # fmt: skip
    boolean = read(subjects.post("v1rt", m.EntitlementBooleanCreateInputs(  # the customer key too
        type=m.EntitlementType.BOOLEAN, feature_key="v1rt_sso")))  # fmt: skip
    assert isinstance(metered, m.EntitlementMetered)
    assert (metered.subject_key, metered.feature_key, metered.type) == (
        "v1rt-subject", "v1rt_calls", "metered")  # fmt: skip
    assert metered.is_soft_limit and metered.preserve_overage_at_reset
    assert (metered.issue_after_reset, metered.issue_after_reset_priority) == (100, 3)
    assert metered.usage_period.interval == "MONTH" and metered.usage_period.anchor == anchor
    period = metered.current_usage_period
    assert period.from_property.day == 31 or period.from_property.month in (2, 4, 6, 9, 11)
    assert period.from_property <= datetime.now(UTC) < period.to  # OM-82: the grid's period
    assert metered.last_reset == period.from_property
    assert isinstance(static, m.EntitlementStatic) and json.loads(static.config) == {"seats": 5}
    assert isinstance(boolean, m.EntitlementBoolean)
    ids = [read(e).id for e in subjects.list("v1rt-subject")]
    assert ids == [metered.id, static.id, boolean.id]
    got = read(subjects.get("v1rt-subject", static.id))
    assert (got.id, got.config) == (static.id, static.config)
    subjects.delete("v1rt-subject", boolean.id)
    assert [read(e).id for e in subjects.list("v1rt-subject")] == [metered.id, static.id]
    everything = [read(e) for e in subjects.list("v1rt-subject", include_deleted=True)]
    assert [e.id for e in everything] == ids and everything[2].deleted_at is not None
    assert read(subjects.get("v1rt-subject", boolean.id)).deleted_at is not None


def test_v1_override_and_reset(om: Client, subjects: Any) -> None:
    """OM-115: override replaces the live entitlement (by feature key) with a new id;
    OM-116: a reset starts a new period at effectiveAt, the anchor moving unless retained."""
    _customer(om, "v1ov", "calls")
    first = read(subjects.post("v1ov-subject", _metered("v1ov_calls", interval="P1D")))
    second = read(subjects.override("v1ov-subject", "v1ov_calls", _metered("v1ov_calls",
                                 interval="DAY", is_soft_limit=True)))  # fmt: skip
    assert second.id != first.id and second.is_soft_limit
    assert read(subjects.get("v1ov-subject", first.id)).deleted_at is not None
    assert [read(e).id for e in subjects.list("v1ov-subject")] == [second.id]
    start = second.current_usage_period.from_property
    effective = max(start, datetime.now(UTC) - timedelta(seconds=1))
    subjects.reset("v1ov-subject", second.id, m.ResetEntitlementUsageInput(
        effective_at=effective, retain_anchor=False))  # fmt: skip
    after = read(subjects.get("v1ov-subject", second.id))
    assert after.last_reset == effective == after.current_usage_period.from_property
    assert after.usage_period.anchor == effective  # retainAnchor false: the anchor moves


# -- v2: the customer paths --------------------------------------------------------------------


def test_v2_customer_entitlements_round_trip(om: Client) -> None:
    """OM-107, OM-110: create by customer key, get by id and by feature key, a page of the
    customer's entitlements, override, reset with retainAnchor, delete."""
    _customer(om, "v2rt", "calls", "plan")
    v2 = om.customer_entitlements_v2
    created = read(v2.post("v2rt", m.EntitlementMeteredV2CreateInputs(type=m.EntitlementType.METERED,
                      feature_key="v2rt_calls", usage_period=m.RecurringPeriodCreateInput(
                          interval="PT6H"), issue=m.IssueAfterReset(amount=50, priority=2),
                      measure_usage_from="CURRENT_PERIOD_START")))  # fmt: skip
    assert isinstance(created, m.EntitlementMeteredV2)
    assert (created.customer_key, created.issue_after_reset) == ("v2rt", 50)
    assert created.issue is not None and created.issue.priority == 2
    assert created.usage_period.interval == "PT6H"
    assert created.measure_usage_from == created.current_usage_period.from_property
    static = read(v2.post("v2rt", m.EntitlementStaticCreateInputs(type=m.EntitlementType.STATIC,
                       feature_key="v2rt_plan", config='{"tier": "gold"}')))  # fmt: skip
    assert (
        read(v2.get("v2rt", "v2rt_calls")).id == created.id == read(v2.get("v2rt", created.id)).id
    )
    assert read(v2.get(created.customer_id, "v2rt_plan")).id == static.id  # the customer's id
    page = v2.list("v2rt", page=1, page_size=1, order="DESC")
    assert (page.total_count, [read(e).id for e in page.items_property]) == (2, [static.id])
    replaced = read(v2.override("v2rt", "v2rt_plan", m.EntitlementStaticCreateInputs(
        type=m.EntitlementType.STATIC, feature_key="v2rt_plan", config='{"tier": "platinum"}')))  # fmt: skip
    assert json.loads(replaced.config) == {"tier": "platinum"}
    effective = max(created.current_usage_period.from_property,
                    datetime.now(UTC) - timedelta(seconds=1))  # fmt: skip
    om.customer_entitlement_v2.reset_customer_entitlement("v2rt", "v2rt_calls",
        m.ResetEntitlementUsageInput(effective_at=effective, retain_anchor=True,
                                     preserve_overage=False))  # fmt: skip
    after = read(v2.get("v2rt", created.id))
    assert (
        after.last_reset == effective and after.usage_period.anchor == created.usage_period.anchor
    )
    v2.delete("v2rt", "v2rt_calls")
    assert v2.list("v2rt").total_count == 1
    assert v2.list("v2rt", include_deleted=True).total_count == 3


# -- the environment's listings ----------------------------------------------------------------


def test_environment_listings_and_gets(om: Client, subjects: Any) -> None:
    """OM-108, OM-117: every customer's live entitlements, filtered by feature, subject or
    customer and type; array or page in v1, page in v2; get by id whoever owns it."""
    _customer(om, "envx", "calls", "flag")
    _customer(om, "envy", "calls")
    a = read(subjects.post("envx-subject", _metered("envx_calls")))
    b = read(subjects.post("envx-subject", m.EntitlementBooleanCreateInputs(type=m.EntitlementType.BOOLEAN,
                        feature_key="envx_flag")))  # fmt: skip
    c = read(om.customer_entitlements_v2.post("envy", m.EntitlementBooleanCreateInputs(
        type=m.EntitlementType.BOOLEAN, feature_key="envy_calls")))  # fmt: skip
    ours = {a.id, b.id, c.id}
    listed = om.entitlements.list(subject=["envx-subject", "envy-subject"])
    assert isinstance(listed, list) and {read(e).id for e in listed} == ours
    booleans = om.entitlements.list(subject=["envx-subject"], entitlement_type=["boolean"])
    assert isinstance(booleans, list) and [read(e).id for e in booleans] == [b.id]
    page = om.entitlements.list(feature=["envx_calls"], page=1, page_size=10)
    assert isinstance(page, dict) and (page["totalCount"], page["page"]) == (1, 1)
    assert [read(e).id for e in page["items"]] == [a.id]
    v2 = om.entitlements_v2.list(customer_keys=["envx", "envy"], order_by="createdAt",
                                 order="DESC")  # fmt: skip
    assert [read(e).id for e in v2.items_property] == [c.id, b.id, a.id]
    assert {read(e).customer_key for e in v2.items_property} == {"envx", "envy"}
    assert read(om.entitlements.get(c.id)).subject_key == "envy-subject"
    assert refused(lambda: subjects.get("envy-subject", a.id)).status == 404  # OM-107: not envy's
    feature_id = a.feature_id  # OM-112: a feature named by its catalog id
    by_id = read(om.customer_entitlements_v2.post("envy", m.EntitlementBooleanCreateInputs(
        type=m.EntitlementType.BOOLEAN, feature_id=feature_id)))  # fmt: skip
    assert by_id.feature_key == "envx_calls"
    assert read(om.entitlements_v2.get(a.id)).customer_key == "envx"


# -- bad input: refused by name, nothing changed -----------------------------------------------


def test_bad_input_is_refused_naming_the_field_with_nothing_changed(
    om: Client, subjects: Any
) -> None:
    """OM-109, OM-112: an unknown feature (404 featureKey), a bad ISO duration (400
    usagePeriod.interval), a reset in the future (400 effectiveAt), an unknown subject,
    customer or entitlement (404); after each, the listings are as before."""
    _customer(om, "bad", "calls", "more")
    ent = read(subjects.post("bad-subject", _metered("bad_calls", interval="P1D")))
    before = subjects.list("bad-subject", include_deleted=True)
    problem = refused(lambda: subjects.post("bad-subject", _metered("bad_nope")))
    assert (problem.status, problem.fields) == (404, ["featureKey"])
    problem = refused(lambda: om.customer_entitlements_v2.post("bad", _metered_v2("bad_more",
                      "P1.5D")))  # fmt: skip
    assert (problem.status, problem.fields) == (400, ["usagePeriod.interval"])
    problem = refused(lambda: om.customer_entitlements_v2.post("bad", _metered_v2("bad_more",
                      "PT30M")))  # fmt: skip
    assert (problem.status, problem.fields) == (400, ["usagePeriod.interval"])
    future = datetime.now(UTC) + timedelta(hours=1)
    problem = refused(lambda: subjects.reset("bad-subject", ent.id,
                      m.ResetEntitlementUsageInput(effective_at=future)))  # fmt: skip
    assert (problem.status, problem.fields) == (400, ["effectiveAt"])
    unknown_id = m.EntitlementBooleanCreateInputs(type=m.EntitlementType.BOOLEAN,
                                                  feature_id="01JNOPE0000000000000000000")  # fmt: skip
    problem = refused(lambda: subjects.post("bad-subject", unknown_id))
    assert (problem.status, problem.fields) == (404, ["featureId"])
    problem = refused(lambda: subjects.post("nobody", _metered("bad_calls")))
    assert (problem.status, problem.fields) == (404, ["subjectIdOrKey"])
    problem = refused(lambda: om.customer_entitlements_v2.list("nobody"))
    assert (problem.status, problem.fields) == (404, ["customerIdOrKey"])
    assert refused(lambda: subjects.get("bad-subject", "01JNOPE0000000000000000000")).status == 404
    assert refused(lambda: subjects.delete("bad-subject", "bad_nope")).status == 404
    problem = refused(lambda: om.entitlements.get("01JNOPE0000000000000000000"))
    assert (problem.status, problem.fields) == (404, ["entitlementId"])
    problem = refused(
        lambda: om.customer_entitlements_v2.post("bad", _metered_v2("bad_calls", "DAY"))
    )
    assert (problem.status, problem.fields) == (409, ["featureKey"])  # OM-80: one live one
    assert subjects.list("bad-subject", include_deleted=True) == before
    assert om.entitlements.list(subject=["bad-subject"]) == before


def test_wrong_shapes_are_refused_by_name(om: Client, subjects: Any) -> None:
    """OM-112, OM-113: a static config that is not a JSON object, a metered field on a
    boolean entitlement, a metered one without usagePeriod; nothing created."""
    _customer(om, "shape", "seats")
    cases: list[tuple[Any, str]] = [
        (
            m.EntitlementStaticCreateInputs(
                type=m.EntitlementType.STATIC, feature_key="shape_seats", config="[1, 2]"
            ),
            "config",
        ),
        (
            m.EntitlementStaticCreateInputs(
                type=m.EntitlementType.STATIC, feature_key="shape_seats", config="{nope"
            ),
            "config",
        ),
        ({"type": "boolean", "featureKey": "shape_seats", "isSoftLimit": True}, "isSoftLimit"),
        ({"type": "metered", "featureKey": "shape_seats"}, "usagePeriod"),
    ]
    for body, field in cases:
        problem = refused(partial(subjects.post, "shape-subject", body))
        assert (problem.status, problem.fields) == (400, [field]), body
    assert subjects.list("shape-subject", include_deleted=True) == []


# -- durability --------------------------------------------------------------------------------


def test_entitlements_survive_kill_and_recovery(data_dir: Path) -> None:
    """OM-106, OM-118: after kill -9 the entitlement, its deletion and the environment's
    id index are recovered from the journal (the index rebuilt from the states)."""
    (data_dir / "crash").mkdir()
    with running_server(data_dir / "crash") as first:
        om = om_client(first)
        _customer(om, "dur", "calls", "flag")
        kept = read(subject_entitlements(om).post("dur-subject", _metered("dur_calls")))
        gone = read(om.customer_entitlements_v2.post("dur", m.EntitlementBooleanCreateInputs(
            type=m.EntitlementType.BOOLEAN, feature_key="dur_flag")))  # fmt: skip
        om.customer_entitlements_v2.delete("dur", gone.id)
        before = om.entitlements.get(kept.id)
    with running_server(data_dir / "crash") as second:  # the first was killed with SIGKILL
        om = om_client(second)
        assert om.entitlements.get(kept.id) == before
        assert read(om.entitlements_v2.get(gone.id)).deleted_at is not None
        listed = om.customer_entitlements_v2.list("dur").items_property
        assert [read(e).id for e in listed] == [kept.id]


def test_the_v1_listing_answers_100_by_default(om: Client) -> None:
    """OM-117: listEntitlements without `page` answers an array of at most `limit`
    entitlements, 100 by default as the document's LimitOffset says (it answered up to 1,000);
    `offset` goes on from there and the page object counts them all."""
    _customer(om, "l100", *(f"f{n}" for n in range(101)))
    for n in range(101):
        om.customer_entitlements_v2.post("l100", m.EntitlementBooleanCreateInputs(
            type=m.EntitlementType.BOOLEAN, feature_key=f"l100_f{n}"))  # fmt: skip
    counted: Any = om.entitlements.list(page=1, page_size=1)
    total = counted["totalCount"]
    assert total > 100
    everything: Any = om.entitlements.list(limit=1000)
    default: Any = om.entitlements.list()
    assert (len(everything), len(default)) == (total, 100)
    assert [read(e).id for e in default] == [read(e).id for e in everything[:100]]
    tail: Any = om.entitlements.list(offset=100)
    assert [read(e).id for e in tail] == [read(e).id for e in everything[100:200]]
