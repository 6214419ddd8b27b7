"""OpenMeter notifications on the wire (OM-144): a `NotificationRaised` fact whose notice is an
`EntitlementBalanceThreshold` or `EntitlementResetNotice`, rendered as the document's
`NotificationEvent` payload, `{id, type, timestamp, data}`, addressed to the rule's channels.

The id is a ULID derived from the fact (its instant and its notification id), so it is the
same on every retry, resend, restart and replay; it is also the `webhook-id`. Everything in
`data` comes from the notice, never from the state at rendering time.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from allotment.domain.catalog import Catalog
from allotment.domain.meters import ulid
from allotment.domain.om_commands import EntitlementValue
from allotment.domain.om_notify_notices import (
    CustomerView,
    EntitlementBalanceThreshold,
    OmNotice,
)
from allotment.domain.om_notify_rules import RuleKind, Threshold
from allotment.domain.om_state import OmEntitlement
from allotment.domain.state import CustomerSource, CustomerState
from allotment.http.openmeter.customers import customer_json
from allotment.http.openmeter.entitlement_wire import entitlement_json, subject_key_of
from allotment.http.openmeter.features import feature_json
from allotment.webhooks.outbound import OutboundEvent

__all__ = ("notification_payload", "om_event", "threshold_json", "value_json")

_NO_CATALOG = Catalog(features={}, credit_models={}, plans={})  # customer_json reads none


def om_event(
    customer_id: uuid.UUID,
    external_id: str | None,
    at: datetime,
    notification_id: uuid.UUID,
    notice: OmNotice,
) -> OutboundEvent:
    """The event one OpenMeter notice becomes: addressed to its channels."""
    event_id = ulid(at, notification_id)
    kind = (
        RuleKind.BALANCE_THRESHOLD
        if isinstance(notice, EntitlementBalanceThreshold)
        else RuleKind.RESET
    )
    state = _customer(customer_id, external_id, notice.customer)
    data = notification_payload(state, notice, at)
    return OutboundEvent(
        id=event_id, type=kind.value, timestamp=at, data=data, endpoints=notice.channels,
        about={"rule": notice.rule_id, "feature": notice.feature.key,
               "subject": data["subject"]["key"]},
    )  # fmt: skip


def notification_payload(state: CustomerState, notice: OmNotice, at: datetime) -> dict[str, Any]:
    """The payload's `data`: entitlement, feature, subject, customer, value (and threshold)."""
    ent = OmEntitlement(
        definition=notice.entitlement,
        period_start=notice.period_start,
        anchor=notice.anchor,
        last_reset=notice.last_reset,
    )
    customer = customer_json(state, _NO_CATALOG, at)
    subject = subject_key_of(state)
    data: dict[str, Any] = {
        "entitlement": entitlement_json(state, ent, at),
        "feature": feature_json(notice.feature),
        "subject": {"id": subject, "key": subject, "displayName": customer["name"]},
        "customer": customer,
        "value": value_json(notice.value),
    }
    if isinstance(notice, EntitlementBalanceThreshold):
        data["threshold"] = threshold_json(notice.threshold)
    # Numbers stay Decimals: the document's are JSON numbers, written with their own digits
    rendered: dict[str, Any] = msgspec.to_builtins(data, builtin_types=(Decimal,))
    return rendered


def value_json(value: EntitlementValue) -> dict[str, Any]:
    """The document's `EntitlementValue`; absent fields left out."""
    fields = {
        "hasAccess": value.has_access,
        "balance": value.balance,
        "usage": value.usage,
        "overage": value.overage,
        "totalAvailableGrantAmount": value.total_available_grant_amount,
        "config": value.config,
    }
    return {k: v for k, v in fields.items() if v is not None}


def threshold_json(threshold: Threshold) -> dict[str, Any]:
    """`{value, type}`, the type as the rule was written (NUMBER stays NUMBER)."""
    return {"value": threshold.value, "type": threshold.kind.value}


def _customer(customer_id: uuid.UUID, external_id: str | None, view: CustomerView) -> CustomerState:
    """The customer as the notice saw it, for the wire helpers that read one."""
    return CustomerState(
        id=customer_id, external_id=external_id, source=CustomerSource.API,
        created_at=view.created_at, modified_at=view.modified_at, profile=view.profile,
        openmeter=view.details,
    )  # fmt: skip
