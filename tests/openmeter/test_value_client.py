"""The official `openmeter` client, unchanged, against a real allotment server (manual clock):
the entitlement value on every path, customer access, the history, and the race of issue 17
(docs/openmeter.md OM-130..OM-139). Customers and entitlements are made through the client;
usage arrives as Tanso events over HTTP (OM-90 counts them). The deprecated subject value and
history operations are the client's own, from the class its `subjects` attribute hides
(tests/openmeter/subject_ops.py).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from openmeter import Client
from openmeter import models as m
from tests.openmeter.subject_ops import entitlement as read
from tests.openmeter.support import A, C, refused, tanso
from tests.reliability.server import Server

RACE_GRANTED = 50  # for 64 events of one unit
NEW_YORK = ZoneInfo("America/New_York")
DST_DAY = datetime(2027, 3, 14, tzinfo=NEW_YORK)  # US clocks spring forward at 02:00
V1 = "/api/v1/customers"


class World:
    """Entitlement ids by customer."""

    ids: dict[str, str]

    def __init__(self) -> None:
        self.ids = {}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("om-value"), "--clock", "manual")
    try:
        yield running
    finally:
        running.kill()


def _metered(amount: int) -> m.EntitlementMeteredCreateInputs:
    """A hard monthly entitlement to api_calls whose grant comes back whole at every reset
    (`issueAfterReset`): the tests move the clock across some."""
    period = m.RecurringPeriodCreateInput(interval="MONTH")
    return m.EntitlementMeteredCreateInputs(type=m.EntitlementType.METERED,
                                            feature_key="api_calls", usage_period=period,
                                            issue_after_reset=amount)  # fmt: skip


@pytest.fixture(scope="module")
def world(om: Client, subjects: Any) -> World:
    """Customers omv (100 granted, and sso, storage_gb), race (50) and dst (1000), each with
    the subject `<key>-subject`, through the client."""
    made = World()
    for ref, amount in (("omv", 100), ("race", RACE_GRANTED), ("dst", 1000)):
        attribution = m.CustomerUsageAttribution(subject_keys=[f"{ref}-subject"])
        om.customers.create(m.CustomerCreate(name=ref, key=ref, usage_attribution=attribution))
        made.ids[ref] = read(subjects.post(f"{ref}-subject", _metered(amount))).id
    read(subjects.post("omv-subject", m.EntitlementBooleanCreateInputs(
        type=m.EntitlementType.BOOLEAN, feature_key="sso")))  # fmt: skip
    read(subjects.post("omv-subject", m.EntitlementStaticCreateInputs(
        type=m.EntitlementType.STATIC, feature_key="storage_gb", config='{"tier": "gold"}')))  # fmt: skip
    return made


_KEYS = itertools.count()


def _use(http: httpx.Client, ref: str, units: int = 1) -> None:
    body = {"eventName": "call", "customerReferenceId": ref, "featureKey": "api_calls",
            "usageUnits": units, "eventIdempotencyKey": f"{ref}-{next(_KEYS)}"}  # fmt: skip
    answer = http.post(f"{C}/events", json=body)
    assert answer.status_code in (200, 201), answer.text


def _value(om: Client, ref: str, at: datetime | None = None) -> dict[str, Any]:
    return dict(om.customer_entitlement.get_customer_entitlement_value(ref, "api_calls", time=at))


def _clock(http: httpx.Client) -> datetime:
    answer = http.get(f"{A}/clock")
    assert answer.status_code == 200, answer.text
    return datetime.fromisoformat(answer.json()["data"]["now"])


def _advance(http: httpx.Client, **body: Any) -> None:
    answer = http.post(f"{A}/clock/advance", json=body)
    assert answer.status_code == 200, answer.text


# -- the value on every path (OM-130, OM-132) --------------------------------------------------


def test_om130_om132_the_value_on_every_path(
    om: Client, http: httpx.Client, subjects: Any, world: World
) -> None:
    _use(http, "omv", 40)
    metered = _value(om, "omv")
    assert metered == {"hasAccess": True, "balance": 60, "usage": 40, "overage": 0,
                       "totalAvailableGrantAmount": 100}  # fmt: skip
    v2 = om.customer_entitlement_v2.get_customer_entitlement_value
    assert dict(v2("omv", "api_calls")) == metered == dict(v2("omv", world.ids["omv"]))
    assert dict(subjects.get_entitlement_value("omv-subject", "api_calls")) == metered
    static = om.customer_entitlement.get_customer_entitlement_value("omv", "storage_gb")
    assert dict(static) == {"hasAccess": True, "config": '{"tier": "gold"}'}
    assert dict(v2("omv", "sso")) == {"hasAccess": True}
    customer_id = om.customers.get("omv").id
    assert dict(v2(customer_id, "api_calls")) == metered  # OM-107: the id or the key


def test_om130_unknown_names_are_problems(om: Client, subjects: Any, world: World) -> None:
    """404 naming the path field for an unknown customer, subject or entitlement; 400 for a
    feature key off the document's pattern or a `time` that is not RFC 3339."""
    value = om.customer_entitlement.get_customer_entitlement_value
    assert refused(lambda: value("nobody", "api_calls")).fields == ["customerIdOrKey"]
    assert refused(lambda: value("omv", "projects")).fields == ["featureKey"]
    assert refused(lambda: value("omv", "Api-Calls")).fields == ["featureKey"]
    v2 = om.customer_entitlement_v2.get_customer_entitlement_value
    assert refused(lambda: v2("omv", "01J00000000000000000000000")).status == 404
    missing = refused(lambda: subjects.get_entitlement_value("nobody", "api_calls"))
    assert (missing.status, missing.fields) == (404, ["subjectIdOrKey"])
    bad = refused(lambda: subjects.get_entitlement_value("omv", "api_calls", params={"time": "x"}))
    assert (bad.status, bad.fields) == (400, ["time"])


