"""`ShardReads`: what a `LocalShard` answers without a write of its own, as a mixin.

The lookups (`find`, `customer_count`, `states`, `plans_in_use`, the `price_table` in force,
the `next_timer`) and the `Shard` protocol's reads: one customer's state projected inside a
turn (`read`, `read_on_owner`, whose catch-up may still journal what came due), and the
environment's lists (`all_customers`, `find_customers`, `recent_denials`,
`list_unapplied_payments`). `LocalShard` (runtime/local_shard.py) holds the parts they read
and the context a turn runs in.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from allotment.domain.catalog import Catalog
from allotment.domain.context import TurnContext
from allotment.domain.cost import PriceTable
from allotment.domain.payment_records import PaymentRecord
from allotment.domain.state import CustomerState
from allotment.persistence.store_ports import AuditRecord
from allotment.runtime.actor import CustomerActor
from allotment.runtime.denials import RecentDenials
from allotment.runtime.directory import CustomerDirectory
from allotment.runtime.openmeter import OpenMeterDesk
from allotment.runtime.payments import EnvironmentPayments, unapplied_payments
from allotment.runtime.ports import CustomerLookup, CustomerPage, CustomerSearch, Projector
from allotment.runtime.prices import ShardPrices
from allotment.runtime.timers import Timers
from allotment.runtime.turns import Turns

__all__ = ("ShardReads",)

T = TypeVar("T")


class ShardReads:
    """The reads of `LocalShard`, its base class (see the module's doc)."""

    catalog: Catalog
    directory: CustomerDirectory
    turns: Turns
    denials: RecentDenials
    environment_payments: EnvironmentPayments
    openmeter: OpenMeterDesk
    prices: ShardPrices
    timers: Timers

    if TYPE_CHECKING:  # LocalShard's

        def now(self) -> datetime: ...

        def context(
            self, catalog: Catalog | None = None, now: datetime | None = None
        ) -> TurnContext: ...

    def find(self, lookup: CustomerLookup) -> CustomerActor | None:
        return self.directory.find(lookup)

    def customer_count(self) -> int:
        return len(self.directory)

    def states(self) -> list[CustomerState]:
        return list(self.directory.states())

    def each_state(self) -> Iterator[CustomerState]:
        """`states` one at a time: cold customers are decoded only while the caller needs
        them (a full list at 1M customers would decode them all at once)."""
        return self.directory.states()

    @property
    def plans_in_use(self) -> set[uuid.UUID]:
        return self.directory.plans_in_use

    @property
    def price_table(self) -> PriceTable:
        return self.prices.current

    def next_timer(self) -> datetime | None:
        return self.timers.next_at()

    async def read_on_owner(self, entity_id: uuid.UUID, projector: Projector[T]) -> T | None:
        """Project the state of the customer owning a subscription or invoice."""
        actor = self.directory.owner(entity_id)
        if actor is None:
            return None
        return await self.read(CustomerLookup(customer_id=actor.state.id), projector)

    async def read(self, lookup: CustomerLookup, projector: Projector[T]) -> T | None:
        """Project one customer's state inside a turn; None when there is no such customer."""
        self.turns.admit(write=False)
        actor = self.directory.find(lookup)
        if actor is None:
            return None
        ctx = self.context()
        _, position = self.turns.applying(actor, lambda applied: actor.catch_up(ctx, applied))
        view = projector(actor.state, self.catalog, ctx.now)
        if position:  # the view may show ids minted by catch-up: they must survive a crash
            await self.turns.durable(position)
        return view

    async def list_unapplied_payments(self) -> list[PaymentRecord]:
        """Every unapplied payment of the environment, oldest first (MNY-C3)."""
        self.turns.admit(write=False)
        return unapplied_payments(self.environment_payments, self.directory)

    async def all_customers(self, projector: Projector[T]) -> list[T]:
        return self.openmeter.all_customers(projector)

    async def find_customers(
        self, search: CustomerSearch, projector: Projector[T]
    ) -> CustomerPage[T]:
        self.turns.admit(write=False)
        start = search.start()
        total, actors = self.directory.search(search.text, start, search.limit)
        now = self.now()
        items = [projector(actor.state, self.catalog, now) for actor in actors]
        end = start + len(items)
        return CustomerPage(total=total, items=items, next=str(end) if end < total else "")

    async def recent_denials(self, lookup: CustomerLookup, limit: int) -> list[AuditRecord]:
        self.turns.admit(write=False)
        actor = self.directory.find(lookup)
        return self.denials.of_customer(actor.state.id, limit) if actor is not None else []
