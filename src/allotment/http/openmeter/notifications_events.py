"""Notification events (OM-146..OM-148): `GET /api/v1/notification/events`,
`GET /api/v1/notification/events/{eventId}`, `POST .../{eventId}/resend`, and
`POST /api/v1/notification/rules/{ruleId}/test`. An event is what the webhook machinery
logged for a committed notification (docs/webhooks.md): its payload as the channels received
it, and each channel's delivery status and attempts. Admin keys only."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

import msgspec
from litestar import Response, get, post
from litestar.params import FromPath

from allotment.domain.catalog import Catalog, Feature, feature_id
from allotment.domain.meter_rules import CatalogRefused
from allotment.domain.meters import ulid
from allotment.domain.om_commands import EntitlementValue
from allotment.domain.om_notify_notices import (
    CustomerView,
    EntitlementBalanceThreshold,
    EntitlementResetNotice,
    OmNotice,
)
from allotment.domain.om_notify_rules import NotificationRule, RuleKind
from allotment.domain.om_periods import parse_interval
from allotment.domain.om_state import EntitlementDefinition, EntitlementKind
from allotment.domain.state import CustomerSource, CustomerState, OpenMeterDetails
from allotment.http.auth import api_key_of
from allotment.http.context import AnyRequest, shard_of, system_of
from allotment.http.openmeter.meters import refused as catalog_refused
from allotment.http.openmeter.notifications_channels import answered, refused
from allotment.http.openmeter.notifications_rules import live_rule
from allotment.http.openmeter.notifications_wire import ADMIN, event_json, rule_json
from allotment.http.openmeter.problems import PROBLEMS, not_found
from allotment.http.openmeter.wire import Page, decode, json, order_and_page, rfc3339
from allotment.http.routes.webhook_endpoints import webhooks_of
from allotment.webhooks.om_payloads import notification_payload
from allotment.webhooks.ports import EventLogged, Message, OutboundEvent, WebhookRefused

__all__ = ("get_event", "list_events", "resend_event", "test_rule")

_SORT: Final = {"id": lambda e: e[0].event.id, "createdAt": lambda e: e[0].event.timestamp}


class _Resend(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    channels: list[str] | None = None


@get(
    "/notification/events",
    operation_id="listNotificationEvents",
    opt=ADMIN,
    responses=PROBLEMS,
    summary="List notification events",
)
async def list_events(request: AnyRequest) -> Response[Any]:
    """Events kept (7 days after delivery, WHK-D42), filtered by `from`/`to` (their
    `createdAt`, inclusive), `feature`, `subject`, `rule` and `channel` (any of each); a page
    object ordered by `orderBy` (`id`, `createdAt`)."""
    params = request.query_params
    query = dict(params)
    start = rfc3339("from", query["from"]) if "from" in query else None
    end = rfc3339("to", query["to"]) if "to" in query else None
    wanted = {name: set(params.getall(name, [])) for name in ("feature", "subject", "rule")}
    channels = set(params.getall("channel", []))
    found = [
        (record, messages)
        for record, messages in await _webhooks_events(request)
        if (start is None or record.event.timestamp >= start)
        and (end is None or record.event.timestamp <= end)
        and all(not v or record.event.about.get(k) in v for k, v in wanted.items())
        and (not channels or channels & set(record.endpoints))
    ]
    page, number, size = order_and_page(found, _SORT, query, "createdAt")
    catalog = shard_of(request).catalog
    items = [_json(catalog, r, m) for r, m in page]
    return json(Page(totalCount=len(found), page=number, pageSize=size, items=items))


@get(
    "/notification/events/{event_id:str}",
    operation_id="getNotificationEvent",
    opt=ADMIN,
    responses=PROBLEMS,
    summary="Get a notification event",
)
async def get_event(request: AnyRequest, event_id: FromPath[str]) -> Response[Any]:
    environment = api_key_of(request.scope).environment
    try:
        record, messages = await webhooks_of(request).notification_event(environment, event_id)
    except WebhookRefused as error:
        raise refused(error) from None
    return json(_json(shard_of(request).catalog, record, messages))


@post(
    "/notification/events/{event_id:str}/resend",
    operation_id="resendNotificationEvent",
    opt=ADMIN,
    responses=PROBLEMS,
    status_code=202,
    summary="Re-send a notification event",
)
async def resend_event(request: AnyRequest, event_id: FromPath[str]) -> None:
    """The same event (id, payload, signature scheme) again, to `channels` or every channel
    it went to, on a fresh retry schedule (OM-148)."""
    raw = await request.body()
    body = decode(raw, _Resend) if raw.strip() else _Resend()
    environment = api_key_of(request.scope).environment
    await answered(webhooks_of(request).resend_notification(environment, event_id, body.channels))


@post(
    "/notification/rules/{rule_id:str}/test",
    operation_id="testNotificationRule",
    opt=ADMIN,
    responses=PROBLEMS,
    status_code=201,
    summary="Test a notification rule",
)
async def test_rule(request: AnyRequest, rule_id: FromPath[str]) -> Response[Any]:
    """A test event of the rule's type, with made-up data, sent to its channels like any
    event and answered as one (annotated `notification.rule.test`, OM-147)."""
    catalog = shard_of(request).catalog
    try:
        rule = live_rule(catalog, rule_id)
    except CatalogRefused as error:
        raise catalog_refused(error) from None
    now = system_of(request).clock.now()
    event = _test_event(rule, catalog, now)
    environment = api_key_of(request.scope).environment
    webhooks = webhooks_of(request)
    await webhooks.send_rule_test(environment, event)
    record, messages = await webhooks.notification_event(environment, event.id)
    return json(_json(catalog, record, messages), 201)


async def _webhooks_events(request: AnyRequest) -> list[tuple[EventLogged, list[Message]]]:
    environment = api_key_of(request.scope).environment
    return await webhooks_of(request).notification_events(environment)


def _json(catalog: Catalog, record: EventLogged, messages: list[Message]) -> dict[str, Any]:
    rule = catalog.notification_rules.get(record.event.about["rule"])
    if rule is None:  # an event outlives nothing it names: rules are never removed
        raise not_found("notification rule", record.event.about["rule"])
    return event_json(record, messages, rule_json(rule))


def _test_event(rule: NotificationRule, catalog: Catalog, now: datetime) -> OutboundEvent:
    """Made-up data of the rule's type: the rule's first feature (else a `test` one), a
    monthly entitlement with 100 granted and 80 used, customer and subject `test`."""
    key = rule.features[0] if rule.features else "test"
    feature = catalog.features.get(key) or Feature(id=feature_id(key), key=key, name=key)
    definition = EntitlementDefinition(
        id=ulid(now, uuid.uuid4()), feature_key=key, kind=EntitlementKind.METERED,
        created_at=now, interval=parse_interval("MONTH"), anchor=now,
    )  # fmt: skip
    details = OpenMeterDetails(name="test", subject_keys=("test",))
    value = EntitlementValue(
        has_access=True, balance=Decimal(20), usage=Decimal(80), overage=Decimal(0),
        total_available_grant_amount=Decimal(100),
    )  # fmt: skip
    notice: OmNotice = EntitlementResetNotice(
        rule_id=rule.id, channels=rule.channels, entitlement=definition, period_start=now,
        period_end=None, anchor=now, last_reset=now, feature=feature, value=value,
        customer=CustomerView(created_at=now, modified_at=now, details=details),
    )  # fmt: skip
    if rule.kind is RuleKind.BALANCE_THRESHOLD:
        notice = EntitlementBalanceThreshold(
            **msgspec.structs.asdict(notice), threshold=rule.thresholds[0]
        )
    state = CustomerState(
        id=uuid.uuid4(), external_id="test", source=CustomerSource.API, created_at=now,
        modified_at=now, openmeter=details,
    )  # fmt: skip
    return OutboundEvent(
        id=ulid(now, uuid.uuid4()), type=rule.kind.value, timestamp=now,
        data=notification_payload(state, notice, now), endpoints=rule.channels,
        about={"rule": rule.id, "feature": key, "subject": "test", "test": "true"},
    )  # fmt: skip
