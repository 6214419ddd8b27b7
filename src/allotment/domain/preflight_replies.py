"""What a multi-feature pre-flight answers (RSV-30..RSV-36): values, like every reply."""

from __future__ import annotations

from decimal import Decimal

import msgspec

__all__ = ("ChargeEstimate", "ItemCharge", "UsageAfter")


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
