"""Deciding reserve, commit, release and extend (docs/reservations.md, RSV-1..RSV-24).

Each is one turn of the customer's actor, so a hold, its settlement and its expiry never race
(RSV-24). Commit records usage through `metering.record_usage`, the decision `POST /events`
uses, told which hold it settles so that hold's own units and credits are spendable (RSV-12).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import msgspec

from allotment.domain.commands import (
    CommitReservation,
    CommitUnits,
    ExtendReservation,
    RecordUsage,
    ReleaseReservation,
    Reserve,
)
from allotment.domain.context import Outcome, TurnContext
from allotment.domain.entitlement import governing_subscription
from allotment.domain.evolve import evolve
from allotment.domain.facts import Fact
from allotment.domain.holds import Governing, evaluate_items
from allotment.domain.metering import record_usage
from allotment.domain.money import ZERO
from allotment.domain.replies import Rejected, RejectionKind, UsageAccepted
from allotment.domain.reservation_evolve import settled
from allotment.domain.reservation_expiry import forgets
from allotment.domain.reservation_facts import (
    ReservationCommitted,
    ReservationExtended,
    ReservationHeld,
    ReservationReleased,
)
from allotment.domain.reservation_replies import (
    Committed,
    ItemDecision,
    ReservationShown,
    Reserved,
    ReserveDenied,
)
from allotment.domain.reservation_state import (
    HeldItem,
    HoldStatus,
    ItemSettlement,
    Overage,
    Reservation,
)
from allotment.domain.state import CustomerState

__all__ = ("TTL_MAX_SECONDS", "commit", "event_keys", "extend", "release", "reserve")

TTL_MAX_SECONDS = 86_400  # RSV-2, RSV-20: a hold lives at most 24 h from its creation
ITEMS_MAX = 20  # RSV-3


def reserve(state: CustomerState, command: Reserve, ctx: TurnContext) -> Outcome:
    """RSV-1..RSV-6: hold every item, or none."""
    governing = _reserve_problem(state, command, ctx)
    if isinstance(governing, Rejected):
        return Outcome(governing)
    existing = state.reservations.get(command.reservation_id)
    if existing is not None:  # RSV-1: a repeat answers the original, whatever it is now
        if _same_request(existing, command):
            return Outcome(Reserved(reservation=_as_granted(existing), repeated=True))
        return Outcome(
            _conflict(
                f"'{command.reservation_id}' is already used "
                "by a reservation with a different body.",
                field="reservation_id",
            )
        )
    decided = evaluate_items(state, ctx.catalog, command.items, governing)
    if not all(item.decision.allowed for item in decided):
        return Outcome(ReserveDenied(items=tuple(decided)))
    reservation = Reservation(
        id=command.reservation_id,
        items=_merged(decided),
        overage=command.overage,
        ttl_seconds=command.ttl_seconds,
        created_at=ctx.now,
        expires_at=ctx.now + timedelta(seconds=command.ttl_seconds),
        event_name=command.event_name,
        meta=command.meta,
    )
    fact = ReservationHeld(at=ctx.now, reservation_id=reservation.id, reservation=reservation)
    return Outcome(Reserved(reservation=reservation), [fact])


def _reserve_problem(
    state: CustomerState, command: Reserve, ctx: TurnContext
) -> Rejected | list[Governing]:
    """RSV-2, RSV-3: bad input, named by its field; checked before any decision. Without any,
    each item's governing subscription, found for the check and kept for the decision."""
    if not 1 <= command.ttl_seconds <= TTL_MAX_SECONDS:
        return _invalid(f"must be between 1 and {TTL_MAX_SECONDS}.", field="ttl_seconds")
    if not 1 <= len(command.items) <= ITEMS_MAX:
        return _invalid(f"between 1 and {ITEMS_MAX} items.", field="items")
    governing: list[Governing] = []
    for item in command.items:
        if item.units <= 0:
            return _invalid("must be positive.", field="units")
        if item.feature_key not in ctx.catalog.features:
            return _invalid(f"no feature '{item.feature_key}' in the catalog.", field="feature_key")
        found = governing_subscription(state, ctx.catalog, item.feature_key)
        if found is not None and not found[2].metered:
            return _invalid(
                f"'{item.feature_key}' is a boolean feature of the "
                "plan; only metered features can be reserved.",
                field="feature_key",
            )
        governing.append(found)
    return governing


