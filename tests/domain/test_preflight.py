"""The multi-feature pre-flight in the domain (RSV-30, RSV-35, RSV-36, RSV-37)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from allotment.domain.commands import GrantCredits, HoldItem, Preflight, Reserve, Subscribe
from allotment.domain.credits import GrantSource
from allotment.domain.decisions import DenialReason
from allotment.domain.preflight import preflight_answer
from allotment.domain.preflight_replies import Preflighted
from allotment.domain.replies import Rejected, RejectionKind
from allotment.domain.reservation_replies import Reserved, ReserveDenied
from tests.domain.harness import D, World, catalog_from, encoded


def _world() -> World:
    """`tokens` (limit 10,000, 0.001 each, 1 credit per 1,000 from a soft pool), `images`
    (graduated), `sso` (included)."""
    tokens = {"featureKey": "tokens", "pricingType": "usage_based", "pricePerUnit": "0.001",
              "maxUsage": 10000, "creditModelKey": "cr", "creditsPerUnit": "0.001"}  # fmt: skip
    images = {"featureKey": "images", "pricingType": "graduated", "tiers": [
        {"upTo": 2, "pricePerUnit": "0.04"}, {"upTo": "inf", "pricePerUnit": "0.02"}]}  # fmt: skip
    document: dict[str, Any] = {
        "features": [{"key": "tokens"}, {"key": "images"}, {"key": "sso"}],
        "creditModels": [{"key": "cr", "denomination": "CR", "hardLimit": False}],
        "plans": [{
            "key": "pro", "name": "Pro", "priceAmount": 0, "currency": "USD",
            "intervalMonths": 1, "billingTiming": "IN_ARREARS",
            "features": [tokens, images, {"featureKey": "sso", "pricingType": "included"}],
        }],
    }  # fmt: skip
    world = World(catalog_from(document))
    world.run(Subscribe(plan_id=world.plan_id("pro")))
    world.run(GrantCredits(denomination="CR", amount=D(2), source=GrantSource.PURCHASE))
    return world


def _items(*pairs: tuple[str, int | str]) -> tuple[HoldItem, ...]:
    return tuple(HoldItem(feature_key=key, units=Decimal(units)) for key, units in pairs)


def test_rsv_35_read_only_answer_is_cumulative_and_changes_nothing() -> None:
    """RSV-30, RSV-35: 3,000 then 1,000 tokens and 3 images: both token items see the whole
    request in `usage_after`; the estimate draws the 2 credits first (2,000 tokens), then
    bills; nothing changes."""
    world = _world()
    before = encoded(world.state)
    answer = preflight_answer(
        world.state, _items(("tokens", 3000), ("tokens", 1000), ("images", 3)), world.ctx()
    )
    assert encoded(world.state) == before
    assert answer.allowed
    first, second, images = answer.items
    assert first.usage_after == second.usage_after
    assert first.usage_after is not None
    assert (first.usage_after.used, first.usage_after.remaining) == (D(4000), D(6000))
    assert (first.charge.credits, first.charge.billable_units) == (D(2), D(1000))
    assert [i.charge.charge for i in answer.items] == [D("1.00"), D("1.00"), D("0.10")]
    assert answer.totals == (("USD", D("2.10")),)
    assert images.decision.decision.allowed


def test_rsv_36_reserve_denied_holds_nothing_and_journals_nothing() -> None:
    """RSV-36, RSV-5: the second item would pass the limit, so nothing is held."""
    world = _world()
    before = encoded(world.state)
    reserve = Reserve(reservation_id="r1", items=_items(("images", 1), ("tokens", 10001)))
    applied = len(world.facts)
    reply = world.run(Preflight(reserve=reserve))
    assert isinstance(reply, Preflighted)
    assert isinstance(reply.reservation, ReserveDenied)
    assert not reply.allowed
    assert reply.items[1].decision.decision.reason is DenialReason.WOULD_EXCEED
    assert len(world.facts) == applied
    assert encoded(world.state) == before


def test_rsv_36_reserve_holds_every_item_with_the_answer() -> None:
    """RSV-36: allowed, every item held in the same turn; the estimate is of the units as if
    committed, unaffected by the request's own hold."""
    world = _world()
    reserve = Reserve(reservation_id="r1", items=_items(("tokens", 3000), ("images", 3)))
    reply = world.run(Preflight(reserve=reserve))
    assert isinstance(reply, Preflighted)
    assert isinstance(reply.reservation, Reserved)
    assert world.state.held_units == {"tokens": D(3000), "images": D(3)}
    assert [i.charge.charge for i in reply.items] == [D("1.00"), D("0.10")]


def test_rsv_37_a_boolean_feature_cannot_be_reserved_and_is_named_by_index() -> None:
    """RSV-37, RSV-3: 400-kind rejection naming `items[1].featureKey`; nothing held."""
    world = _world()
    reserve = Reserve(reservation_id="r1", items=_items(("tokens", 1), ("sso", 1)))
    reply = world.run(Preflight(reserve=reserve))
    assert isinstance(reply, Rejected)
    assert reply.kind is RejectionKind.INVALID
    assert reply.message.startswith("Invalid field 'items[1].featureKey':")
    assert not world.state.reservations
