"""OpenMeter entitlements and grants of one customer (issue 17, OM-80..OM-119): the state.

An entitlement's frozen `EntitlementDefinition` never changes (OpenMeter's entitlements are
immutable; override replaces one whole, OM-83). A metered entitlement's grants are credit
grants of its own credit pool, `pool_denomination(id)` in `CustomerState.pools`: burn-down,
expiry and the ledger are the credit machinery's (OM-84, OM-86). The entitlement adds what the
pool does not know: the usage period, usage and overage counters, the grants' definitions
(rollover bounds survive a grant spent to zero), and the `log` that `om_value.value_at`
replays to answer for a past instant (OM-100).
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Final

import msgspec

from allotment.domain.money import ZERO
from allotment.domain.om_periods import Interval, period_containing

__all__ = (
    "POOL_PREFIX",
    "ActivationMark",
    "EntitlementDefinition",
    "EntitlementKind",
    "GrantDefinition",
    "LogMark",
    "OmEntitlement",
    "RecurMark",
    "ResetMark",
    "UsageMark",
    "VoidMark",
    "current_period",
    "pool_denomination",
)

POOL_PREFIX: Final = "om:"


def pool_denomination(entitlement_id: str) -> str:
    """The credit pool holding a metered entitlement's grants (OM-86). The prefix keeps it
    apart from every catalog denomination; Tanso's grant command refuses it (OM-87)."""
    return POOL_PREFIX + entitlement_id


class EntitlementKind(enum.StrEnum):
    METERED = "metered"
    STATIC = "static"
    BOOLEAN = "boolean"


class EntitlementDefinition(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """What an entitlement was created with, resolved (OM-80..OM-82): `anchor` and
    `measure_usage_from` are instants, `interval` is parsed. Static `config` is kept as the
    JSON text it came as (opaque to the domain)."""

    id: str  # a ULID, as OpenMeter's ids are
    feature_key: str
    kind: EntitlementKind
    created_at: datetime
    interval: Interval | None = None
    anchor: datetime | None = None
    measure_usage_from: datetime | None = None
    is_soft_limit: bool = False
    issue_after_reset: Decimal | None = None
    issue_after_reset_priority: int = 1
    preserve_overage_at_reset: bool = False
    config: str | None = None
    metadata: dict[str, str] | None = None


class GrantDefinition(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """One OpenMeter grant (OM-84, OM-85). `id` is its credit grant's id in the pool;
    `public_id` its ULID on the wire. `active` once its credits are in the pool (at
    `effective_at`, or when issued if that is later); `voided_at` once voided (OM-89)."""

    id: uuid.UUID
    public_id: str
    entitlement_id: str
    amount: Decimal
    priority: int
    effective_at: datetime
    created_at: datetime
    expires_at: datetime | None = None
    expiration_duration: str | None = None
    expiration_count: int | None = None
    min_rollover: Decimal = ZERO
    max_rollover: Decimal = ZERO
    recurrence: Interval | None = None
    recurrence_anchor: datetime | None = None
    metadata: dict[str, str] | None = None
    active: bool = False
    activated_at: datetime | None = None  # its pool grant's `granted_at` (burn order)
    next_recurrence: datetime | None = None  # OM-85: when it is next re-issued, if it recurs
    voided_at: datetime | None = None


class UsageMark(msgspec.Struct, frozen=True, gc=False, array_like=True, tag="u"):
    """Units counted toward the entitlement at `at` (OM-92)."""

    at: datetime
    units: Decimal


class ActivationMark(msgspec.Struct, frozen=True, gc=False, array_like=True, tag="a"):
    """A grant's credits entered the pool at `at`."""

    at: datetime
    grant_id: uuid.UUID


class VoidMark(msgspec.Struct, frozen=True, gc=False, array_like=True, tag="v"):
    """A grant's remaining credits left the pool at `at` (OM-89)."""

    at: datetime
    grant_id: uuid.UUID


class RecurMark(msgspec.Struct, frozen=True, gc=False, array_like=True, tag="c"):
    """A recurring grant was re-issued at `at`: its remaining credits became its amount."""

    at: datetime
    grant_id: uuid.UUID


class ResetMark(msgspec.Struct, frozen=True, gc=False, array_like=True, tag="r"):
    """A usage period began (at creation or a reset, OM-94): the live grants' balances right
    after rollover and carried overage, in burn order, and the period's opening counters."""

    at: datetime
    period_start: datetime
    balances: tuple[tuple[uuid.UUID, Decimal], ...]
    overage: Decimal
    consumed: Decimal


LogMark = UsageMark | ActivationMark | VoidMark | RecurMark | ResetMark


class OmEntitlement(msgspec.Struct, kw_only=True):
    """An entitlement and its current usage period. Mutable like a pool: the per-event
    counters change in place (`om_evolve` is the only code that changes them).

    `usage` is the units counted this period, `consumed` what grants covered of it (and of
    carried overage), `overage` what they did not. `log` is in journal order, whose `at`s
    never decrease; `reset_positions` indexes its ResetMarks."""

    definition: EntitlementDefinition
    deleted_at: datetime | None = None
    period_start: datetime | None = None
    anchor: datetime | None = None
    last_reset: datetime | None = None
    usage: Decimal = ZERO
    consumed: Decimal = ZERO
    overage: Decimal = ZERO
    grants: dict[uuid.UUID, GrantDefinition] = msgspec.field(default_factory=dict)
    log: list[LogMark] = msgspec.field(default_factory=list)
    reset_positions: list[int] = msgspec.field(default_factory=list)

    @property
    def id(self) -> str:
        return self.definition.id

    @property
    def live(self) -> bool:
        return self.deleted_at is None

    @property
    def metered(self) -> bool:
        return self.definition.kind is EntitlementKind.METERED


def current_period(ent: OmEntitlement) -> tuple[datetime, datetime] | None:
    """`[start, end)` of a metered entitlement's current usage period: from its last reset
    (or creation) to the next boundary of its anchor grid (OM-82, OM-94)."""
    interval = ent.definition.interval
    if ent.period_start is None or ent.anchor is None or interval is None:
        return None
    return ent.period_start, period_containing(ent.anchor, interval, ent.period_start)[1]
