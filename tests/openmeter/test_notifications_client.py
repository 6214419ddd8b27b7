"""OpenMeter notifications through the official `openmeter` client, unchanged, against a real
allotment server (docs/openmeter.md OM-140..OM-149): channels and rules round trips, refusals
naming the field with nothing changed, and, end to end, a threshold rule whose events reach a
real receiver that verifies them with `standardwebhooks`, once per crossing, a reset
notification, resend, a rule's test, and all of it after kill -9.

One server for the CRUD tests; the end-to-end test runs its own, as it restarts it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import pytest

from openmeter import Client
from openmeter import models as m
from tests.openmeter.subject_ops import as_model, subject_entitlements
from tests.openmeter.subject_ops import entitlement as read
from tests.openmeter.support import om_client, refused
from tests.reliability.server import Server
from tests.waiting import wait_until
from tests.webhooks.receiver import Delivery, Receiver

SECRET = "whsec_" + "S6g2HLnTwd9AhHwUIMFggVS9OfoPafN8"  # the document's example: 24 bytes
PRIVATE = "--allow-private-webhooks"  # the receiver listens on 127.0.0.1
WEBHOOK: Final = m.NotificationChannelType.WEBHOOK
THRESHOLD: Final = m.NotificationEventType.ENTITLEMENTS_BALANCE_THRESHOLD
RESET: Final = m.NotificationEventType.ENTITLEMENTS_RESET


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, server_shards: int) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("om-notify"), PRIVATE, shards=server_shards)
    try:
        yield running
    finally:
        running.kill()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiving = Receiver()
    yield receiving
    receiving.close()


def channel(body: Any) -> Any:
    """A `NotificationChannel` union the client hands back as JSON, read as its model with
    every required field present."""
    return as_model(m.NotificationChannelWebhook, body)


def rule_of(body: Any) -> Any:
    kinds: dict[str, Any] = {"entitlements.balance.threshold": m.NotificationRuleBalanceThreshold,
             "entitlements.reset": m.NotificationRuleEntitlementReset}  # fmt: skip
    return as_model(kinds[body["type"]], body)


def _ids(page: Any) -> list[str]:
    return [item["id"] for item in page.items_property]


def _channel(om: Client, url: str, name: str = "ops", **extra: Any) -> Any:
    return channel(om.notification_channels.create(
        m.NotificationChannelWebhookCreateRequest(type=WEBHOOK, name=name, url=url, **extra)
    ))  # fmt: skip


def _threshold_rule(channel: str, *thresholds: tuple[float, str], **extra: Any) -> Any:
    values = [m.NotificationRuleBalanceThresholdValue(value=v, type=t) for v, t in thresholds]
    return m.NotificationRuleBalanceThresholdCreateRequest(
        type=THRESHOLD, name="usage", channels=[channel],
        thresholds=values, **extra,
    )  # fmt: skip


# -- channels and rules ------------------------------------------------------------------------


def test_om140_channels_round_trip_through_the_client(om: Client, receiver: Receiver) -> None:
    """Create (signing secret and custom headers kept), get, list, update, soft delete."""
    created = _channel(om, receiver.url, "crud", custom_headers={"x-team": "billing"},
                       signing_secret=SECRET, metadata={"a": "b"})  # fmt: skip
    assert (created.type, created.name, created.url) == ("WEBHOOK", "crud", receiver.url)
    assert created.signing_secret == SECRET
    assert created.custom_headers == {"x-team": "billing"}
    assert created.disabled is False
    assert channel(om.notification_channels.get(created.id)).created_at == created.created_at
    assert created.id in _ids(om.notification_channels.list(page_size=1000))
    updated = channel(om.notification_channels.update(created.id, m.NotificationChannelWebhookCreateRequest(
        type=WEBHOOK, name="renamed", url=receiver.url, disabled=True)))  # fmt: skip
    assert (updated.name, updated.disabled, updated.signing_secret) == ("renamed", True, SECRET)
    assert created.id not in _ids(om.notification_channels.list())  # disabled: not by default
    assert created.id in _ids(om.notification_channels.list(include_disabled=True))
    om.notification_channels.delete(created.id)
    assert channel(om.notification_channels.get(created.id)).deleted_at is not None
    assert created.id not in _ids(om.notification_channels.list(include_disabled=True))
    assert created.id in _ids(om.notification_channels.list(include_deleted=True))


def test_om141_rules_round_trip_through_the_client(om: Client, receiver: Receiver) -> None:
    om.features.create(m.FeatureCreateInputs(key="rt_calls", name="Calls"))
    channel = _channel(om, receiver.url, "rules").id
    rule = rule_of(om.notification_rules.create(
        _threshold_rule(channel, (75, "PERCENT"), (10, "balance_value"), features=["rt_calls"])
    ))  # fmt: skip
    assert rule.type == "entitlements.balance.threshold"
    assert [(t.value, t.type) for t in rule.thresholds] == [(75, "PERCENT"), (10, "balance_value")]
    assert [c.id for c in rule.channels] == [channel]
    assert [f.key for f in rule.features] == ["rt_calls"]
    reset = rule_of(om.notification_rules.create(m.NotificationRuleEntitlementResetCreateRequest(
        type=RESET, name="resets", channels=[channel])))  # fmt: skip
    assert rule_of(om.notification_rules.get(reset.id)).type == "entitlements.reset"
    assert _ids(om.notification_rules.list(feature=["rt_calls"])) == [rule.id]
    assert set(_ids(om.notification_rules.list(channel=[channel]))) == {rule.id, reset.id}
    changed = rule_of(om.notification_rules.update(
        rule.id, _threshold_rule(channel, (90, "usage_value"))))  # fmt: skip
    assert [(t.value, t.type) for t in changed.thresholds] == [(90, "usage_value")]
    assert changed.features is None
    om.notification_rules.delete(reset.id)
    assert rule_of(om.notification_rules.get(reset.id)).deleted_at is not None
    assert reset.id not in _ids(om.notification_rules.list())


def test_om141_bad_rules_are_refused_naming_the_field_and_nothing_changes(
    om: Client, receiver: Receiver
) -> None:
    channel = _channel(om, receiver.url, "bad").id
    before = om.notification_rules.list(include_deleted=True, include_disabled=True).total_count
    unknown = "01J2KNP1YTXQRXHTDJ4KPR7PZ9"
    cases = [
        (_threshold_rule(unknown, (1, "NUMBER")), "channels[0]"),
        (_threshold_rule(channel, (-5, "usage_value")), "thresholds[0].value"),
        (_threshold_rule(channel, (1, "NUMBER"), (0, "PERCENT")), "thresholds[1].value"),
        (_threshold_rule(channel, (1, "NUMBER"), features=["no_such_feature"]), "features[0]"),
        (_threshold_rule(channel), "thresholds"),
        ({"type": "entitlements.balance.threshold", "name": "x", "channels": [channel],
          "thresholds": [{"value": 5, "type": "HALF"}]}, "thresholds[0].type"),
        ({"type": "invoice.created", "name": "x", "channels": [channel]}, "type"),
    ]  # fmt: skip
    for body, field in cases:

        def create(body: Any = body) -> Any:
            return om.notification_rules.create(body)

        problem = refused(create)
        assert (problem.status, problem.fields) == (400, [field]), (field, problem.body)
    after = om.notification_rules.list(include_deleted=True, include_disabled=True).total_count
    assert after == before
    problem = refused(lambda: _channel(om, receiver.url, signing_secret="whsec_" + "A" * 31))
    assert (problem.status, problem.fields) == (400, ["signingSecret"])
    problem = refused(lambda: _channel(om, "ftp://example.com/hook"))
    assert (problem.status, problem.fields) == (400, ["url"])
    assert refused(lambda: om.notification_rules.get(unknown)).status == 404
    assert refused(lambda: om.notification_channels.get(unknown)).status == 404
    assert refused(lambda: om.notification_events.get(unknown)).status == 404


# -- end to end --------------------------------------------------------------------------------


def _ingest(om: Client, event_id: str, tokens: int) -> None:
    om.events.ingest_event(m.Event(id=event_id, source="e2e", specversion="1.0", type="e2e.llm",
                                   subject="e2e-subject", data={"tokens": tokens}))  # fmt: skip


def _new_ids(receiver: Receiver, seen: set[str]) -> list[str]:
    """The ids delivered that are not in `seen`, in order of first arrival."""
    return list(dict.fromkeys(d.id for d in receiver.accepted() if d.id not in seen))


def _received(receiver: Receiver, count: int) -> list[Delivery]:
    wait_until(lambda: len(receiver.accepted()) >= count, f"{count} deliveries")
    return receiver.accepted()


def _world(om: Client, receiver: Receiver) -> tuple[str, str, Any]:
    """A SUM meter of `e2e.llm` tokens, its feature, customer `e2e` with subject `e2e-subject`
    and a monthly entitlement of 100 (issueAfterReset); a channel to the receiver and a rule
    at 50 tokens and 80%; and a reset rule."""
    om.meters.create(m.MeterCreate(slug="e2e_tokens", aggregation="SUM", event_type="e2e.llm",
                                   value_property="$.tokens"))  # fmt: skip
    om.features.create(m.FeatureCreateInputs(key="e2e_tokens", name="Tokens",
                                             meter_slug="e2e_tokens"))  # fmt: skip
    om.customers.create(m.CustomerCreate(name="E2E", key="e2e", usage_attribution=m.CustomerUsageAttribution(subject_keys=["e2e-subject"])))  # fmt: skip
    subjects = subject_entitlements(om)
    period = m.RecurringPeriodCreateInput(interval="MONTH",
                                          anchor=datetime(2025, 1, 1, tzinfo=UTC))  # fmt: skip
    ent = read(subjects.post("e2e-subject", m.EntitlementMeteredCreateInputs(
        type=m.EntitlementType.METERED, feature_key="e2e_tokens", usage_period=period,
        issue_after_reset=100)))  # fmt: skip
    channel = _channel(om, receiver.url, "e2e", signing_secret=SECRET,
                       custom_headers={"x-team": "billing"}).id  # fmt: skip
    rule = rule_of(om.notification_rules.create(
        _threshold_rule(channel, (50, "usage_value"), (80, "PERCENT"), features=["e2e_tokens"])
    ))  # fmt: skip
    om.notification_rules.create(m.NotificationRuleEntitlementResetCreateRequest(
        type=RESET, name="resets", channels=[channel]))  # fmt: skip
    return ent.id, rule.id, subjects


def test_om142_to_om149_end_to_end_with_a_verifying_receiver(
    tmp_path: Path, receiver: Receiver
) -> None:
    receiver.secrets = [SECRET]
    server = Server(tmp_path, PRIVATE)
    try:
        om = om_client(server)
        ent, rule, subjects = _world(om, receiver)
        _ingest(om, "t1", 40)
        _ingest(om, "t2", 20)  # 60: past 50
        first = _received(receiver, 1)[0]
        _ingest(om, "t3", 25)  # 85 of 100: past 80%
        second = _received(receiver, 2)[1]
        _ingest(om, "t4", 5)  # past both already: nothing
        for delivery, threshold in ((first, (50, "usage_value")), (second, (80, "PERCENT"))):
            body = delivery.body
            assert delivery.verified_by == (SECRET,)  # the standardwebhooks verifier
            assert delivery.id == body["id"]  # webhook-id is the event id
            assert delivery.headers["x-team"] == "billing"  # the channel's custom header
            assert body["type"] == "entitlements.balance.threshold"
            data = body["data"]
            assert (data["threshold"]["value"], data["threshold"]["type"]) == threshold
            assert data["entitlement"]["id"] == ent
            assert data["feature"]["key"] == "e2e_tokens"
            assert data["subject"]["key"] == "e2e-subject"
            assert data["customer"]["key"] == "e2e"
        assert first.body["data"]["value"]["usage"] == 60
        assert second.body["data"]["value"]["balance"] == 15
        events = om.notification_events.list(rule=[rule]).items_property
        assert [e.id for e in events] == [first.id, second.id]
        shown = om.notification_events.get(first.id)
        assert shown.payload["data"] == first.body["data"]  # as the channel received it
        assert rule_of(shown.rule).id == rule
        wait_until(lambda: om.notification_events.get(first.id).delivery_status[0].state
                   == "SUCCESS", "the delivery recorded")  # fmt: skip
        # a reset notifies; the thresholds may fire again in the new period
        subjects.reset("e2e-subject", ent, m.ResetEntitlementUsageInput())
        reset = _received(receiver, 3)[2]
        assert reset.body["type"] == "entitlements.reset"
        assert reset.body["data"]["value"]["usage"] == 0
        # resend: the same event, id and body again
        om.notification_events.resend(first.id, m.NotificationEventResendRequest())
        again = _received(receiver, 4)[3]
        assert (again.id, again.body) == (first.id, first.body)
        # a rule's test reaches the channel too, annotated
        test = om.notification_rules.test(rule)
        assert test.annotations == {"notification.rule.test": True}
        assert _received(receiver, 5)[4].id == test.id
        assert [d.id for d in receiver.accepted()].count(first.id) == 2  # the resend only
    finally:
        server.kill()
    restarted = Server(tmp_path, PRIVATE)
    try:
        om = om_client(restarted)
        assert rule_of(om.notification_rules.get(rule)).thresholds[0].value == 50
        listed = om.notification_events.list(rule=[rule]).items_property
        assert [e.id for e in listed] == [first.id, second.id, test.id]  # the log survived
        _ingest(om, "t5", 50)  # the new period's 50 (after the reset): fires again
        _ingest(om, "t6", 30)  # and 80%
        # At least once (WHK-D): a message whose delivery the kill -9 cut short before its
        # outcome was recorded (the resend, the test) may arrive again after the restart, under
        # its own id; so the new period's notifications are the ids not seen before the kill.
        before = {d.id for d in _received(receiver, 5)[:5]}
        wait_until(lambda: len(_new_ids(receiver, before)) >= 2, "the new period's two")
        by_id = {d.id: d for d in receiver.accepted()}
        fresh = _new_ids(receiver, before)
        assert [by_id[i].body["data"]["threshold"]["value"] for i in fresh] == [50, 80]
        ids = [d.id for d in receiver.accepted()]
        assert all(ids.count(i) == 1 for i in fresh)  # each new event once
        assert {i for i in ids if ids.count(i) > 1} <= before  # only old ones came again
        assert receiver.unverified == []
    finally:
        restarted.kill()
