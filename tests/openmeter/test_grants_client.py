"""OpenMeter grants through the official client, unchanged, against a real server
(docs/openmeter.md OM-120..OM-129): issue on the v1 subject and v2 customer paths, list per
entitlement and across the environment, void by id, burn-down order, bad input refused with
nothing written, and grants across a `kill -9`.

The client's v1 subject grant operations exist as request builders only (its second
`SubjectsOperations` class shadows the first), so those two calls go through the client's
own `send_request` with its own builders. Balances are read from the one ledger: the
entitlement's credit pool `om:<id>` on the Tanso credits path (OM-86, OM-127).

One server for the module; each test uses names of its own. The restart test is last."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from openmeter._generated.operations._operations import (
    build_subjects_create_grant_request,
    build_subjects_get_grants_request,
)

from openmeter import Client
from openmeter import models as m
from tests.openmeter.support import C, om_client, refused, tanso
from tests.reliability.server import Server

PAST = datetime(2020, 1, 1, tzinfo=UTC)  # effective long ago: active at once (OM-88)


@pytest.fixture(scope="module")
def box(
    tmp_path_factory: pytest.TempPathFactory, server_shards: int
) -> Iterator[dict[str, Server]]:
    """The module's server, in a box so the restart test can replace it."""
    held = {"server": Server(tmp_path_factory.mktemp("om-grants"), shards=server_shards)}
    try:
        yield held
    finally:
        held["server"].kill()


@pytest.fixture
def om(box: dict[str, Server]) -> Client:
    return om_client(box["server"])


@pytest.fixture
def http(box: dict[str, Server]) -> Iterator[httpx.Client]:
    with tanso(box["server"]) as client:
        yield client


def _customer(om: Client, name: str) -> dict[str, str]:
    """Customer `name` (subject `<name>-subject`) with a SUM meter and feature `<name>_tok`
    metered by a monthly entitlement, and boolean and static entitlements; their ids."""
    om.meters.create(m.MeterCreate(slug=f"{name}_tok", aggregation="SUM", event_type=f"{name}.llm",
                                   value_property="$.tokens"))  # fmt: skip
    for key, meter in ((f"{name}_tok", f"{name}_tok"), (f"{name}_flag", None),
                       (f"{name}_tier", None)):  # fmt: skip
        om.features.create(m.FeatureCreateInputs(key=key, name=key, meter_slug=meter))
    attribution = m.CustomerUsageAttribution(subject_keys=[f"{name}-subject"])
    om.customers.create(m.CustomerCreate(name=name, key=name, usage_attribution=attribution))
    post = om.customer_entitlements_v2.post
    monthly = m.RecurringPeriodCreateInput(interval="MONTH")
    metered = post(name, m.EntitlementMeteredV2CreateInputs(
        type=m.EntitlementType.METERED, feature_key=f"{name}_tok", usage_period=monthly))  # fmt: skip
    flag = post(
        name,
        m.EntitlementBooleanCreateInputs(
            type=m.EntitlementType.BOOLEAN, feature_key=f"{name}_flag"
        ),
    )
    tier = post(name, m.EntitlementStaticCreateInputs(type=m.EntitlementType.STATIC, feature_key=f"{name}_tier",
                                                      config='{"seats": 3}'))  # fmt: skip
    # the client answers a union of entitlement types as the raw mapping
    return {"metered": metered["id"], "flag": flag["id"], "tier": tier["id"]}


def _use(om: Client, name: str, tokens: int, event_id: str) -> None:
    """`tokens` units of `<name>_tok`, as one CloudEvent of its meter (OM-30, OM-90)."""
    om.events.ingest_event(m.Event(id=event_id, source="grants", specversion="1.0",
                                   type=f"{name}.llm", subject=f"{name}-subject",
                                   data={"tokens": tokens}))  # fmt: skip


def _pool(http: httpx.Client, name: str, entitlement_id: str) -> dict[str, Any]:
    """The entitlement's credit pool, grants in burn-down order (OM-86, CRD-51)."""
    response = http.get(f"{C}/credits/{name}/pools", params={"expand": "grants"})
    assert response.status_code == 200, response.text
    pools = [p for p in response.json()["data"] if p["denomination"] == f"om:{entitlement_id}"]
    assert len(pools) == 1
    pool: dict[str, Any] = pools[0]
    return pool