def _merged(decided: list[ItemDecision]) -> tuple[HeldItem, ...]:
    """One held item per feature: the same feature asked twice holds the sum, with the
    decision of its last ask (which saw the first, RSV-4)."""
    if len(decided) == 1:  # the common reserve: nothing to add up
        (only,) = decided
        return (
            HeldItem(
                feature_key=only.feature_key,
                units=only.units,
                decision=only.decision,
                credits=only.credits,
                denomination=only.denomination,
            ),
        )
    held: dict[str, HeldItem] = {}
    for item in decided:
        before = held.get(item.feature_key)
        units, credits = item.units, item.credits
        if before is not None:
            units += before.units
            if credits is not None and before.credits is not None:
                credits += before.credits
        held[item.feature_key] = HeldItem(
            feature_key=item.feature_key,
            units=units,
            decision=item.decision,
            credits=credits,
            denomination=item.denomination,
        )
    return tuple(held.values())


def _as_granted(reservation: Reservation) -> Reservation:
    """The reservation as the reserve that created it answered (RSV-1), whatever happened to
    it since: every item HELD, the first expiry."""
    items = tuple(
        msgspec.structs.replace(i, status=HoldStatus.HELD, settled_at=None, settlement=None)
        for i in reservation.items
    )
    expires_at = reservation.created_at + timedelta(seconds=reservation.ttl_seconds)
    return msgspec.structs.replace(reservation, items=items, expires_at=expires_at)


def _same_request(existing: Reservation, command: Reserve) -> bool:
    asked: dict[str, Decimal] = {}
    for item in command.items:
        asked[item.feature_key] = asked.get(item.feature_key, ZERO) + item.units
    return (
        {i.feature_key: i.units for i in existing.items} == asked
        and existing.ttl_seconds == command.ttl_seconds
        and existing.overage is command.overage
        and existing.event_name == command.event_name
        and existing.meta == command.meta
    )


# -- commit ------------------------------------------------------------------------------------


def event_keys(reservation: Reservation, command: CommitReservation) -> dict[str, str] | Rejected:
    """RSV-13: the event key of every item this commit would record, by feature key; items
    already committed keep theirs and are left out (RSV-15)."""
    keys: dict[str, str] = {}
    body_key = command.event_key
    for asked in command.items:
        item = _named_item(reservation, asked.feature_key)
        if isinstance(item, Rejected):
            return item
        if item.settlement is not None:
            continue
        if body_key is None:
            keys[item.feature_key] = _default_key(reservation, item)
        elif len(command.items) > 1:
            keys[item.feature_key] = f"{body_key}:{item.feature_key}"
        else:
            keys[item.feature_key] = body_key
    return keys


def _default_key(reservation: Reservation, item: HeldItem) -> str:
    return f"reservation:{reservation.id}:{item.feature_key}"


