"""Facts of OpenMeter entitlements and grants (issue 17, OM-80..OM-119). Customer facts with
stable tags; `om_evolve` applies them. A grant's credits move through the credit facts
(`CreditsGranted`, `CreditsDebited`, `CreditsExpired`, `CreditsReversed`, `CreditsRestored`)
of the entitlement's pool; these facts say what that movement means for the entitlement."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

import msgspec

from allotment.domain.credits import CreditTransaction
from allotment.domain.om_state import EntitlementDefinition, GrantDefinition

__all__ = (
    "CreditsRestored",
    "EntitlementCreated",
    "EntitlementDeleted",
    "EntitlementReset",
    "EntitlementUsed",
    "GrantActivated",
    "GrantIssued",
    "GrantRecurred",
    "GrantVoided",
    "OpenMeterFact",
)


class _OmFact(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag_field="type"):
    at: datetime


class EntitlementCreated(_OmFact, tag="om_entitlement_created", frozen=True, kw_only=True):
    """A new entitlement (OM-80); its first usage period starts at `period_start` on the
    grid of `anchor` (metered only)."""

    definition: EntitlementDefinition
    period_start: datetime | None = None
    anchor: datetime | None = None


class EntitlementDeleted(_OmFact, tag="om_entitlement_deleted", frozen=True, kw_only=True):
    """Soft deletion (OM-83): the entitlement stays, answering for instants before `at`."""

    entitlement_id: str


class EntitlementUsed(_OmFact, tag="om_entitlement_used", frozen=True, kw_only=True):
    """`units` counted toward the entitlement at `at` (OM-92); its grants covered `covered`
    of them (the CreditsDebited before this fact), the rest is overage."""

    entitlement_id: str
    units: Decimal
    covered: Decimal


class EntitlementReset(_OmFact, tag="om_entitlement_reset", frozen=True, kw_only=True):
    """A new usage period from `period_start` on the grid of `anchor` (OM-94..OM-97), after
    the rollover and carried-overage credit facts before it: usage 0, `consumed` what grants
    covered of carried overage, `overage` what they did not."""

    entitlement_id: str
    period_start: datetime
    anchor: datetime
    overage: Decimal
    consumed: Decimal
    automatic: bool


class GrantIssued(_OmFact, tag="om_grant_issued", frozen=True, kw_only=True):
    """A grant defined on a metered entitlement (OM-84, OM-85); its credits enter the pool
    when it is activated."""

    grant: GrantDefinition


class GrantActivated(_OmFact, tag="om_grant_activated", frozen=True, kw_only=True):
    """The grant's credits entered the pool (the `CreditsGranted` just before this fact)."""

    entitlement_id: str
    grant_id: uuid.UUID


class GrantVoided(_OmFact, tag="om_grant_voided", frozen=True, kw_only=True):
    """OM-89: the grant takes no further part; what it had left was reversed just before."""

    entitlement_id: str
    grant_id: uuid.UUID


class GrantRecurred(_OmFact, tag="om_grant_recurred", frozen=True, kw_only=True):
    """OM-85: a recurring grant re-issued at `at` (the credit fact before this one brought
    its remaining credits to its amount)."""

    entitlement_id: str
    grant_id: uuid.UUID


class CreditsRestored(_OmFact, tag="credits_restored", frozen=True, kw_only=True):
    """Rollover raised a grant's remaining credits (OM-95): a GRANT transaction of the pool.
    A grant spent to zero had left the pool; it comes back with its burn-order fields."""

    denomination: str
    grant_id: uuid.UUID
    priority: int
    granted_at: datetime
    expires_at: datetime | None
    transaction: CreditTransaction


OpenMeterFact = (
    EntitlementCreated
    | EntitlementDeleted
    | EntitlementUsed
    | EntitlementReset
    | GrantIssued
    | GrantActivated
    | GrantVoided
    | GrantRecurred
    | CreditsRestored
)