def _v1_create(om: Client, subject: str, entitlement: str, body: dict[str, Any]) -> Any:
    return om.send_request(build_subjects_create_grant_request(subject, entitlement, json=body))


def _items(page: Any) -> list[m.EntitlementGrantV2]:
    """A page's grants: the model's `items` is the Mapping method, so read the key."""
    return [m.EntitlementGrantV2(g) for g in page["items"]]


def _v1_list(om: Client, subject: str, entitlement: str, **params: Any) -> list[m.EntitlementGrant]:
    response = om.send_request(build_subjects_get_grants_request(subject, entitlement, **params))
    assert response.status_code == 200, response.text()
    return [m.EntitlementGrant(g) for g in response.json()]


def test_v2_grants_issue_and_list_with_v2_defaults(om: Client, http: httpx.Client) -> None:
    """OM-122, OM-123: v2 may omit `expiration` (never expires) and defaults
    `maxRolloverAmount` to the amount; the amount is exact; recurrence shows its anchor."""
    ids = _customer(om, "gv2")
    ce = om.customer_entitlement_v2
    plain = ce.create_customer_entitlement_grant("gv2", "gv2_tok", m.EntitlementGrantCreateInputV2(
        amount=0.1, effective_at=PAST, metadata=m.Metadata({"ref": "pi_1"})))  # fmt: skip
    assert (plain.amount, plain.max_rollover_amount, plain.min_rollover_amount) == (0.1, 0.1, 0)
    assert plain.expires_at is None and plain.expiration is None and plain.voided_at is None
    assert (plain.entitlement_id, plain.priority) == (ids["metered"], 1)
    assert dict(plain.metadata or {}) == {"ref": "pi_1"}
    recurring = ce.create_customer_entitlement_grant("gv2", ids["metered"], m.EntitlementGrantCreateInputV2(
        amount=5, effective_at=PAST, priority=3, max_rollover_amount=2,
        recurrence=m.RecurringPeriodCreateInput(interval="DAY")))  # fmt: skip
    assert recurring.recurrence is not None and recurring.recurrence.interval == "DAY"
    assert recurring.recurrence.anchor == PAST and recurring.max_rollover_amount == 2
    assert recurring.next_recurrence is not None and recurring.next_recurrence > PAST
    page = ce.get_grants("gv2", "gv2_tok", order_by="createdAt")
    assert (page.total_count, [g.id for g in _items(page)]) == (2, [plain.id, recurring.id])
    assert Decimal(str(_pool(http, "gv2", ids["metered"])["balance"])) == Decimal("5.1")


def test_v1_subject_grants_require_expiration_and_default_max_rollover_to_0(om: Client) -> None:
    """OM-120, OM-122: the subject paths take a subject key; `expiration` is required and
    sets `expiresAt`; `maxRolloverAmount` defaults to 0; listed as a bare array."""
    ids = _customer(om, "gv1")
    body = {"amount": 40, "priority": 2, "effectiveAt": "2020-01-31T00:00:00Z",
            "expiration": {"duration": "YEAR", "count": 100}}  # fmt: skip
    response = _v1_create(om, "gv1-subject", "gv1_tok", body)
    assert response.status_code == 201, response.text()
    grant = m.EntitlementGrant(response.json())
    assert (grant.amount, grant.priority, grant.max_rollover_amount) == (40, 2, 0)
    assert grant.expiration is not None and grant.expiration.count == 100
    assert grant.expires_at == datetime(2120, 1, 31, tzinfo=UTC)
    missing = _v1_create(om, "gv1-subject", "gv1_tok", {"amount": 1, "effectiveAt": "2020-01-01T00:00:00Z"})  # fmt: skip
    assert missing.status_code == 400
    assert missing.json()["extensions"]["validationErrors"][0]["field"] == "expiration"
    assert [g.id for g in _v1_list(om, "gv1", ids["metered"])] == [grant.id]  # customer key too


