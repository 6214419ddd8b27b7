"""Reservations as the customer state keeps them (docs/reservations.md, RSV-*).

A reservation holds one or more items (feature, units). Each item is settled at most once:
COMMITTED, RELEASED or EXPIRED (RSV-24). The reservation is HELD while any item is.
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from allotment.domain.decisions import Decision

__all__ = (
    "SETTLED_KEPT",
    "HeldItem",
    "HoldStatus",
    "ItemSettlement",
    "Overage",
    "Reservation",
)

SETTLED_KEPT = 256  # RSV-27: settled reservations a customer keeps for idempotent replies


class HoldStatus(enum.StrEnum):
    HELD = "HELD"
    COMMITTED = "COMMITTED"
    RELEASED = "RELEASED"
    EXPIRED = "EXPIRED"


class Overage(enum.StrEnum):
    """RSV-14: what a commit above the held units does."""

    ALLOW = "allow"
    CAP = "cap"
    REJECT = "reject"


class ItemSettlement(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """What a commit recorded for one item, kept to answer a repeated commit (RSV-15)."""

    usage_units: Decimal  # what the client committed
    recorded_units: Decimal  # what the event recorded (less under `cap`)
    event_key: str
    hold_expired: bool = False  # RSV-16: committed after the hold expired
    over_limit: bool = False
    message: str | None = None
    cost_unknown: str | None = None

    @property
    def cut_units(self) -> Decimal:
        return self.usage_units - self.recorded_units


class HeldItem(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    feature_key: str
    units: Decimal
    decision: Decision  # the decision it was granted with (RSV-1: the original answer)
    credits: Decimal | None = None  # RSV-6: credits held of `denomination`'s pool
    denomination: str | None = None
    status: HoldStatus = HoldStatus.HELD
    settled_at: datetime | None = None
    settlement: ItemSettlement | None = None  # set by a commit, even after expiry (RSV-16)


class Reservation(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    id: str
    items: tuple[HeldItem, ...]
    overage: Overage
    ttl_seconds: int
    created_at: datetime
    expires_at: datetime
    event_name: str | None = None
    meta: dict[str, Any] | None = None

    @property
    def status(self) -> HoldStatus:
        """HELD while any item is held; then COMMITTED if any usage was committed, else
        RELEASED if any item was released, else EXPIRED."""
        statuses = {item.status for item in self.items}
        if HoldStatus.HELD in statuses:
            return HoldStatus.HELD
        if HoldStatus.COMMITTED in statuses or any(i.settlement for i in self.items):
            return HoldStatus.COMMITTED
        if HoldStatus.RELEASED in statuses:
            return HoldStatus.RELEASED
        return HoldStatus.EXPIRED

    @property
    def settled_at(self) -> datetime | None:
        if self.status is HoldStatus.HELD:
            return None
        return max((i.settled_at for i in self.items if i.settled_at), default=None)

    def item(self, feature_key: str) -> HeldItem | None:
        return next((i for i in self.items if i.feature_key == feature_key), None)