def commit(state: CustomerState, command: CommitReservation, ctx: TurnContext) -> Outcome:
    """RSV-12..RSV-18: record each named item's usage and release its hold, all or none."""
    reservation = state.reservations.get(command.reservation_id)
    if reservation is None:
        return Outcome(_not_found(command.reservation_id))
    facts: list[Fact] = []
    settlements: dict[str, ItemSettlement] = {}
    shown = reservation  # the reply's, as evolve will leave it (through the same `settled`)
    scratch = state
    for index, asked in enumerate(command.items):
        item = _named_item(reservation, asked.feature_key)
        if isinstance(item, Rejected):
            return Outcome(item)
        if item.settlement is not None:  # RSV-15: answered as it was
            settlements[item.feature_key] = item.settlement
            continue
        if index and facts and scratch is state:  # later items see the earlier ones' facts
            scratch = _copy(state)
            for fact in facts:
                evolve(scratch, fact)
        step = _commit_item(
            scratch, scratch.reservations[reservation.id], item, asked, command, ctx
        )
        if isinstance(step, Rejected):
            return Outcome(step)
        item_facts, settlement, committed = step
        settlements[item.feature_key] = settlement
        shown, _ = settled(shown, committed.at, committed.settlements, None)
        facts.extend(item_facts)
        facts.append(committed)
        if scratch is not state:
            for fact in (*item_facts, committed):
                evolve(scratch, fact)
    return Outcome(Committed(reservation=shown, settlements=settlements), facts)


def _commit_item(
    state: CustomerState,
    reservation: Reservation,
    item: HeldItem,
    asked: CommitUnits,
    command: CommitReservation,
    ctx: TurnContext,
) -> tuple[list[Fact], ItemSettlement, ReservationCommitted] | Rejected:
    """One item: the overage policy (RSV-14), then the event as `POST /events` records it:
    the event's facts, the item's settlement, and the fact that settles it (applied last)."""
    recorded = _recorded_units(reservation, item, asked)
    if isinstance(recorded, Rejected):
        return recorded
    key = command.event_keys.get(item.feature_key) or _default_key(reservation, item)
    if key in command.duplicate_keys:  # RSV-13, EVT-35
        return _conflict(
            "Duplicate event. An event with this idempotency key has already been processed.",
            field="event_key",
        )
    held = item.status is HoldStatus.HELD
    event = RecordUsage(
        idempotency_key=key,
        event_name=reservation.event_name or item.feature_key,
        occurred_at=command.occurred_at,
        units=recorded,
        feature_key=item.feature_key,
        cost_input=command.cost_input,
        meta=command.meta if command.meta is not None else reservation.meta,
    )
    outcome = record_usage(state, event, ctx, own=item if held else None)
    if isinstance(outcome.reply, Rejected):
        return outcome.reply
    assert isinstance(outcome.reply, UsageAccepted)
    settlement = ItemSettlement(
        usage_units=asked.usage_units,
        recorded_units=recorded,
        event_key=key,
        hold_expired=not held,  # RSV-16
        over_limit=outcome.reply.over_limit,
        message=outcome.reply.message,
        cost_unknown=outcome.reply.cost_unknown,
    )
    settles_all = held and _last_held(reservation, item.feature_key)
    fact = ReservationCommitted(
        at=ctx.now,
        reservation_id=reservation.id,
        settlements={item.feature_key: settlement},
        forgets=forgets(state) if settles_all else (),
    )
    return outcome.facts, settlement, fact


def _recorded_units(
    reservation: Reservation, item: HeldItem, asked: CommitUnits
) -> Decimal | Rejected:
    """RSV-14, RSV-17: what a commit of `asked` records of `item`, or why it cannot."""
    if item.status is HoldStatus.RELEASED:
        return _conflict(
            f"'{reservation.id}': the hold of '{item.feature_key}' "
            "was released; there is nothing to commit.",
            field="reservation_id",
        )
    if asked.usage_units < 0:
        return _invalid("must not be negative.", field="usage_units")
    if asked.usage_units <= item.units or reservation.overage is Overage.ALLOW:
        return asked.usage_units
    if reservation.overage is Overage.REJECT:
        return _conflict(
            f"{asked.usage_units} exceeds the {item.units} units "
            "held, and the reservation's overage policy is 'reject'.",
            field="usage_units",
        )
    return item.units  # CAP


