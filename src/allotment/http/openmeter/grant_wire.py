"""OpenMeter's grants on the wire (docs/openmeter.md OM-120..OM-129): the create inputs
(`EntitlementGrantCreateInput`, v1, and `EntitlementGrantCreateInputV2`) as the domain's
`IssueGrant`, and a grant as the document's `EntitlementGrant` (v1) or `EntitlementGrantV2`.

Amounts are decoded exactly (a JSON number's text as a Decimal, never through a float) and
written as JSON numbers. The two versions differ where the document says they do (OM-122):
v1 requires `expiration` and defaults `maxRolloverAmount` to 0; v2 may omit `expiration` (the
grant never expires) and defaults `maxRolloverAmount` to the amount.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Final

import msgspec

from allotment.domain.om_commands import IssueGrant
from allotment.domain.om_periods import INTERVAL_ENUM, Interval
from allotment.domain.om_state import GrantDefinition
from allotment.http.openmeter.problems import bad_request
from allotment.http.openmeter.wire import decode

__all__ = ("GRANT_SORT", "GrantRow", "grant_json", "issue_command", "updated_at")

_Instant = Annotated[datetime, msgspec.Meta(tz=True)]  # RFC 3339 with its offset
_ENUM_OF: Final = {iso: name for name, iso in INTERVAL_ENUM.items()}  # P1D -> DAY


class _Expiration(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`ExpirationPeriod`: both members required (the domain checks their values)."""

    duration: str
    count: int


class _Recurrence(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`RecurringPeriodCreateInput`."""

    interval: str
    anchor: _Instant | None = None


class _GrantCreate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The members of both create inputs; `expiration` is required in v1 (checked after)."""

    amount: Decimal
    effectiveAt: _Instant
    priority: int | None = None
    expiration: _Expiration | None = None
    minRolloverAmount: Decimal | None = None
    maxRolloverAmount: Decimal | None = None
    metadata: dict[str, str] | None = None
    recurrence: _Recurrence | None = None
    # v2 only in the document; allotment does not keep them yet: refused by name (OM-122)
    annotations: Any = None


def issue_command(body: bytes, entitlement: str, v2: bool) -> IssueGrant:
    """The request body as the domain's command, or a 400 naming the field (OM-122). What
    the domain checks (amount >= 0, priority 1..255, min <= max, the expiration's unit and
    count, the recurrence interval) it refuses there, naming the same fields."""
    grant = decode(body, _GrantCreate)
    if grant.annotations is not None:
        raise bad_request("annotations", "not supported yet: use metadata")
    if not v2 and grant.expiration is None:
        raise bad_request("expiration", "is required (v1); v2 grants may omit it")
    for name in ("amount", "minRolloverAmount", "maxRolloverAmount"):
        value: Decimal | None = getattr(grant, name)
        if value is not None and not value.is_finite():
            raise bad_request(name, "must be a finite number")
    max_rollover = grant.maxRolloverAmount
    if max_rollover is None and v2:
        max_rollover = grant.amount  # OM-122: v2's default is the amount, v1's is 0
    expiration = grant.expiration
    recurrence = grant.recurrence
    return IssueGrant(
        entitlement=entitlement,
        amount=grant.amount,
        effective_at=grant.effectiveAt,
        priority=1 if grant.priority is None else grant.priority,
        expiration_duration=expiration.duration if expiration else None,
        expiration_count=expiration.count if expiration else None,
        min_rollover=grant.minRolloverAmount or Decimal(0),
        max_rollover=max_rollover,
        recurrence=recurrence.interval if recurrence else None,
        recurrence_anchor=recurrence.anchor if recurrence else None,
        metadata=grant.metadata,
    )


class GrantRow(msgspec.Struct, frozen=True, gc=False):
    """A grant with what its listing needs beside it: its customer and feature (filters),
    and its entitlement's deletion (the grant's `deletedAt`, OM-124)."""

    grant: GrantDefinition
    customer_id: str
    customer_key: str | None
    subject_keys: tuple[str, ...]
    feature_key: str
    deleted_at: datetime | None

    @property
    def updated_at(self) -> datetime:
        return updated_at(self.grant, self.deleted_at)

    @property
    def names(self) -> tuple[str | None, ...]:
        """What a `subject` filter may name the customer by (as `subjectIdOrKey`, OM-107)."""
        return (self.customer_id, self.customer_key, *self.subject_keys)


def updated_at(grant: GrantDefinition, deleted_at: datetime | None) -> datetime:
    """A grant's `updatedAt`: its last change, creation, void or its entitlement's deletion."""
    return max(t for t in (grant.created_at, grant.voided_at, deleted_at) if t is not None)


GRANT_SORT: Final = {
    "id": lambda r: r.grant.public_id,
    "createdAt": lambda r: (r.grant.created_at, r.grant.public_id),
    "updatedAt": lambda r: (r.updated_at, r.grant.public_id),
}
"""`GrantOrderBy` (OM-125); ties by id, so an order is stable."""


def _recurrence_json(interval: Interval, anchor: datetime, v2: bool) -> dict[str, Any]:
    """`RecurringPeriod` (v1: with `intervalISO`) or `RecurringPeriodV2`: `interval` is the
    enum value when the duration is one (`P1D` is DAY), else the ISO duration."""
    body: dict[str, Any] = {"interval": _ENUM_OF.get(interval.iso, interval.iso), "anchor": anchor}
    if not v2:
        body["intervalISO"] = interval.iso
    return body


def grant_json(grant: GrantDefinition, deleted_at: datetime | None, v2: bool) -> dict[str, Any]:
    """The document's `EntitlementGrant` (v1) or `EntitlementGrantV2` (OM-123). `deleted_at`
    is the grant's entitlement's deletion (OM-124)."""
    body: dict[str, Any] = {
        "id": grant.public_id,
        "entitlementId": grant.entitlement_id,
        "amount": grant.amount,
        "priority": grant.priority,
        "effectiveAt": grant.effective_at,
        "minRolloverAmount": grant.min_rollover,
        "maxRolloverAmount": grant.max_rollover,
        "createdAt": grant.created_at,
        "updatedAt": updated_at(grant, deleted_at),
    }
    if grant.expiration_duration is not None:
        body["expiration"] = {"duration": grant.expiration_duration,
                              "count": grant.expiration_count}  # fmt: skip
    if grant.recurrence is not None:
        anchor = grant.recurrence_anchor or grant.effective_at  # OM-85: default effectiveAt
        body["recurrence"] = _recurrence_json(grant.recurrence, anchor, v2)
    optional = {
        "expiresAt": grant.expires_at,
        "voidedAt": grant.voided_at,
        "nextRecurrence": grant.next_recurrence,
        "metadata": grant.metadata,
        "deletedAt": deleted_at,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    return body