def test_burn_down_by_priority_then_soonest_expiry(om: Client, http: httpx.Client) -> None:
    """OM-84, OM-127: usage burns the lowest priority number first, among equals the grant
    expiring soonest; a void takes what that grant has left (seen on the one ledger)."""
    ids = _customer(om, "gbd")
    create = om.customer_entitlement_v2.create_customer_entitlement_grant
    later = m.ExpirationPeriod(duration="YEAR", count=200)
    sooner = m.ExpirationPeriod(duration="YEAR", count=100)
    low = create("gbd", "gbd_tok", m.EntitlementGrantCreateInputV2(amount=100, priority=2,
                                                                   effective_at=PAST))  # fmt: skip
    far = create("gbd", "gbd_tok", m.EntitlementGrantCreateInputV2(amount=50, priority=1,
                                                                   effective_at=PAST, expiration=later))  # fmt: skip
    near = create("gbd", "gbd_tok", m.EntitlementGrantCreateInputV2(amount=50, priority=1,
                                                                    effective_at=PAST, expiration=sooner))  # fmt: skip
    _use(om, "gbd", 30, "gbd-1")
    pool = _pool(http, "gbd", ids["metered"])
    assert pool["balance"] == 170
    remaining = [
        (g["amount"], g["remaining"], (g.get("expiresAt") or "")[:4]) for g in pool["grants"]
    ]
    assert remaining == [(50, 20, "2120"), (50, 50, "2220"), (100, 100, "")]
    _use(om, "gbd", 40, "gbd-2")  # the rest of `near`, then 20 of `far`
    assert _pool(http, "gbd", ids["metered"])["balance"] == 130
    for grant, left in ((near, 130), (far, 100), (low, 0)):
        om.grants.delete(grant.id)
        assert _pool(http, "gbd", ids["metered"])["balance"] == left


def test_void_is_not_retroactive_and_refuses_unknown_and_repeated(
    om: Client, http: httpx.Client
) -> None:
    """OM-89, OM-126: a void shows `voidedAt`; an unknown id is 404 and a second void 409,
    both naming `grantId`, and an `at` in the future is 400 `at`; none changes anything."""
    ids = _customer(om, "gvo")
    ce = om.customer_entitlement_v2
    grant = ce.create_customer_entitlement_grant("gvo", "gvo_tok", m.EntitlementGrantCreateInputV2(
        amount=100, effective_at=PAST))  # fmt: skip
    _use(om, "gvo", 60, "gvo-1")
    future = datetime.now(UTC) + timedelta(days=1)
    too_late = refused(lambda: om.grants.delete(grant.id, at=future))
    assert (too_late.status, too_late.fields) == (400, ["at"])
    assert _pool(http, "gvo", ids["metered"])["balance"] == 40
    om.grants.delete(grant.id)
    pool = _pool(http, "gvo", ids["metered"])
    assert (pool["balance"], pool["totalConsumed"]) == (0, 60)  # the 60 stay used
    voided = _items(ce.get_grants("gvo", "gvo_tok"))[0]
    assert voided.voided_at is not None and voided.updated_at == voided.voided_at
    again = refused(lambda: om.grants.delete(grant.id))
    assert (again.status, again.fields) == (409, ["grantId"])
    unknown = refused(lambda: om.grants.delete("01ARZ3NDEKTSV4RRFFQ69G5FAV"))
    assert (unknown.status, unknown.fields) == (404, ["grantId"])
    assert _items(ce.get_grants("gvo", "gvo_tok"))[0].voided_at == voided.voided_at


