"""Reservations into a shard (docs/reservations.md): the id index finds the customer in O(1)
(RSV-28), and a commit's event keys are claimed with every event key of the environment
before the turn, so a commit and `POST /events` share one idempotency (RSV-13, EVT-37)."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

import msgspec

from allotment.domain.commands import (
    CommitReservation,
    ExtendReservation,
    Preflight,
    ReleaseReservation,
    Reserve,
)
from allotment.domain.replies import Rejected, RejectionKind, Reply
from allotment.domain.reservations import event_keys
from allotment.runtime.actor import CustomerActor
from allotment.runtime.ingestion import CUSTOMER_NOT_FOUND
from allotment.runtime.key_claims import claimed_elsewhere
from allotment.runtime.ports import CustomerLookup, Projector

if TYPE_CHECKING:
    from allotment.runtime.local_shard import LocalShard

__all__ = (
    "ReservationDesk",
    "SettleCommand",
    "not_this_customers",
    "reservation_not_found",
    "reservation_taken",
)

T = TypeVar("T")
SettleCommand = CommitReservation | ReleaseReservation | ExtendReservation


class ReservationDesk:
    """The reservation paths of one shard."""

    __slots__ = ("_shard",)

    def __init__(self, shard: LocalShard) -> None:
        self._shard = shard

    async def reserve(self, lookup: CustomerLookup, command: Reserve | Preflight) -> Reply:
        """RSV-1..RSV-6 for an existing customer, alone or inside a pre-flight (RSV-36)."""
        shard = self._shard
        shard.turns.admit(write=True)
        actor = shard.directory.find(lookup)
        if actor is None:
            return Rejected(kind=RejectionKind.NOT_FOUND, message=CUSTOMER_NOT_FOUND)
        # a pre-flight that reserves (RSV-36) holds through the same checks
        reservation_id = (
            command.reservation_id
            if isinstance(command, Reserve)
            else command.reserve.reservation_id
        )
        owner = shard.directory.reservation_owner(reservation_id)
        if owner is not None and owner is not actor:  # RSV-1: ids are the environment's
            return reservation_taken(reservation_id)
        if (
            owner is None
            and shard.mint is not None
            and claimed_elsewhere(shard.event_keys, reservation_id)
        ):  # SCL-84: one of several shards, the id's home, and another shard claimed it
            return reservation_taken(reservation_id)
        return await shard.turns.turn(actor, command, shard.context())

    async def settle(
        self, reservation_id: str, command: SettleCommand, customer: CustomerLookup | None
    ) -> Reply:
        """Commit, release or extend the reservation `reservation_id` (RSV-12..RSV-20)."""
        shard = self._shard
        shard.turns.admit(write=True)
        actor = self._owner(reservation_id, customer)
        if isinstance(actor, Rejected):
            return actor
        if not isinstance(command, CommitReservation):
            return await shard.turns.turn(actor, command, shard.context())
        return await self._commit(actor, command)

    async def _commit(self, actor: CustomerActor, command: CommitReservation) -> Reply:
        """Claim the items' event keys first (EVT-37: nothing awaits between the check and the
        claim), run the turn, and give back the keys this commit claimed if it is rejected."""
        shard = self._shard
        reservation = actor.state.reservations.get(command.reservation_id)
        if reservation is None:  # forgotten since the index was read: cannot happen in a turn
            return reservation_not_found(command.reservation_id)
        keys = event_keys(reservation, command)
        if isinstance(keys, Rejected):
            return keys
        now = shard.now()
        claimed: list[str] = []
        refused: list[str] = []
        for key in keys.values():
            (claimed if shard.event_keys.reserve(key, now) else refused).append(key)
        # A key named twice is claimed by its first item: only keys no item claimed are
        # duplicates. Nearly every commit claims its one key: no set is built for it.
        duplicates = frozenset(refused).difference(claimed) if refused else frozenset()
        if command.duplicate_keys:  # held by another shard's customer (SCL-88)
            duplicates = duplicates.union(command.duplicate_keys)
        command = msgspec.structs.replace(command, event_keys=keys, duplicate_keys=duplicates)
        try:
            reply = await shard.turns.turn(actor, command, shard.context())
        except BaseException:
            self._give_back(claimed)
            raise
        if isinstance(reply, Rejected):
            self._give_back(claimed)
        return reply

    def _give_back(self, claimed: list[str]) -> None:
        now = self._shard.now()
        for key in claimed:
            self._shard.event_keys.release(key, now)

    async def read(
        self, reservation_id: str, customer: CustomerLookup | None, projector: Projector[T]
    ) -> T | Rejected:
        """`projector` on the caught-up state of the reservation's customer (RSV-21)."""
        actor = self._owner(reservation_id, customer)
        if isinstance(actor, Rejected):
            return actor
        view = await self._shard.read(CustomerLookup(customer_id=actor.state.id), projector)
        assert view is not None  # customers are never removed
        return view

    def _owner(
        self, reservation_id: str, customer: CustomerLookup | None
    ) -> CustomerActor | Rejected:
        """RSV-28: the customer of a reservation in O(1); a body naming another customer
        finds nothing (a reservation of another customer is never shown or changed)."""
        directory = self._shard.directory
        actor = directory.reservation_owner(reservation_id)
        if actor is None:
            return reservation_not_found(reservation_id)
        if customer is not None and directory.find(customer) is not actor:
            return not_this_customers(reservation_id)
        return actor


def reservation_taken(reservation_id: str) -> Rejected:
    """RSV-1: the 409 for an id another customer of the environment uses."""
    message = f"'{reservation_id}' is already used by a reservation of another customer."
    return Rejected(kind=RejectionKind.CONFLICT, message=message, field="reservation_id")


def not_this_customers(reservation_id: str) -> Rejected:
    """RSV-28: the 404 for a body naming another customer than the reservation's."""
    message = f"reservation '{reservation_id}' is not this customer's."
    return Rejected(kind=RejectionKind.NOT_FOUND, message=message, field="customer")


def reservation_not_found(reservation_id: str) -> Rejected:
    return Rejected(
        kind=RejectionKind.NOT_FOUND, message=f"Reservation '{reservation_id}' not found."
    )
