"""What a held reservation knows and decides on leaving a `with` block, shared by `Hold` and
`AsyncHold` (they differ only in how they send). The rules are RSV-40..RSV-47 of
docs/reservations.md ("Python client")."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from allotment.client import _reservation_operations as rops
from allotment.client._wire import Call
from allotment.client.models import CostInput
from allotment.client.reservation_models import CommitItem, CommitResult, Reservation

__all__ = ("HoldBase",)


class HoldBase:
    """A HELD reservation and the usage to commit for it.

    Attributes:
        reservation: the server's latest answer about it.
        cost_input: tokens of the model call, sent with the commit (the server prices them).
        event_idempotency_key: the commit's event key (default: the server's, RSV-13).
        meta: free-form data recorded with the committed event.
        settled: True once committed or released through this handle.
    """

    def __init__(self, reservation: Reservation) -> None:
        self.reservation = reservation
        self.cost_input: CostInput | None = None
        self.event_idempotency_key: str | None = None
        self.meta: dict[str, Any] | None = None
        self.settled = False
        self._usage: dict[str, Decimal | int] = {}

    @property
    def id(self) -> str:
        return self.reservation.id

    @property
    def expires_at(self) -> datetime | None:
        return self.reservation.expires_at

    @property
    def usage_units(self) -> Decimal | int | None:
        """The usage to commit for a one-item reservation (None: not set yet)."""
        return self._usage.get(self._only_feature())

    @usage_units.setter
    def usage_units(self, units: Decimal | int) -> None:
        self.set_usage(units)

    def set_usage(self, units: Decimal | int, feature_key: str | None = None) -> None:
        """Sets the real usage to commit on leaving the block (RSV-41).

        Args:
            units: the units really used (0 or more).
            feature_key: the item, for a reservation of several; optional for one item.

        Raises:
            ValueError: the reservation has no such item, or has several and none was named.
        """
        key = feature_key if feature_key is not None else self._only_feature()
        if key not in {item.feature_key for item in self.reservation.items}:
            raise ValueError(f"reservation {self.id} holds no feature {key!r}")
        self._usage[key] = units

    def _only_feature(self) -> str:
        if len(self.reservation.items) != 1:
            raise ValueError(f"reservation {self.id} has several items: name the featureKey")
        return self.reservation.items[0].feature_key

    def _commit_call(self, usage_units: Decimal | int | None) -> Call[CommitResult]:
        """The commit of every item: the units given, else those set, else the held units."""
        items = self.reservation.items
        if usage_units is not None:
            self.set_usage(usage_units)
        used = {item.feature_key: self._usage.get(item.feature_key, item.units) for item in items}
        single = len(items) == 1
        per_item = [CommitItem(feature_key=key, usage_units=units) for key, units in used.items()]
        return rops.commit_reservation(
            self.id,
            used[items[0].feature_key] if single else None,
            items=None if single else per_item,
            event_idempotency_key=self.event_idempotency_key,
            cost_input=self.cost_input,
            meta=self.meta,
        )

    def _release_call(self) -> Call[Reservation]:
        return rops.release_reservation(self.id)

    def _settled_by(self, answer: CommitResult | Reservation) -> None:
        self.reservation = answer.reservation if isinstance(answer, CommitResult) else answer
        self.settled = True

    def _not_released_note(self, failure: BaseException) -> str:
        return (f"allotment: the hold {self.id} was not released ({failure}); "
                f"it is released at its expiry, {self.expires_at}")  # fmt: skip