def test_bad_grants_are_refused_naming_the_field_and_write_nothing(
    om: Client, http: httpx.Client
) -> None:
    """OM-122: a grant on a boolean or static entitlement, a negative amount, a bad
    expiration, min > max rollover, an unknown entitlement: 400 or 404 naming the field,
    and neither the grants nor the pool change."""
    ids = _customer(om, "gbad")
    create = om.customer_entitlement_v2.create_customer_entitlement_grant
    create("gbad", "gbad_tok", m.EntitlementGrantCreateInputV2(amount=10, effective_at=PAST))
    before = (om.grants_v2.list(customer=["gbad"]).total_count, _pool(http, "gbad", ids["metered"]))
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        ("gbad_flag", {}, 400, "entitlementIdOrFeatureKey"),
        (ids["tier"], {}, 400, "entitlementIdOrFeatureKey"),
        ("gbad_tok", {"amount": -1}, 400, "amount"),
        ("gbad_tok", {"expiration": {"duration": "FORTNIGHT", "count": 1}}, 400, "expiration.duration"),
        ("gbad_tok", {"expiration": {"duration": "DAY", "count": 0}}, 400, "expiration.count"),
        ("gbad_tok", {"expiration": {"duration": "DAY", "count": 1}}, 400, "expiration"),  # expired
        ("gbad_tok", {"minRolloverAmount": 5, "maxRolloverAmount": 4}, 400, "minRolloverAmount"),
        ("gbad_tok", {"annotations": {"a": "b"}}, 400, "annotations"),
        ("gbad_nope", {}, 404, "entitlementIdOrFeatureKey"),
    ]  # fmt: skip
    for entitlement, change, status, field in cases:
        body = {"amount": 10, "effectiveAt": "2020-01-01T00:00:00Z", **change}
        problem = refused(lambda e=entitlement, b=body: create("gbad", e, b))  # type: ignore[misc]
        assert (problem.status, problem.fields) == (status, [field]), (entitlement, change)
    after = (om.grants_v2.list(customer=["gbad"]).total_count, _pool(http, "gbad", ids["metered"]))
    assert after == before


def test_listing_grants_across_customers(om: Client) -> None:
    """OM-124, OM-125: `GET /api/v1/grants` (array, or a page with `page`) and
    `GET /api/v2/grants` list every customer's grants, filtered by feature, subject or
    customer; a deleted entitlement's grants carry `deletedAt` and need `includeDeleted`."""
    first, second = _customer(om, "gla"), _customer(om, "glb")
    create = om.customer_entitlement_v2.create_customer_entitlement_grant
    a = create("gla", "gla_tok", m.EntitlementGrantCreateInputV2(amount=1, effective_at=PAST))
    b = create("glb", "glb_tok", m.EntitlementGrantCreateInputV2(amount=2, effective_at=PAST))
    everyone = {g.id for g in om.grants.list(limit=1000)}
    assert {a.id, b.id} <= everyone
    assert [g.id for g in om.grants.list(feature=["gla_tok", "glb_tok"], order_by="createdAt")] == [
        a.id,
        b.id,
    ]
    assert [g.id for g in om.grants.list(subject=["glb-subject"])] == [b.id]
    paged = om.grants.list(
        feature=["gla_tok", "glb_tok"], page=2, page_size=1, order_by="createdAt"
    )
    assert isinstance(paged, m.GrantPaginatedResponse)
    assert (paged.total_count, [g.id for g in _items(paged)]) == (2, [b.id])
    assert [g.id for g in _items(om.grants_v2.list(customer=["gla"]))] == [a.id]
    om.customer_entitlements_v2.delete("glb", second["metered"])
    assert [g.id for g in _items(om.grants_v2.list(customer=["glb"]))] == []
    kept = _items(om.grants_v2.list(customer=["glb"], include_deleted=True))
    assert [g.id for g in kept] == [b.id] and kept[0].deleted_at is not None
    assert first["metered"] == a.entitlement_id


def test_grants_survive_kill_9_and_void_by_id_after(box: dict[str, Server]) -> None:
    """OM-121, OM-128: grants are journalled facts; after `kill -9` they list the same and
    the grant id index is rebuilt, so a void by id finds its customer."""
    om = om_client(box["server"])
    ids = _customer(om, "grs")
    create = om.customer_entitlement_v2.create_customer_entitlement_grant
    grant = create("grs", "grs_tok", m.EntitlementGrantCreateInputV2(amount=7, effective_at=PAST))
    before = json.dumps(
        om.customer_entitlement_v2.get_grants("grs", "grs_tok").as_dict(), default=str
    )
    data_dir = box["server"].data_dir
    box["server"].kill()
    box["server"] = Server(data_dir, shards=box["server"].shards)
    om = om_client(box["server"])
    after = json.dumps(
        om.customer_entitlement_v2.get_grants("grs", "grs_tok").as_dict(), default=str
    )
    assert after == before
    om.grants.delete(grant.id)
    voided = _items(om.customer_entitlement_v2.get_grants("grs", ids["metered"]))[0]
    assert voided.voided_at is not None
