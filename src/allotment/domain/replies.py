"""Replies: business outcomes as values. Denials and rejections are data, never exceptions."""

from __future__ import annotations

import enum
from decimal import Decimal

import msgspec

from allotment.domain.state import Invoice, Subscription

__all__ = (
    "CreditBlock",
    "Decision",
    "DenialReason",
    "Done",
    "Rejected",
    "RejectionKind",
    "Reply",
    "Simulation",
    "Subscribed",
    "UsageAccepted",
    "UsageBlock",
)


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


class RejectionKind(enum.StrEnum):
    """Why a command changed nothing. The HTTP edge maps each kind to one status code."""

    INVALID = "invalid"  # 400
    NOT_FOUND = "not_found"  # 404
    CONFLICT = "conflict"  # 409


class Done(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag="done"):
    message: str | None = None


class Rejected(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag="rejected"):
    kind: RejectionKind
    message: str


class Subscribed(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag="subscribed"):
    subscription: Subscription
    invoice: Invoice


class UsageAccepted(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag="usage_accepted"):
    over_limit: bool = False
    message: str | None = None
    cost_unknown: str | None = None  # OPS-D5: why the event's cost is unknown, if it is


class UsageBlock(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    used: Decimal
    limit: Decimal | None = None
    remaining: Decimal | None = None


class CreditBlock(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    denomination: str
    balance: Decimal
    total_granted: Decimal
    total_consumed: Decimal
    hard_limit: bool


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


Reply = Done | Rejected | Subscribed | UsageAccepted | Decision
