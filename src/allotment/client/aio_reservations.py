"""The reservation extension for `AsyncClient`, and `AsyncHold`, its async context manager.

`reserve` returns a `PendingHold`: `await` it for the hold, or `async with` it, which reserves
on entry. Leaving the block after an exception (cancellation included) releases the hold in a
shielded scope, so a cancelled task still gives its units back (RSV-43)."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Self, TypeVar

import anyio

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

__all__ = ("AsyncHold", "AsyncReservations", "PendingHold")

T = TypeVar("T")


class AsyncReservations:
    """Reserve, read and settle holds (docs/reservations.md); mixed into `Client`."""

    async def send(self, call: Call[T]) -> T:
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
    ) -> PendingHold:
        """Holds `units` of a feature (or every item of `items`) before an expensive call.

        Use the result as a context manager: leaving the block commits the usage you set
        (`hold.usage_units = n`), an exception releases the hold (RSV-41, RSV-43). Give a
        `reservation_id` to make a retry safe: the server answers a repeat from the first
        (RSV-1, RSV-40).

        Returns:
            A `PendingHold`: awaited, or entered with `async with`, it reserves and gives the
            HELD reservation's `AsyncHold`.

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
        return PendingHold(self, call)

    async def preflight(
        self,
        customer_reference_id: str,
        items: Sequence[HoldItem],
        *,
        reserve: PreflightReserve | None = None,
    ) -> Preflight:
        """As `Client.preflight`, awaited."""
        return await self.send(rops.preflight(customer_reference_id, items, reserve=reserve))

    async def hold(self, reservation: Reservation | str) -> AsyncHold:
        """A context manager around a reservation made elsewhere: a `Reservation`, or an id
        (read first), such as a pre-flight's `answer.reservation.id`.

        Raises:
            ReservationDenied: the reservation was not allowed; there is nothing to hold.
            NotFound: no reservation has that id.
        """
        if isinstance(reservation, str):
            reservation = await self.get_reservation(reservation)
        if not reservation.is_allowed:
            raise ReservationDenied(reservation)
        return AsyncHold(self, reservation)

    async def get_reservation(
        self, reservation_id: str, *, customer_reference_id: str | None = None
    ) -> Reservation:
        """The reservation (404 `NotFound` for an unknown id, or another customer's)."""
        call = rops.get_reservation(reservation_id, customer_reference_id=customer_reference_id)
        return await self.send(call)

    async def list_reservations(
        self, customer_reference_id: str, *, status: ReservationStatus | None = "HELD"
    ) -> list[Reservation]:
        """The customer's reservations in `status` (all kept ones with None), oldest first."""
        return await self.send(rops.list_reservations(customer_reference_id, status=status))

    async def commit_reservation(
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
        return await self.send(rops.commit_reservation(
            reservation_id, usage_units, feature_key=feature_key, items=items,
            event_idempotency_key=event_idempotency_key, cost_input=cost_input,
            occurred_at=occurred_at, meta=meta,
        ))  # fmt: skip

    async def release_reservation(
        self, reservation_id: str, *, feature_key: str | None = None
    ) -> Reservation:
        """Returns the hold (or one item's) unused; idempotent."""
        return await self.send(rops.release_reservation(reservation_id, feature_key=feature_key))

    async def extend_reservation(self, reservation_id: str, ttl_seconds: int) -> Reservation:
        """Moves the expiry to now + `ttl_seconds`, at most 24 h after creation."""
        return await self.send(rops.extend_reservation(reservation_id, ttl_seconds))


class AsyncHold(HoldBase):
    """A HELD reservation; `with` commits on a normal exit and releases on an exception."""

    def __init__(self, client: AsyncReservations, reservation: Reservation) -> None:
        super().__init__(reservation)
        self._client = client

    async def commit(self, usage_units: Decimal | int | None = None) -> CommitResult:
        """Commits now: `usage_units`, else what was set, else the held units (RSV-41)."""
        result = await self._client.send(self._commit_call(usage_units))
        self._settled_by(result)
        return result

    async def release(self) -> Reservation:
        """Returns the whole hold unused."""
        reservation = await self._client.send(self._release_call())
        self._settled_by(reservation)
        return reservation

    async def extend(self, ttl_seconds: int) -> Reservation:
        """Moves the expiry (RSV-20)."""
        self.reservation = await self._client.extend_reservation(self.id, ttl_seconds)
        return self.reservation

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.settled:  # committed or released inside the block (RSV-44)
            return
        if error is None:
            committed = await self._client.send(self._commit_call(None))  # RSV-41; RSV-45
            self._settled_by(committed)
            return
        try:  # RSV-43: release, and the body's exception stays the one raised
            with anyio.CancelScope(shield=True):  # bounded by the client's request timeout
                released = await self._client.send(self._release_call())
                self._settled_by(released)
        except AllotmentError as failure:
            error.add_note(self._not_released_note(failure))


class PendingHold:
    """A reserve not sent yet: `await` it, or `async with` it (which reserves on entry)."""

    def __init__(self, client: AsyncReservations, call: Call[Reservation]) -> None:
        self._client = client
        self._call = call
        self._hold: AsyncHold | None = None

    async def _reserve(self) -> AsyncHold:
        reservation = await self._client.send(self._call)
        if not reservation.is_allowed:
            raise ReservationDenied(reservation)  # RSV-42: the block never runs
        return AsyncHold(self._client, reservation)

    def __await__(self) -> Generator[Any, None, AsyncHold]:
        return self._reserve().__await__()

    async def __aenter__(self) -> AsyncHold:
        self._hold = await self._reserve()
        return self._hold

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._hold is not None  # __aenter__ returned it
        await self._hold.__aexit__(kind, error, traceback)
