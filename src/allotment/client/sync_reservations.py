"""The reservation extension for the blocking `Client`, and `Hold`, its context manager."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Self, TypeVar

from allotment.client import _reservation_operations as rops
from allotment.client._hold import HoldBase
from allotment.client._wire import Call
from allotment.client.errors import AllotmentError, ReservationDenied
from allotment.client.models import CostInput
from allotment.client.reservation_models import (
    CommitItem,
    CommitResult,
    HoldItem,
    Overage,
    Preflight,
    PreflightReserve,
    Reservation,
    ReservationStatus,
)

__all__ = ("Hold", "SyncReservations")

T = TypeVar("T")


class SyncReservations:
    """Reserve, read and settle holds (docs/reservations.md); mixed into `Client`."""

    def send(self, call: Call[T]) -> T:
        raise NotImplementedError  # Client sends

    def reserve(
        self,
        customer_reference_id: str,
        feature_key: str | None = None,
        units: Decimal | int | None = None,
        *,
        items: Sequence[HoldItem] | None = None,
        reservation_id: str | None = None,
        ttl_seconds: int | None = None,
        event_name: str | None = None,
        overage: Overage | None = None,
        meta: dict[str, Any] | None = None,
    ) -> Hold:
        """Holds `units` of a feature (or every item of `items`) before an expensive call.

        Use the result as a context manager: leaving the block commits the usage you set
        (`hold.usage_units = n`), an exception releases the hold (RSV-41, RSV-43). Give a
        `reservation_id` to make a retry safe: the server answers a repeat from the first
        (RSV-1, RSV-40).

        Returns:
            The HELD reservation's handle.

        Raises:
            ReservationDenied: the server did not allow it; nothing is held (RSV-42).
            BadRequest: a bad field (units, featureKey, ttlSeconds, overage), named.
            Conflict: `reservation_id` was used with another body.
        """
        call = rops.reserve(
            customer_reference_id, feature_key, units, items=items,
            reservation_id=reservation_id, ttl_seconds=ttl_seconds,
            event_name=event_name, overage=overage, meta=meta,
        )  # fmt: skip
        reservation = self.send(call)
        if not reservation.is_allowed:
            raise ReservationDenied(reservation)
        return Hold(self, reservation)

    def preflight(
        self,
        customer_reference_id: str,
        items: Sequence[HoldItem],
        *,
        reserve: PreflightReserve | None = None,
    ) -> Preflight:
        """Decides several features at once and estimates what their units would add to the
        next invoice (RSV-30..RSV-39); with `reserve`, holds them all or none (RSV-36): wrap
        `hold(answer.reservation.id)` settles it as a context manager."""
        return self.send(rops.preflight(customer_reference_id, items, reserve=reserve))

    def hold(self, reservation: Reservation | str) -> Hold:
        """A context manager around a reservation made elsewhere: a `Reservation`, or an id
        (read first), such as a pre-flight's `answer.reservation.id`.

        Raises:
            ReservationDenied: the reservation was not allowed; there is nothing to hold.
            NotFound: no reservation has that id.
        """
        if isinstance(reservation, str):
            reservation = self.get_reservation(reservation)
        if not reservation.is_allowed:
            raise ReservationDenied(reservation)
        return Hold(self, reservation)

    def get_reservation(
        self, reservation_id: str, *, customer_reference_id: str | None = None
    ) -> Reservation:
        """The reservation (404 `NotFound` for an unknown id, or another customer's)."""
        call = rops.get_reservation(reservation_id, customer_reference_id=customer_reference_id)
        return self.send(call)

    def list_reservations(
        self, customer_reference_id: str, *, status: ReservationStatus | None = "HELD"
    ) -> list[Reservation]:
        """The customer's reservations in `status` (all kept ones with None), oldest first."""
        return self.send(rops.list_reservations(customer_reference_id, status=status))

    def commit_reservation(
        self,
        reservation_id: str,
        usage_units: Decimal | int | None = None,
        *,
        feature_key: str | None = None,
        items: Sequence[CommitItem] | None = None,
        event_idempotency_key: str | None = None,
        cost_input: CostInput | None = None,
        occurred_at: datetime | None = None,
        meta: dict[str, Any] | None = None,
    ) -> CommitResult:
        """Records the real usage and releases the hold, in one turn (idempotent)."""
        return self.send(rops.commit_reservation(
            reservation_id, usage_units, feature_key=feature_key, items=items,
            event_idempotency_key=event_idempotency_key, cost_input=cost_input,
            occurred_at=occurred_at, meta=meta,
        ))  # fmt: skip

    def release_reservation(
        self, reservation_id: str, *, feature_key: str | None = None
    ) -> Reservation:
        """Returns the hold (or one item's) unused; idempotent."""
        return self.send(rops.release_reservation(reservation_id, feature_key=feature_key))

    def extend_reservation(self, reservation_id: str, ttl_seconds: int) -> Reservation:
        """Moves the expiry to now + `ttl_seconds`, at most 24 h after creation."""
        return self.send(rops.extend_reservation(reservation_id, ttl_seconds))


class Hold(HoldBase):
    """A HELD reservation; `with` commits on a normal exit and releases on an exception."""

    def __init__(self, client: SyncReservations, reservation: Reservation) -> None:
        super().__init__(reservation)
        self._client = client

    def commit(self, usage_units: Decimal | int | None = None) -> CommitResult:
        """Commits now: `usage_units`, else what was set, else the held units (RSV-41)."""
        result = self._client.send(self._commit_call(usage_units))
        self._settled_by(result)
        return result

    def release(self) -> Reservation:
        """Returns the whole hold unused."""
        reservation = self._client.send(self._release_call())
        self._settled_by(reservation)
        return reservation

    def extend(self, ttl_seconds: int) -> Reservation:
        """Moves the expiry (RSV-20)."""
        self.reservation = self._client.extend_reservation(self.id, ttl_seconds)
        return self.reservation

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.settled:  # committed or released inside the block (RSV-44)
            return
        if error is None:
            committed = self._client.send(self._commit_call(None))  # RSV-41; RSV-45
            self._settled_by(committed)
            return
        try:  # RSV-43: release, and the body's exception stays the one raised
            released = self._client.send(self._release_call())
            self._settled_by(released)
        except AllotmentError as failure:
            error.add_note(self._not_released_note(failure))