# -- exact at the instant (OM-131) and at a past instant (OM-133) -------------------------------


def test_om131_the_value_is_exact_right_after_an_acknowledged_event(
    om: Client, http: httpx.Client, world: World
) -> None:
    """No waiting: the read is a turn after the event's, so it sees it."""
    before = _value(om, "omv")["usage"]
    for n in range(1, 6):
        _use(http, "omv")
        assert _value(om, "omv")["usage"] == before + n


def test_om133_a_past_instant_answers_what_it_answered_then(
    om: Client, http: httpx.Client, world: World
) -> None:
    then = _clock(http)
    answered = _value(om, "omv")
    _advance(http, seconds=60)
    _use(http, "omv", 7)
    now = _value(om, "omv")
    assert now["usage"] == answered["usage"] + 7
    assert _value(om, "omv", then) == answered
    assert _value(om, "omv", then + timedelta(seconds=59)) == answered
    assert _value(om, "omv", then + timedelta(seconds=60)) == now
    v2 = om.customer_entitlement_v2.get_customer_entitlement_value
    assert dict(v2("omv", "api_calls", time=then)) == answered


# -- access (OM-134) ---------------------------------------------------------------------------


def test_om134_access_is_every_feature_s_value_at_one_instant(om: Client, world: World) -> None:
    access = om.customer.get_customer_access("omv")["entitlements"]
    assert set(access) == {"api_calls", "sso", "storage_gb"}
    value = om.customer_entitlement.get_customer_entitlement_value
    for feature, shown in access.items():
        assert dict(shown) == dict(value("omv", feature))
    assert refused(lambda: om.customer.get_customer_access("nobody")).status == 404


# -- the race (OM-139) -------------------------------------------------------------------------


def test_om139_access_flips_exactly_when_the_balance_reaches_zero(
    server: Server, world: World
) -> None:
    """64 concurrent events of one unit against a hard entitlement granted 50, with value
    reads interleaved (16 threads, customer v1 and v2 paths). Every answer is the actor's
    state at its turn: `hasAccess` is true exactly while the balance is above 0, the balance
    is the grants less the usage (never late: an answer whose request began after an event
    was acknowledged counts it), and after the last event access is off, 64 >= 50."""
    granted = RACE_GRANTED
    local = threading.local()

    def client() -> httpx.Client:
        if not hasattr(local, "http"):
            local.http = tanso(server)
        http: httpx.Client = local.http
        return http

    start = client().get(f"{V1}/race/entitlements/api_calls/value").json()["usage"]
    acked: list[float] = []
    reads: list[tuple[float, dict[str, Any]]] = []

    def event(n: int) -> None:
        _use(client(), "race")
        acked.append(time.perf_counter())

    def read(n: int) -> None:
        path = f"{V1}/race" if n % 4 == 1 else "/api/v2/customers/race"
        began = time.perf_counter()
        answer = client().get(f"{path}/entitlements/api_calls/value")
        assert answer.status_code == 200, answer.text
        reads.append((began, answer.json()))

    with ThreadPoolExecutor(16) as pool:
        for done in [pool.submit(event if n % 2 == 0 else read, n) for n in range(128)]:
            done.result()
    for began, value in reads:
        used = value["usage"] - start
        assert sum(1 for at in acked if at < began) <= used <= 64
        assert value["balance"] == max(granted - used, 0)
        assert value["hasAccess"] is (granted - used > 0), value
    final = client().get(f"{V1}/race/entitlements/api_calls/value").json()
    assert final["usage"] - start == 64 and final["balance"] == 0
    assert final["hasAccess"] is False and final["overage"] == 64 - granted