def _named_item(reservation: Reservation, feature_key: str | None) -> HeldItem | Rejected:
    """RSV-18: the item a commit or release names; the only one when it names none."""
    if feature_key is None:
        if len(reservation.items) != 1:
            return _invalid("required, the reservation holds several items.", field="feature_key")
        return reservation.items[0]
    item = reservation.item(feature_key)
    if item is None:
        return _invalid(f"the reservation holds no item '{feature_key}'.", field="feature_key")
    return item


def _last_held(reservation: Reservation, feature_key: str) -> bool:
    return all(
        i.status is not HoldStatus.HELD or i.feature_key == feature_key for i in reservation.items
    )


def _copy(state: CustomerState) -> CustomerState:
    """A scratch state for a commit of several items (rare: the pre-flight's groups)."""
    return msgspec.msgpack.decode(msgspec.msgpack.encode(state), type=CustomerState)


# -- release and extend ------------------------------------------------------------------------


def release(state: CustomerState, command: ReleaseReservation, ctx: TurnContext) -> Outcome:
    """RSV-19: give the hold back unused; idempotent."""
    reservation = state.reservations.get(command.reservation_id)
    if reservation is None:
        return Outcome(_not_found(command.reservation_id))
    items: tuple[HeldItem, ...] = reservation.items
    if command.feature_key is not None:
        named = _named_item(reservation, command.feature_key)
        if isinstance(named, Rejected):
            return Outcome(named)
        items = (named,)
    if any(i.status is HoldStatus.COMMITTED for i in items) and not any(
        i.status is HoldStatus.HELD for i in items
    ):
        return Outcome(
            _conflict(
                f"'{reservation.id}' was committed; a committed hold cannot be released.",
                field="reservation_id",
            )
        )
    held = tuple(i.feature_key for i in items if i.status is HoldStatus.HELD)
    if not held:
        return Outcome(ReservationShown(reservation=reservation))
    settles_all = all(
        i.status is not HoldStatus.HELD or i.feature_key in held for i in reservation.items
    )
    fact = ReservationReleased(
        at=ctx.now,
        reservation_id=reservation.id,
        feature_keys=held,
        forgets=forgets(state) if settles_all else (),
    )
    shown, _ = settled(reservation, fact.at, {}, frozenset(held))  # as evolve will leave it
    return Outcome(ReservationShown(reservation=shown), [fact])


def extend(state: CustomerState, command: ExtendReservation, ctx: TurnContext) -> Outcome:
    """RSV-20: a HELD reservation lives longer, at most 24 h from its creation."""
    if not 1 <= command.ttl_seconds <= TTL_MAX_SECONDS:
        return Outcome(_invalid(f"must be between 1 and {TTL_MAX_SECONDS}.", field="ttl_seconds"))
    reservation = state.reservations.get(command.reservation_id)
    if reservation is None:
        return Outcome(_not_found(command.reservation_id))
    if reservation.status is not HoldStatus.HELD:
        return Outcome(
            _conflict(
                f"'{reservation.id}' is {reservation.status.value}; only a HELD one extends.",
                field="reservation_id",
            )
        )
    cap = reservation.created_at + timedelta(seconds=TTL_MAX_SECONDS)
    expires_at = min(ctx.now + timedelta(seconds=command.ttl_seconds), cap)
    fact = ReservationExtended(at=ctx.now, reservation_id=reservation.id, expires_at=expires_at)
    shown = msgspec.structs.replace(reservation, expires_at=expires_at)
    return Outcome(ReservationShown(reservation=shown), [fact])


def _not_found(reservation_id: str) -> Rejected:
    return Rejected(
        kind=RejectionKind.NOT_FOUND, message=f"Reservation '{reservation_id}' not found."
    )


def _invalid(message: str, field: str) -> Rejected:
    return Rejected(kind=RejectionKind.INVALID, message=message, field=field)


def _conflict(message: str, field: str) -> Rejected:
    return Rejected(kind=RejectionKind.CONFLICT, message=message, field=field)
