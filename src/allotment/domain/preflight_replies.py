"""What a multi-feature pre-flight answers (RSV-30..RSV-36): values, like every reply."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from allotment.domain.reservation_replies import ItemDecision, Reserved, ReserveDenied

__all__ = (
    "ChargeEstimate",
    "ItemCharge",
    "PreflightItem",
    "Preflighted",
    "UsageAfter",
)


class ItemCharge(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """One item's estimate (RSV-31). `currency` is None when no invoice would bill the units
    (no active subscription governs the feature, or none bills its current period, RSV-34):
    then `charge` is 0."""

    feature_key: str
    units: Decimal
    credits: Decimal  # credits its units would draw from the pool (CRD-30, MNY-B3)
    billable_units: Decimal  # units the credits leave to the invoice (INV-37)
    charge: Decimal
    currency: str | None


class ChargeEstimate(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """The items in request order, and the total per currency in order of first appearance
    (RSV-33: one entry in the usual case of one plan currency)."""

    items: tuple[ItemCharge, ...]
    totals: tuple[tuple[str, Decimal], ...]


class UsageAfter(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """A metered feature's usage after the whole request (RSV-35): `used` with every unit the
    request asks of it, `reserved` by open reservations, and what the limit leaves."""

    used: Decimal
    reserved: Decimal
    limit: Decimal | None = None
    remaining: Decimal | None = None


class PreflightItem(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """One item: its cumulative decision (RSV-4, RSV-35), its feature's usage after the whole
    request (None when not metered or not governed), and its estimated charge (RSV-31)."""

    decision: ItemDecision
    usage_after: UsageAfter | None
    charge: ItemCharge


class Preflighted(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag="preflighted"):
    """The pre-flight's answer: the items in request order, the totals per currency (RSV-33)
    and, with `reserve`, what the reserve answered (RSV-36)."""

    items: tuple[PreflightItem, ...]
    totals: tuple[tuple[str, Decimal], ...]
    reservation: Reserved | ReserveDenied | None = None

    @property
    def allowed(self) -> bool:
        """RSV-35: all or none."""
        return all(item.decision.decision.allowed for item in self.items)
