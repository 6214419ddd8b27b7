"""The router's side of what an environment keeps once over all its shards
(docs/scale-out.md SCL-80..SCL-89): keys claimed on their home shard before a customer of
another shard uses them (runtime/key_claims.py is the home's side), and a feature an event
auto-created on its customer's shard broadcast to every shard as a catalog change.

Nothing here runs for an environment on one shard: `build_system` gives it no router.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import TypeVar

import anyio

from allotment.domain.catalog import Catalog
from allotment.domain.catalog_facts import FeatureAutoCreated
from allotment.domain.commands import CommitReservation
from allotment.domain.context import TurnContext
from allotment.domain.preflight_replies import Preflighted
from allotment.domain.replies import Rejected, RejectionKind, Reply
from allotment.domain.reservation_replies import Reserved
from allotment.domain.reservations import event_keys
from allotment.domain.state import CustomerState
from allotment.runtime.catalog_versions import CatalogVersions, ShardMember
from allotment.runtime.ingestion import DUPLICATE_EVENT, Event, auto_feature
from allotment.runtime.keyed_routes import KeyedRoutes
from allotment.runtime.ports import KeyClaim

__all__ = ("DUPLICATE", "EnvironmentWide", "commit_keys", "holds", "per_shard")

Y = TypeVar("Y")
DUPLICATE = Rejected(kind=RejectionKind.CONFLICT, message=DUPLICATE_EVENT)


async def per_shard(
    groups: dict[int, list[int]],
    run: Callable[[int, list[int]], Awaitable[Sequence[Y]]],
    into: list[Y],
) -> None:
    """Each shard's part at once (`groups`: shard -> positions), every reply written to its
    position in `into` (SCL-10)."""

    async def one(index: int, positions: list[int]) -> None:
        for position, reply in zip(positions, await run(index, positions), strict=True):
            into[position] = reply

    if len(groups) == 1:  # one shard's part: no task group to start
        await one(*next(iter(groups.items())))
        return
    async with anyio.create_task_group() as tg:
        for index, positions in groups.items():
            tg.start_soon(one, index, positions)


class EnvironmentWide:
    """Key claims and shared features for one router (its routes, versions and members)."""

    def __init__(
        self, routes: KeyedRoutes, versions: CatalogVersions, members: Sequence[ShardMember]
    ) -> None:
        self.routes = routes
        self.versions = versions
        self.members = members
        self.claims = 0  # keys claimed on another shard (the tests assert on it)

    async def lease(self, index: int, key: str) -> bool | None:
        """SCL-81: may shard `index`'s customer use `key`? Asked of the key's home when that
        is another shard (True or False, and then the request holds a lease to give back if
        its turn refuses the key); None when the home is that shard (its own turn judges)."""
        home = self.routes.home_of(key)
        if home == index:
            return None
        self.claims += 1
        claim = KeyClaim(key, index)
        (answer,) = await self.versions.call(home, lambda s: s.claim_keys([claim]))
        return answer

    async def give_back(self, index: int, key: str) -> None:
        """SCL-82: the lease `lease` granted, given back: the request's turn refused the key."""
        claim = KeyClaim(key, index, "give_back")
        await self.versions.call(self.routes.home_of(key), lambda s: s.claim_keys([claim]))

    async def ask_homes(self, claims: Sequence[KeyClaim]) -> list[bool | None]:
        """Many claims or give-backs: one call per home shard, the homes at once; None for
        a claim whose home is its own shard (nothing asked)."""
        answers: list[bool | None] = [None] * len(claims)
        groups: dict[int, list[int]] = {}
        for position, claim in enumerate(claims):
            home = self.routes.home_of(claim.key)
            if home != claim.shard:
                groups.setdefault(home, []).append(position)
        if not groups:
            return answers
        self.claims += sum(len(positions) for positions in groups.values())

        async def run(home: int, positions: list[int]) -> list[bool | None]:
            part = [claims[p] for p in positions]
            return list(await self.versions.call(home, lambda s: s.claim_keys(part)))

        await per_shard(groups, run, answers)
        return answers

    async def settle_leases(
        self, claims: Sequence[KeyClaim], leased: Sequence[bool | None], kept: Sequence[bool]
    ) -> None:
        """SCL-82: the leases of the requests whose turn refused their key, given back."""
        back = [
            KeyClaim(claim.key, claim.shard, "give_back")
            for claim, lease, keep in zip(claims, leased, kept, strict=True)
            if lease and not keep
        ]
        if back:
            await self.ask_homes(back)

    # -- EVT-21 ---------------------------------------------------------------------------------

    async def share_features(self, events: Iterable[Event], replies: Iterable[Reply]) -> None:
        """SCL-87: a feature key an accepted event named that a shard's catalog lacks (the
        event's turn auto-created it on its own shard) is broadcast to every shard under a
        new catalog version before the event is answered."""
        lacking = {
            event.feature_key
            for (_, event, feature_uuid), reply in zip(events, replies, strict=True)
            if feature_uuid is None
            and event.feature_key is not None
            and not isinstance(reply, Rejected)
            and any(event.feature_key not in m.catalog.features for m in self.members)
        }
        for key in sorted(lacking):
            await self._broadcast_feature(key)

    async def _broadcast_feature(self, key: str) -> None:
        change = functools.partial(_feature_fact, key)  # a Ray host gets it pickled
        await self.versions.broadcast(lambda s: s.change_catalog(change))


def _feature_fact(key: str, catalog: Catalog, ctx: TurnContext) -> FeatureAutoCreated:
    """The feature as a shard that has it holds it (its own auto-created one, or one an admin
    changed meanwhile: never reverted), else as the event's turn made it (EVT-21)."""
    feature = catalog.features.get(key) or auto_feature(key)
    return FeatureAutoCreated(at=ctx.now, feature=feature)


def commit_keys(command: CommitReservation, state: CustomerState, catalog: Catalog,
                now: datetime) -> list[str]:  # fmt: skip
    """The event keys `command` would record (RSV-13); none when the turn will refuse it (a
    projector's None would read as "no such customer")."""
    reservation = state.reservations.get(command.reservation_id)
    if reservation is None:
        return []
    keys = event_keys(reservation, command)
    return [] if isinstance(keys, Rejected) else list(keys.values())


def holds(reply: Reply) -> bool:
    """A reserve's reply that holds its id (RSV-5: a denial remembers nothing)."""
    if isinstance(reply, Preflighted):
        return isinstance(reply.reservation, Reserved)
    return isinstance(reply, Reserved)
