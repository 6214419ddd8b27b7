"""The JSON of OpenMeter entitlements (OM-110..OM-114): the document's `Entitlement` (v1,
with `subjectKey`) and `EntitlementV2` (with `customerId`, `customerKey`) of the three types,
and the create and reset bodies decoded into the domain's commands (om_commands.py).

`entitlement_json(state, ent, now, v2=...)` is what every route showing an entitlement
answers with (grants, values, notifications' payloads use it too)."""

from __future__ import annotations

import json as stdjson
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Final, Literal

import msgspec

from allotment.domain.catalog import Catalog
from allotment.domain.catalog import feature_id as catalog_feature_id
from allotment.domain.om_commands import CreateEntitlement, MeasureFrom, ResetEntitlement
from allotment.domain.om_periods import INTERVAL_ENUM, period_containing
from allotment.domain.om_state import EntitlementKind, OmEntitlement, current_period
from allotment.domain.state import CustomerState
from allotment.http.openmeter.problems import FieldError, Problem, bad_request
from allotment.http.openmeter.wire import rfc3339

__all__ = (
    "EntitlementCreate",
    "ResetBody",
    "create_command",
    "entitlement_json",
    "reset_command",
    "subject_key_of",
)

_ENUM_OF: Final = {iso: name for name, iso in INTERVAL_ENUM.items()}
_At = Annotated[datetime, msgspec.Meta(tz=True)]
_Priority = Annotated[int, msgspec.Meta(ge=1, le=255)]


def subject_key_of(state: CustomerState) -> str:
    """v1's `subjectKey` of a customer: its first subject key, else its key, else its id."""
    details = state.openmeter
    if details is not None and details.subject_keys:
        return details.subject_keys[0]
    return state.external_id or str(state.id)


def entitlement_json(
    state: CustomerState, ent: OmEntitlement, now: datetime, *, v2: bool = False
) -> dict[str, Any]:
    """The document's entitlement (OM-110): v1's names its subject, v2's its customer."""
    definition = ent.definition
    changed = ent.deleted_at or definition.created_at
    body: dict[str, Any] = {
        "id": definition.id,
        "type": definition.kind.value,
        "featureKey": definition.feature_key,
        "featureId": str(catalog_feature_id(definition.feature_key)),
        "createdAt": definition.created_at,
        "updatedAt": changed,
        "activeFrom": definition.created_at,
    }
    if v2:
        body["customerId"] = str(state.id)
        if state.external_id is not None:
            body["customerKey"] = state.external_id
    else:
        body["subjectKey"] = subject_key_of(state)
    if ent.deleted_at is not None:
        body["deletedAt"] = ent.deleted_at
    if definition.metadata is not None:
        body["metadata"] = definition.metadata
    if definition.kind is EntitlementKind.STATIC:
        body["config"] = definition.config
    if ent.metered:
        body.update(_metered(ent, now, v2))
    return body


def _metered(ent: OmEntitlement, now: datetime, v2: bool) -> dict[str, Any]:
    """OM-111: the usage period (`interval` as the enum when it is one, `intervalISO`
    always), the current period and the last reset at `now`."""
    definition = ent.definition
    interval, anchor = definition.interval, ent.anchor
    period = current_period(ent)
    assert interval is not None
    assert anchor is not None
    assert period is not None
    last_reset = ent.last_reset or period[0]
    if period[1] <= now and ent.live:  # a due reset not applied yet (a listing: no catch-up)
        period = period_containing(anchor, interval, now)
        last_reset = period[0]
    body: dict[str, Any] = {
        "isSoftLimit": definition.is_soft_limit,
        "preserveOverageAtReset": definition.preserve_overage_at_reset,
        "lastReset": last_reset,
        "currentUsagePeriod": {"from": period[0], "to": period[1]},
        "measureUsageFrom": definition.measure_usage_from,
        "usagePeriod": {
            "interval": _ENUM_OF.get(interval.iso, interval.iso),
            "intervalISO": interval.iso,
            "anchor": anchor,
        },
    }
    if not v2:
        body["isUnlimited"] = False
    if definition.issue_after_reset is not None:
        body["issueAfterReset"] = definition.issue_after_reset
        body["issueAfterResetPriority"] = definition.issue_after_reset_priority
        if v2:
            body["issue"] = {
                "amount": definition.issue_after_reset,
                "priority": definition.issue_after_reset_priority,
            }
    return body


# -- bodies ------------------------------------------------------------------------------------


