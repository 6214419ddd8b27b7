"""A world for reservation tests: a plan with a hard-limited credit-backed feature (`chat`,
drawing on TOKENS), a capped one (`api`, maxUsage 100), a second feature on the same pool
(`image`, 10 credits a unit) and a boolean one (`sso`)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from allotment.domain.commands import (
    CommitReservation,
    CommitUnits,
    GrantCredits,
    HoldItem,
    ReleaseReservation,
    Reserve,
    Subscribe,
)
from allotment.domain.credits import GrantSource
from allotment.domain.replies import Reply
from allotment.domain.reservation_state import Overage
from allotment.domain.reservations import event_keys
from tests.domain.harness import World, catalog_from

_LINKS = [
    {"featureKey": "chat", "pricingType": "usage_based", "pricePerUnit": 0.01,
     "creditModelKey": "tok", "creditsPerUnit": 1},
    {"featureKey": "image", "pricingType": "usage_based", "pricePerUnit": 0.01,
     "creditModelKey": "tok", "creditsPerUnit": 10},
    {"featureKey": "api", "pricingType": "usage_based", "pricePerUnit": 0.01, "maxUsage": 100},
    {"featureKey": "sso", "pricingType": "included"},
]  # fmt: skip
DOCUMENT = {
    "features": [{"key": k} for k in ("chat", "image", "api", "sso")],
    "creditModels": [{"key": "tok", "denomination": "TOKENS", "hardLimit": True}],
    "plans": [
        {"key": "pro", "name": "Pro", "priceAmount": 0, "currency": "USD", "intervalMonths": 1,
         "billingTiming": "IN_ARREARS", "features": _LINKS},
    ],
}  # fmt: skip


def reservation_world(balance: Decimal = Decimal(500), kind: type[World] = World) -> World:
    """`kind`: a World, or a subclass that runs its commands another way as well."""
    world = kind(catalog_from(DOCUMENT))
    world.run(Subscribe(plan_id=world.plan_id("pro")))
    if balance:
        world.run(GrantCredits(denomination="TOKENS", amount=balance, source=GrantSource.PURCHASE))
    return world


def reserve(
    world: World,
    reservation_id: str,
    *items: tuple[str, Decimal],
    ttl: int = 3600,
    overage: Overage = Overage.ALLOW,
) -> Reply:
    hold = tuple(HoldItem(feature_key=k, units=u) for k, u in items)
    return world.run(
        Reserve(reservation_id=reservation_id, items=hold, ttl_seconds=ttl, overage=overage)
    )


def commit(
    world: World,
    reservation_id: str,
    units: Decimal,
    feature_key: str | None = None,
    at: datetime | None = None,
) -> Reply:
    """A commit as the runtime sends it: event keys worked out from the reservation first."""
    command = CommitReservation(
        reservation_id=reservation_id,
        items=(CommitUnits(feature_key=feature_key, usage_units=units),),
        occurred_at=at or world.now,
    )
    reservation = world.state.reservations.get(reservation_id)
    if reservation is not None:
        keys = event_keys(reservation, command)
        if isinstance(keys, dict):
            command = CommitReservation(
                reservation_id=reservation_id,
                items=command.items,
                occurred_at=command.occurred_at,
                event_keys=keys,
            )
    return world.run(command)


def release(world: World, reservation_id: str, feature_key: str | None = None) -> Reply:
    return world.run(ReleaseReservation(reservation_id=reservation_id, feature_key=feature_key))
