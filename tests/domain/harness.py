"""A tiny world for domain tests: one customer, a catalog, deterministic ids and time."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec

from allotment.domain.catalog import Catalog
from allotment.domain.catalog_facts import update_catalog
from allotment.domain.commands import Command
from allotment.domain.context import TurnContext
from allotment.domain.cost import PriceTable
from allotment.domain.evolve import evolve, new_customer
from allotment.domain.facts import CustomerCreated, Fact
from allotment.domain.numbering import Counter
from allotment.domain.replies import Reply
from allotment.domain.state import CustomerSource, CustomerState
from allotment.http.catalog_document import CatalogDocument
from allotment.http.catalog_mapping import to_catalog_update
from allotment.loading import load_catalog, load_price_table
from allotment.runtime.actor import CustomerActor

START = datetime(2025, 1, 15, 10, 30, tzinfo=UTC)


def demo_catalog() -> Catalog:
    return load_catalog(None, START)  # the demo catalog shipped in the package


def prices() -> PriceTable:
    return load_price_table()


def catalog_from(document: dict[str, Any], base: Catalog | None = None) -> Catalog:
    """A catalog written as the admin API's document (the domain tests' shorthand)."""
    update = to_catalog_update(msgspec.convert(document, type=CatalogDocument), START)
    catalog, _ = update_catalog(
        base or Catalog(features={}, credit_models={}, plans={}), update, frozenset()
    )
    return catalog


class World:
    """One customer driven by commands through catch-up, decide and evolve."""

    def __init__(self, catalog: Catalog | None = None, now: datetime = START) -> None:
        self.catalog = catalog or demo_catalog()
        self.prices = prices()
        self.now = now
        self._counter = 0
        self.numbers = Counter()  # CN-20: one environment's sequences across the world's turns
        created = CustomerCreated(
            at=now, customer_id=self.new_id(), external_id="c1", source=CustomerSource.API
        )
        self.facts: list[Fact] = [created]
        self.actor = CustomerActor(new_customer(created))

    @property
    def state(self) -> CustomerState:
        return self.actor.state

    def new_id(self) -> uuid.UUID:
        self._counter += 1
        return uuid.UUID(int=self._counter)

    def ctx(self) -> TurnContext:
        return TurnContext(
            now=self.now,
            catalog=self.catalog,
            prices=self.prices,
            new_id=self.new_id,
            numbers=self.numbers,
        )

    def run(self, command: Command) -> Reply:
        return self.actor.turn(command, self.ctx(), self.facts)

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def plan_id(self, key: str) -> uuid.UUID:
        plan = self.catalog.plan_by_key(key)
        assert plan is not None
        return plan.id


def replay(facts: list[Fact]) -> CustomerState:
    first = facts[0]
    assert isinstance(first, CustomerCreated)
    state = new_customer(first)
    for fact in facts[1:]:
        evolve(state, fact)
    return state


def encoded(state: CustomerState) -> bytes:
    """The state's msgpack, each set's items in sorted order. A set's iteration order depends
    on the process's hash seed and on the set's history, not on its items: a state replayed
    from a snapshot holds `credit_periods_granted` in another order than the live one under
    some seeds (PYTHONHASHSEED=0 failed the credit-note replay property), though the two are
    the same. Dicts keep their order, and Decimals their scale."""
    return msgspec.msgpack.encode(_sets_sorted(state))


def _sets_sorted(value: Any) -> Any:
    if isinstance(value, msgspec.Struct):
        fields = [_sets_sorted(getattr(value, name)) for name in value.__struct_fields__]
        return [type(value).__name__, *fields]
    if isinstance(value, frozenset | set):
        return sorted((_sets_sorted(item) for item in value), key=repr)
    if isinstance(value, dict):
        return {key: _sets_sorted(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_sets_sorted(item) for item in value]
    return value


def snapshot(state: CustomerState) -> CustomerState:
    """The state as a snapshot on disk gives it back."""
    return msgspec.msgpack.decode(msgspec.msgpack.encode(state), type=CustomerState)


def assert_replays(
    facts: list[Fact], state: CustomerState, snapshots: list[tuple[int, CustomerState]], cut: int
) -> None:
    """Replay from zero, and from the snapshot `cut` picks (taken after `position` facts),
    give `state` exactly."""
    assert encoded(replay(facts)) == encoded(state)
    if snapshots:
        position, taken = snapshots[cut % len(snapshots)]
        for fact in facts[position:]:
            evolve(taken, fact)
        assert encoded(taken) == encoded(state)


D = Decimal
