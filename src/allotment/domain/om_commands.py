"""Commands and replies of OpenMeter entitlements and grants (issue 17): what the HTTP layer
sends a customer's actor, and what it gets back. Field names are the domain's; the wire's
spellings are the HTTP layer's business (docs/openmeter.md, "Interface")."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

import msgspec

from allotment.domain.om_state import EntitlementDefinition, EntitlementKind, GrantDefinition

__all__ = (
    "AccessShown",
    "CreateEntitlement",
    "DeleteEntitlement",
    "EntitlementShown",
    "EntitlementValue",
    "GrantShown",
    "IssueGrant",
    "MeasureFrom",
    "OverrideEntitlement",
    "ReadAccess",
    "ReadEntitlementValue",
    "ResetEntitlement",
    "ValueShown",
    "VoidGrant",
)


class MeasureFrom(enum.StrEnum):
    """`measureUsageFrom`'s presets (OM-82); an explicit instant goes in `measure_usage_from`."""

    CURRENT_PERIOD_START = "CURRENT_PERIOD_START"
    NOW = "NOW"


class _OmCommand(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag_field="type"):
    pass


class CreateEntitlement(_OmCommand, tag="om_create_entitlement", frozen=True, kw_only=True):
    """OM-80..OM-82. `usage_period` is `DAY|WEEK|MONTH|YEAR` or an ISO-8601 duration
    (required for metered); `anchor` defaults to now. `config` is static's JSON text."""

    feature_key: str
    kind: EntitlementKind
    usage_period: str | None = None
    anchor: datetime | None = None
    measure_usage_from: datetime | None = None
    measure_preset: MeasureFrom | None = None
    is_soft_limit: bool = False
    issue_after_reset: Decimal | None = None
    issue_after_reset_priority: int = 1
    preserve_overage_at_reset: bool = False
    config: str | None = None
    metadata: dict[str, str] | None = None


class DeleteEntitlement(_OmCommand, tag="om_delete_entitlement", frozen=True, kw_only=True):
    """OM-83: soft deletion, by id or by the feature key of the live entitlement."""

    entitlement: str


class OverrideEntitlement(_OmCommand, tag="om_override_entitlement", frozen=True, kw_only=True):
    """OM-83: delete the live `entitlement` and create `replacement` in one turn."""

    entitlement: str
    replacement: CreateEntitlement


class ResetEntitlement(_OmCommand, tag="om_reset_entitlement", frozen=True, kw_only=True):
    """OM-96: a manual reset. `effective_at` defaults to now and may not be after it;
    `preserve_overage` None means the entitlement's `preserveOverageAtReset`."""

    entitlement: str
    effective_at: datetime | None = None
    retain_anchor: bool = False
    preserve_overage: bool | None = None


class IssueGrant(_OmCommand, tag="om_issue_grant", frozen=True, kw_only=True):
    """OM-84, OM-85. `max_rollover` None means OpenMeter v1's default 0 (v2's is the
    amount: the v2 route passes it). `expiration_duration` is `HOUR|DAY|WEEK|MONTH|YEAR`."""

    entitlement: str
    amount: Decimal
    effective_at: datetime
    priority: int = 1
    expiration_duration: str | None = None
    expiration_count: int | None = None
    min_rollover: Decimal = Decimal(0)
    max_rollover: Decimal | None = None
    recurrence: str | None = None
    recurrence_anchor: datetime | None = None
    metadata: dict[str, str] | None = None


class VoidGrant(_OmCommand, tag="om_void_grant", frozen=True, kw_only=True):
    """OM-89: by the grant's public id (ULID)."""

    grant: str


class ReadEntitlementValue(_OmCommand, tag="om_read_value", frozen=True, kw_only=True):
    """OM-98..OM-100: the value of `entitlement` (id or feature key) at `at`, default now."""

    entitlement: str
    at: datetime | None = None


class ReadAccess(_OmCommand, tag="om_read_access", frozen=True, kw_only=True):
    """OM-101: every live entitlement's value, by feature key, at `at` (default now)."""

    at: datetime | None = None


class EntitlementValue(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """OpenMeter's `EntitlementValue` (OM-98). The metered fields are None for static and
    boolean entitlements; `config` is set for static ones."""

    has_access: bool
    balance: Decimal | None = None
    usage: Decimal | None = None
    overage: Decimal | None = None
    total_available_grant_amount: Decimal | None = None
    config: str | None = None


class EntitlementShown(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag="om_entitlement"):
    """A created (or overriding) entitlement, with its first period when metered."""

    definition: EntitlementDefinition
    current_period: tuple[datetime, datetime] | None = None


class GrantShown(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag="om_grant"):
    grant: GrantDefinition


class ValueShown(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag="om_value"):
    value: EntitlementValue


class AccessShown(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag="om_access"):
    values: dict[str, EntitlementValue]


OpenMeterCommand = (
    CreateEntitlement
    | DeleteEntitlement
    | OverrideEntitlement
    | ResetEntitlement
    | IssueGrant
    | VoidGrant
    | ReadEntitlementValue
    | ReadAccess
)
OpenMeterReply = EntitlementShown | GrantShown | ValueShown | AccessShown