# -- history (OM-135..OM-137) ------------------------------------------------------------------


def _subject_history(subjects: Any, world: World, **params: Any) -> Any:
    return subjects.get_entitlement_history("dst-subject", world.ids["dst"], **params)


def test_om135_om137_history_across_a_dst_change(
    om: Client, http: httpx.Client, subjects: Any, world: World
) -> None:
    """DAY windows of America/New_York across the spring-forward of 14 March 2027 (23
    hours); usage and opening balances per window, and burn-down segments whose usage adds up
    to the range's, on the v2 path and the deprecated subject path alike."""
    first = DST_DAY - timedelta(days=1)
    _advance(http, to=(first + timedelta(hours=12)).astimezone(UTC).isoformat())
    for _ in range(3):
        _use(http, "dst", 5)
        _advance(http, seconds=86400)
    end = DST_DAY + timedelta(days=2)
    history = om.customer_entitlement_v2.get_customer_entitlement_history(
        "dst", "api_calls", window_size="DAY", window_time_zone="America/New_York",
        from_parameter=first, to=end,
    )  # fmt: skip
    windows = history["windowedHistory"]
    spans = [(_at(w["period"]["to"]) - _at(w["period"]["from"])) / timedelta(hours=1)
             for w in windows]  # fmt: skip
    assert spans == [24, 23, 24]
    assert [w["usage"] for w in windows] == [5, 5, 5]
    assert [w["balanceAtStart"] for w in windows] == [1000, 995, 990]
    segments = history["burndownHistory"]
    assert sum(s["usage"] for s in segments) == 15
    grant = next(iter(segments[0]["grantBalancesAtStart"]))  # the issueAfterReset grant
    assert (
        sum(u["usage"] for s in segments for u in s["grantUsages"] if u["grantId"] == grant) == 15
    )
    assert segments[-1]["balanceAtEnd"] == 985 and segments[-1]["grantBalancesAtEnd"] == {
        grant: 985
    }
    assert _at(segments[0]["period"]["from"]) == first and _at(segments[-1]["period"]["to"]) == end
    by_subject = _subject_history(subjects, world, window_size="DAY", from_parameter=first,
                                  to=end, window_time_zone="America/New_York")  # fmt: skip
    assert dict(by_subject) == dict(history)
    hours = om.customer_entitlement_v2.get_customer_entitlement_history(
        "dst", "api_calls", window_size="HOUR", from_parameter=first, to=end
    )
    assert [w["usage"] for w in hours["windowedHistory"]] == [5, 5, 5]


def test_om135_bad_history_parameters_are_problems(om: Client, subjects: Any, world: World) -> None:
    for params, field in (
        ({"window_size": "WEEK"}, "windowSize"),
        ({"window_size": "DAY", "window_time_zone": "Mars/Olympus"}, "windowTimeZone"),
        ({"window_size": "DAY", "from_parameter": DST_DAY, "to": DST_DAY - timedelta(days=1)},
         "from"),
    ):  # fmt: skip
        answer = refused(partial(_subject_history, subjects, world, **params))
        assert (answer.status, answer.fields) == (400, [field])
    history = om.customer_entitlement_v2.get_customer_entitlement_history
    boolean = refused(lambda: history("omv", "sso", window_size="DAY"))
    assert (boolean.status, boolean.fields) == (400, ["entitlementIdOrFeatureKey"])
    assert refused(lambda: history("omv", "projects", window_size="DAY")).status == 404


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)
