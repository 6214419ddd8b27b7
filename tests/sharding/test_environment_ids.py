"""Reservation ids and a commit's event keys held once per environment across three shards,
through HTTP (docs/scale-out.md SCL-84, SCL-88; RSV-1, RSV-13, RSV-28)."""

from __future__ import annotations

import itertools

import msgspec
import pytest

from allotment.config import Settings
from allotment.runtime.clock import ManualClock
from allotment.runtime.sharding import ShardRouter
from allotment.runtime.system import ActorSystem
from allotment.wiring import build_system
from tests.http.helpers import C, Client, error, event, ok
from tests.http.reservation_helpers import holder, reserve, settle

SHARDS = 3


@pytest.fixture
def system(settings: Settings, clock: ManualClock) -> ActorSystem:
    """Only the three-shard system: these promises are kept by one shard alone already."""
    return build_system(msgspec.structs.replace(settings, shards=SHARDS), clock, persistent=False)


def _router(system: ActorSystem) -> ShardRouter:
    router = system.route("test")
    assert isinstance(router, ShardRouter)
    return router


def _on(router: ShardRouter, shard: int, prefix: str) -> str:
    return next(f"{prefix}{n}" for n in itertools.count()
                if router.routes.of_reference(f"{prefix}{n}") == shard)  # fmt: skip


def _homed(router: ShardRouter, home: int, prefix: str, space: str = "") -> str:
    """A key (`space` + it: a reservation id's is `\\x1frsv:<id>`) whose home is `home`."""
    return next(f"{prefix}{n}" for n in itertools.count()
                if router.routes.home_of(f"{space}{prefix}{n}") == home)  # fmt: skip


@pytest.mark.parametrize(("a", "b"), [(0, 1), (1, 2), (2, 0)])
def test_a_reservation_id_is_the_environments_wherever_its_home(
    client: Client, system: ActorSystem, a: int, b: int
) -> None:
    """SCL-84, RSV-1: an id held by a customer of shard `a` is a 409 for a customer of shard
    `b`, for an id homed on `a`, on `b`, and on the third shard; the holder's repeat is the
    original reply again, and a body naming the other customer is RSV-28's 404."""
    router = _router(system)
    first, second = _on(router, a, "hold-a"), _on(router, b, "hold-b")
    holder(client, first)
    holder(client, second)
    for home in range(SHARDS):
        rid = _homed(router, home, f"r{home}-", "\x1frsv:")
        body = {"featureKey": "ai_chat", "units": 5, "reservationId": rid}
        ok(reserve(client, first, **body), 201)
        assert "reservationId" in error(reserve(client, second, **body), 409)
        assert ok(reserve(client, first, **body))["status"] == "HELD"  # RSV-1: repeated
        wrong = settle(client, rid, "release", customerReferenceId=second)
        assert "customerReferenceId" in error(wrong, 404)


def test_a_denied_or_refused_reserve_leaves_the_id_free(
    client: Client, system: ActorSystem
) -> None:
    """SCL-82, RSV-5: a reserve that holds nothing gives its claim back, so a customer of
    another shard may then take the id, as in one process."""
    router = _router(system)
    poor, rich = _on(router, 1, "poor"), _on(router, 2, "rich")
    holder(client, poor, tokens=0)
    holder(client, rich)
    rid = _homed(router, 0, "denied-", "\x1frsv:")
    denied = ok(reserve(client, poor, featureKey="ai_chat", units=5, reservationId=rid), 200)
    assert denied["isAllowed"] is False
    assert "units" in error(reserve(client, poor, featureKey="ai_chat", units=0,
                                    reservationId=rid), 400)  # fmt: skip
    ok(reserve(client, rich, featureKey="ai_chat", units=5, reservationId=rid), 201)


def test_a_commits_event_keys_are_the_environments(client: Client, system: ActorSystem) -> None:
    """SCL-88, RSV-13: a commit whose event key a customer of another shard used is a 409 and
    records nothing (the hold stays); the key a commit recorded is then a duplicate for an
    event of a customer of another shard."""
    router = _router(system)
    committer, other = _on(router, 0, "commit"), _on(router, 1, "other")
    holder(client, committer)
    used, fresh = _homed(router, 2, "used-"), _homed(router, 2, "fresh-")
    assert event(client, other, used).status_code == 201
    ok(reserve(client, committer, featureKey="ai_chat", units=10, reservationId="c1"), 201)
    refused = settle(client, "c1", "commit", usageUnits=4, eventIdempotencyKey=used)
    assert "Duplicate event" in error(refused, 409)
    assert ok(client.get(f"{C}/reservations/c1"))["status"] == "HELD"
    ok(settle(client, "c1", "commit", usageUnits=4, eventIdempotencyKey=fresh))
    assert event(client, other, fresh).status_code == 409
