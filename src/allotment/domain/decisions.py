"""Entitlement decisions as values: the denial reasons and the blocks a check answers with.

Kept apart from `replies` so that state (reservations keep the decision they were granted
with, RSV-1) can hold them without an import cycle; `replies` re-exports every name.
"""

from __future__ import annotations

import enum
from decimal import Decimal

import msgspec

from allotment.domain.money import ZERO

__all__ = ("CreditBlock", "Decision", "DenialReason", "Simulation", "UsageBlock")


class DenialReason(enum.StrEnum):
    """ENT-10..ENT-17, in check order. The values are the wire texts (AMB-2)."""

    CUSTOMER_NOT_FOUND = "Customer not found."
    FEATURE_NOT_FOUND = "Feature not found."
    NO_ACTIVE_SUBSCRIPTION = "No active subscription."
    AWAITING_PAYMENT = "Subscription is awaiting payment."
    PAST_DUE = "Subscription is past due."
    NOT_INCLUDED = "Feature not included in plan."
    LIMIT_EXCEEDED = "Usage limit exceeded for this billing period."
    POOL_FROZEN = "Credit pool is frozen."
    INSUFFICIENT_CREDITS = "Insufficient credits."
    WOULD_EXCEED = "Requested usage would exceed the limit."


class UsageBlock(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    used: Decimal
    limit: Decimal | None = None
    remaining: Decimal | None = None  # RSV-8: excludes what is reserved
    reserved: Decimal = ZERO  # RSV-8: units held by open reservations


class CreditBlock(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    denomination: str
    balance: Decimal
    total_granted: Decimal
    total_consumed: Decimal
    hard_limit: bool
    reserved: Decimal = ZERO  # RSV-9: credits held by open reservations
    available: Decimal | None = None  # RSV-9: balance - reserved (None: same as balance)


class Simulation(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    requested_usage: Decimal
    projected_usage: Decimal
    would_exceed_limit: bool
    projected_remaining: Decimal | None = None


class Decision(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag="decision"):
    allowed: bool
    reason: DenialReason | None = None
    usage: UsageBlock | None = None
    credit: CreditBlock | None = None
    simulation: Simulation | None = None
