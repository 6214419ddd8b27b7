"""Keys an environment holds once, kept across its shards (docs/scale-out.md SCL-80..SCL-86).

An event idempotency key (EVT-35), a CloudEvent's (source, id) (OM-6) and a reservation id
(RSV-1) are the environment's, but each shard remembers only what its own customers used. So
every such key has a *home* shard, its hash's (`KeyedRoutes.home_of`), and a request of a
customer of another shard first claims the key there for its own shard (`KeysClaimed`,
journalled and durable before the answer), then runs its turn on its own shard, which judges
the key against its own index as in one process. A key is claimed for one shard at most: the
home refuses a claim for another shard, and refuses its own customers a key claimed for
another shard (the claim is in its key index), so of all the requests naming one key only one
shard's turns can take it, and that shard's index lets one of them through (EVT-37).

A request holds a *lease* on the claim until its turn answered: a turn that refuses the key
(a rejected event, a duplicate, a denied hold) gives its lease back, and the claim goes when
no lease is left, so a corrected retry by a customer of any shard is judged afresh, as in one
process. An accepted turn never gives its lease back: its key stays claimed for good. Leases
are numbered 1..n per (key, shard) and the last one given back goes first, so a count costs
no memory of its own.

This module is the home's side. Claims and leases are kept in the shard's event key index, as
the key itself and one entry per lease, so snapshots, recovery and `allotment reshard` carry
them with every other key.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Literal

import msgspec

from allotment.domain.facts import KeysClaimed
from allotment.runtime.idempotency import EventKeyIndex

if TYPE_CHECKING:
    from allotment.runtime.local_shard import LocalShard

__all__ = ("KeyClaim", "claim_keys", "claimed_elsewhere", "remember_claims", "reservation_key")

_RESERVATION = "\x1frsv:"  # a control character leads: no Tanso event key starts with one
Lease = tuple[str, int, int]  # (key, claimant shard, lease number)


class KeyClaim(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """A key the environment holds once (an event key, a CloudEvent's, a reservation id's),
    asked of its home shard for the customer's shard `shard` (SCL-81, SCL-82): `lease` for a
    request that gives the key back if its turn refuses it (`give_back`), `keep` for one
    that never does (a CloudEvent: it is never refused, at most a duplicate)."""

    key: str
    shard: int
    action: Literal["lease", "keep", "give_back"] = "lease"


def reservation_key(reservation_id: str) -> str:
    """A reservation id as a key of the environment's key index (SCL-84)."""
    return _RESERVATION + reservation_id


def _lease(key: str, shard: int, number: int) -> str:
    return f"\x1flease:{shard}:{number}:{key}"


async def claim_keys(shard: LocalShard, claims: list[KeyClaim]) -> list[bool]:
    """SCL-81, SCL-82: each claim granted, refused or its lease given back; True where the
    shard it names may use the key. Answered once every claim it relies on is durable, those
    of earlier calls for the same key included."""
    turns, keys, now = shard.turns, shard.event_keys, shard.now()
    turns.admit(write=True)
    answers: list[bool] = []
    granted: list[Lease] = []
    returned: list[Lease] = []
    for claim in claims:
        if claim.action == "give_back":
            lease = _give_back(keys, claim.key, claim.shard, now)
            returned.extend(() if lease is None else (lease,))
            answers.append(True)
        elif _held_here(shard, claim.key):
            answers.append(False)
        else:
            lease = _grant(keys, claim, now)
            granted.extend(() if lease is None or lease[2] == 0 else (lease,))
            answers.append(lease is not None)
    if granted or returned:
        turns.commit_catalog(KeysClaimed(at=now, claims=tuple(granted), returned=tuple(returned)))
    if turns.journal.position:
        await turns.durable(turns.journal.position)  # an earlier call's claim may be in flight
    return answers


def _grant(keys: EventKeyIndex, claim: KeyClaim, now: datetime) -> Lease | None:
    """The lease granted (number 0: none needed, the claim is kept), or None: refused."""
    key, claimant = claim.key, claim.shard
    if keys.reserve(key, now):
        keys.reserve(_lease(key, claimant, 1), now)
        return key, claimant, 1
    if _lease(key, claimant, 1) not in keys:
        return None  # another shard's, or a customer's of this shard
    if claim.action == "keep":
        return key, claimant, 0
    number = 2
    while not keys.reserve(_lease(key, claimant, number), now):
        number += 1
    return key, claimant, number


def _give_back(keys: EventKeyIndex, key: str, claimant: int, now: datetime) -> Lease | None:
    """The last lease of (key, claimant) given back, and the claim with the first one."""
    number = 0
    while _lease(key, claimant, number + 1) in keys:
        number += 1
    if number == 0:
        return None
    _drop(keys, (key, claimant, number), now)
    return key, claimant, number


def _drop(keys: EventKeyIndex, lease: Lease, at: datetime) -> None:
    key, claimant, number = lease
    keys.release(_lease(key, claimant, number), at)
    if number == 1:
        keys.release(key, at)


def _held_here(shard: LocalShard, key: str) -> bool:
    """A reservation id one of this shard's own customers holds (it never claims it here)."""
    if not key.startswith(_RESERVATION):
        return False
    return shard.directory.reservation_owner(key[len(_RESERVATION) :]) is not None


def claimed_elsewhere(keys: EventKeyIndex, reservation_id: str) -> bool:
    """SCL-84: a reservation id this shard is the home of, claimed for another shard."""
    return reservation_key(reservation_id) in keys


def remember_claims(keys: EventKeyIndex, fact: KeysClaimed) -> None:
    """Recovery: a record's leases, as `claim_keys` left them. Each names its number, so a
    record replayed over a snapshot that already holds it changes nothing."""
    for key, claimant, number in fact.claims:
        keys.reserve(key, fact.at)
        keys.reserve(_lease(key, claimant, number), fact.at)
    for lease in fact.returned:
        _drop(keys, lease, fact.at)