class _UsagePeriod(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    interval: str
    anchor: _At | None = None


class _Issue(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    amount: Decimal
    priority: _Priority = 1


class EntitlementCreate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The create inputs of the three types, v1 and v2 (`EntitlementCreateInputs`,
    `EntitlementV2CreateInputs`): one struct, as the fields a type does not take are
    refused by name (`create_command`)."""

    type: Literal["metered", "static", "boolean"]
    featureKey: str | None = None
    featureId: str | None = None
    metadata: dict[str, str] | None = None
    usagePeriod: _UsagePeriod | None = None
    isSoftLimit: bool | None = None
    isUnlimited: bool | None = None  # deprecated, ignored by OpenMeter itself
    measureUsageFrom: str | None = None
    issueAfterReset: Decimal | None = None  # >= 0: the domain says so (OM-85)
    issueAfterResetPriority: _Priority | None = None
    preserveOverageAtReset: bool | None = None
    issue: _Issue | None = None  # v2
    grants: list[Any] | None = None  # v2
    config: str | None = None


_METERED_ONLY: Final = (
    "usagePeriod",
    "isSoftLimit",
    "measureUsageFrom",
    "issueAfterReset",
    "issueAfterResetPriority",
    "preserveOverageAtReset",
    "issue",
)


def create_command(body: EntitlementCreate, catalog: Catalog) -> CreateEntitlement:
    """OM-112: the body as the domain's command, or a 400/404 naming the field."""
    kind = EntitlementKind(body.type)
    if body.grants:
        raise bad_request("grants", "not supported yet: issue grants through the grants path")
    if kind is not EntitlementKind.METERED:
        for name in _METERED_ONLY:
            if getattr(body, name) is not None:
                raise bad_request(name, f"a {kind.value} entitlement takes none")
    if kind is EntitlementKind.STATIC:
        _check_config(body.config)
    elif body.config is not None:
        raise bad_request("config", "only static entitlements have one")
    if body.issue is not None and body.issueAfterReset is not None:
        raise bad_request("issue", "give issue or issueAfterReset, not both")
    if body.issue is not None and body.issue.amount < 0:
        raise bad_request("issue.amount", "must not be negative")
    issue_amount = body.issue.amount if body.issue else body.issueAfterReset
    priority = body.issue.priority if body.issue else body.issueAfterResetPriority
    measure, preset = _measure_from(body.measureUsageFrom)
    return CreateEntitlement(
        feature_key=_feature_key(body, catalog),
        kind=kind,
        usage_period=body.usagePeriod.interval if body.usagePeriod else None,
        anchor=body.usagePeriod.anchor if body.usagePeriod else None,
        measure_usage_from=measure,
        measure_preset=preset,
        is_soft_limit=bool(body.isSoftLimit),
        issue_after_reset=issue_amount,
        issue_after_reset_priority=priority or 1,
        preserve_overage_at_reset=bool(body.preserveOverageAtReset),
        config=body.config,
        metadata=body.metadata,
    )


def _feature_key(body: EntitlementCreate, catalog: Catalog) -> str:
    """`featureKey`, or the key of the catalog feature whose id is `featureId`."""
    if body.featureKey is not None:
        if body.featureId is not None and body.featureId != str(
            catalog_feature_id(body.featureKey)
        ):
            raise bad_request("featureId", "names another feature than featureKey")
        return body.featureKey
    if body.featureId is None:
        raise bad_request("featureKey", "featureKey or featureId is required")
    for feature in catalog.features.values():
        if str(feature.id) == body.featureId and feature.archived_at is None:
            return feature.key
    raise Problem(404, "featureId: no such feature", (FieldError("featureId", "no such feature"),))


def _check_config(config: str | None) -> None:
    """OM-113: static `config` is a JSON object, kept as the text it came as."""
    if config is None:
        raise bad_request("config", "static entitlements need one")
    try:
        parsed = stdjson.loads(config, parse_float=Decimal)
    except ValueError:
        raise bad_request("config", "not JSON") from None
    if not isinstance(parsed, dict):
        raise bad_request("config", "must be a JSON object")


def _measure_from(raw: str | None) -> tuple[datetime | None, MeasureFrom | None]:
    if raw is None:
        return None, None
    if raw in MeasureFrom.__members__:
        return None, MeasureFrom(raw)
    return rfc3339("measureUsageFrom", raw), None


class ResetBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`ResetEntitlementUsageInput`."""

    effectiveAt: _At | None = None
    retainAnchor: bool | None = None
    preserveOverage: bool | None = None


def reset_command(entitlement: str, body: ResetBody) -> ResetEntitlement:
    """OM-116: `preserveOverage` absent means the entitlement's own setting."""
    return ResetEntitlement(
        entitlement=entitlement,
        effective_at=body.effectiveAt,
        retain_anchor=bool(body.retainAnchor),
        preserve_overage=body.preserveOverage,
    )
