"""The JSON of OpenMeter notifications (OM-140..OM-148): channels, rules and events as the
document's `NotificationChannelWebhook`, `NotificationRule*` and `NotificationEvent`, and the
bodies that create and replace channels and rules."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Final, Literal

import msgspec

from allotment.domain.catalog import feature_id
from allotment.domain.om_notify_rules import NotificationRule, ThresholdKind
from allotment.webhooks.ports import ChannelFields, Endpoint, EventLogged, Message

__all__ = (
    "ADMIN",
    "ChannelBody",
    "RuleBody",
    "channel_json",
    "event_json",
    "rule_json",
)

ADMIN: Final = {"scope": "admin"}  # channels are webhook endpoints: managed by admins (WHK-D1)
_ULID: Final = "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$"
_Name = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
_Ulid = Annotated[str, msgspec.Meta(pattern=_ULID)]
_Ref = Annotated[str, msgspec.Meta(min_length=1)]  # a feature's id or key
_Secret = Annotated[str, msgspec.Meta(pattern=r"^(whsec_)?[a-zA-Z0-9+/=]{32,100}$")]


class ChannelBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`NotificationChannelCreateRequest` (create and update alike)."""

    type: Literal["WEBHOOK"]
    name: _Name
    url: Annotated[str, msgspec.Meta(min_length=1)]
    disabled: bool = False
    metadata: dict[str, str] | None = None
    customHeaders: dict[str, str] | None = None
    signingSecret: _Secret | None = None

    def fields(self) -> ChannelFields:
        return ChannelFields(
            name=self.name, url=self.url, disabled=self.disabled,
            custom_headers=self.customHeaders or {}, metadata=self.metadata,
            signing_secret=self.signingSecret,
        )  # fmt: skip


class ThresholdBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    value: Decimal  # the JSON number's own digits: never through a float
    type: ThresholdKind


class RuleBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`NotificationRuleCreateRequest` of the two entitlement types (create and update)."""

    type: str
    name: _Name
    channels: Annotated[list[_Ulid], msgspec.Meta(min_length=1)]
    disabled: bool = False
    metadata: dict[str, str] | None = None
    thresholds: list[ThresholdBody] | None = None
    features: Annotated[list[_Ref], msgspec.Meta(min_length=1)] | None = None


def channel_json(endpoint: Endpoint) -> dict[str, Any]:
    """`NotificationChannelWebhook`. The signing secret is shown, as OpenMeter shows it:
    notification routes are for admin keys only (OM-140)."""
    body: dict[str, Any] = {
        "id": endpoint.id,
        "type": "WEBHOOK",
        "name": endpoint.name,
        "url": endpoint.url,
        "disabled": not endpoint.enabled,
        "createdAt": endpoint.created_at,
        "updatedAt": endpoint.updated_at or endpoint.created_at,
        "signingSecret": endpoint.secret,
    }
    optional = {
        "customHeaders": endpoint.custom_headers or None,
        "metadata": endpoint.metadata,
        "deletedAt": endpoint.deleted_at,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    return body


def rule_json(rule: NotificationRule) -> dict[str, Any]:
    """`NotificationRuleBalanceThreshold` or `NotificationRuleEntitlementReset`: channels as
    `NotificationChannelMeta`, features as `FeatureMeta`."""
    body: dict[str, Any] = {
        "id": rule.id,
        "type": rule.kind.value,
        "name": rule.name,
        "disabled": rule.disabled,
        "channels": [{"id": c, "type": "WEBHOOK"} for c in rule.channels],
        "createdAt": rule.created_at,
        "updatedAt": rule.updated_at,
    }
    if rule.thresholds:
        body["thresholds"] = [{"value": t.value, "type": t.kind.value} for t in rule.thresholds]
    if rule.features:
        body["features"] = [{"id": str(feature_id(k)), "key": k} for k in rule.features]
    if rule.metadata is not None:
        body["metadata"] = rule.metadata
    if rule.deleted_at is not None:
        body["deletedAt"] = rule.deleted_at
    return body


def event_json(
    record: EventLogged, messages: list[Message], rule: dict[str, Any]
) -> dict[str, Any]:
    """`NotificationEvent`: the payload as the channels received it, and the delivery
    status of each channel, from the webhook machinery's own records (OM-146)."""
    event = record.event
    body: dict[str, Any] = {
        "id": event.id,
        "type": event.type,
        "createdAt": event.timestamp,
        "rule": rule,
        "deliveryStatus": [_status(m) for m in messages],
        "payload": {
            "id": event.id,
            "type": event.type,
            "timestamp": event.timestamp,
            "data": event.data,
        },
    }
    if event.about.get("test"):
        body["annotations"] = {"notification.rule.test": True}
    return body


_STATES: Final = {"delivered": "SUCCESS", "failed": "FAILED"}


def _status(message: Message) -> dict[str, Any]:
    """`NotificationEventDeliveryStatus` of one channel."""
    last = message.attempts[-1] if message.attempts else None
    updated: datetime = last.at if last is not None else message.event.timestamp
    body: dict[str, Any] = {
        "state": _state(message),
        "reason": (last.error or f"answered {last.status_code}") if last else "",
        "updatedAt": updated,
        "channel": {"id": message.endpoint, "type": "WEBHOOK"},
        "attempts": [
            {
                "state": "SUCCESS" if a.outcome == "delivered" else "FAILED",
                "timestamp": a.at,
                "response": {"statusCode": a.status_code, "body": "", "durationMs": a.latency_ms}
                if a.status_code
                else {"body": "", "durationMs": a.latency_ms},
            }
            for a in message.attempts
        ],
    }
    if message.status == "pending":
        body["nextAttempt"] = message.due or updated
    return body


def _state(message: Message) -> str:
    if message.status != "pending":
        return _STATES[message.status]
    if message.in_flight:
        return "SENDING"
    settled = any(a.outcome in ("delivered", "failed") for a in message.attempts)
    return "RESENDING" if settled else "PENDING"
