"""Replies: business outcomes as values. Denials and rejections are data, never exceptions."""

from __future__ import annotations

import enum

import msgspec

from allotment.domain.credit_note_commands import CreditNoteReply
from allotment.domain.decisions import CreditBlock, Decision, DenialReason, Simulation, UsageBlock
from allotment.domain.om_commands import OpenMeterReply
from allotment.domain.preflight_replies import ItemNotReservable, Preflighted
from allotment.domain.reservation_replies import (
    Committed,
    ReservationShown,
    Reserved,
    ReserveDenied,
)
from allotment.domain.state import Invoice, Subscription

__all__ = (
    "Committed",
    "CreditBlock",
    "Decision",
    "DenialReason",
    "Done",
    "ItemNotReservable",
    "Preflighted",
    "Rejected",
    "RejectionKind",
    "Reply",
    "ReservationShown",
    "ReserveDenied",
    "Reserved",
    "Simulation",
    "Subscribed",
    "UsageAccepted",
    "UsageBlock",
)


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
    field: str | None = None  # the command field at fault; each edge names it its own way


class Subscribed(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag="subscribed"):
    subscription: Subscription
    invoice: Invoice


class UsageAccepted(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag="usage_accepted"):
    over_limit: bool = False
    message: str | None = None
    cost_unknown: str | None = None  # OPS-D5: why the event's cost is unknown, if it is


Reply = (
    Done
    | Rejected
    | Subscribed
    | UsageAccepted
    | Decision
    | Reserved  # RSV-*
    | ReserveDenied
    | Committed
    | ReservationShown
    | Preflighted  # RSV-30..RSV-36
    | ItemNotReservable  # RSV-37
    | OpenMeterReply  # issue 17 (om_commands.py)
    | CreditNoteReply  # issue 18 (credit_note_commands.py)
)
