"""`ShardRouter`: one environment's customers split over N shards, behind the `Shard` protocol.

The front door talks to a router exactly as to one shard (no route changes). A call naming
one customer goes to that customer's shard alone, found in O(1) from the call's arguments
(runtime/placement.py: the reference id's hash, or the tag in a minted id; SCL-1..SCL-6); a
cross-customer read scatters to every shard and gathers (SCL-10..SCL-12); a catalog or price
change is broadcast under a new catalog version, and a shard refuses a call stamped with an
older version than its own, which the router retries once the change is everywhere
(runtime/catalog_versions.py, SCL-13..SCL-16). docs/scale-out.md explains the choices.

The class is built in layers, one concern each: how a call reaches its shards
(runtime/router_reach.py), the calls that first claim a key environment-wide, on its home
shard (runtime/claiming_router.py, SCL-81..SCL-88), and here every call that needs no claim.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import TypeVar

from allotment.domain.catalog import Catalog
from allotment.domain.catalog_facts import CatalogUpdated
from allotment.domain.commands import Command
from allotment.domain.cost import PriceTable
from allotment.domain.credit_note_commands import CreateCreditNote, CreditNoteCommand
from allotment.domain.om_commands import OpenMeterCommand
from allotment.domain.payment_records import PaymentRecord
from allotment.domain.replies import Decision, Rejected, Reply
from allotment.domain.state import CustomerState, OpenMeterDetails, Profile
from allotment.runtime.broadcast_change import Alike
from allotment.runtime.claiming_router import ClaimingRouter
from allotment.runtime.ports import (
    AuditRecord,
    CatalogChange,
    CustomerLookup,
    CustomerPage,
    CustomerSearch,
    OmTarget,
    OmView,
    Projector,
)
from allotment.runtime.records import EvaluationContext
from allotment.runtime.sharded_search import ShardedSearch, could_be_email

__all__ = ("ShardRouter",)

T = TypeVar("T")


class ShardRouter(ClaimingRouter):
    """The `Shard` of one environment whose customers live on `members` (SCL-2)."""

    # -- the Shard protocol: one customer --------------------------------------------------------

    @property
    def catalog(self) -> Catalog:
        return self.versions.catalog

    def customer_count(self) -> int:
        return sum(member.customer_count() for member in self.members)

    async def create_customer(self, external_id: str, profile: Profile) -> Reply:
        index = self.routes.of_reference(external_id)
        return await self._on(index, lambda s: s.create_customer(external_id, profile))

    async def command(self, lookup: CustomerLookup, command: Command) -> Reply:
        index = await self._find(lookup)
        if index is None:
            return await self._on(0, lambda s: s.command(lookup, command))  # its NOT_FOUND
        return await self._on(index, lambda s: s.command(lookup, command))

    async def command_on_owner(self, entity_id: uuid.UUID, command: Command, missing: str) -> Reply:
        index = self.routes.of_id(entity_id)
        return await self._on(index, lambda s: s.command_on_owner(entity_id, command, missing))

    async def evaluate(
        self, external_id: str, feature_key: str, requested: Decimal | None,
        audit: EvaluationContext,
    ) -> Decision:  # fmt: skip
        index = self.routes.of_reference(external_id)
        return await self._on(index, lambda s: s.evaluate(external_id, feature_key, requested,
                                                           audit))  # fmt: skip

    async def read(self, lookup: CustomerLookup, projector: Projector[T]) -> T | None:
        index = await self._find(lookup)
        if index is None:
            return None
        return await self._on(index, lambda s: s.read(lookup, projector))

    async def read_on_owner(self, entity_id: uuid.UUID, projector: Projector[T]) -> T | None:
        index = self.routes.of_id(entity_id)
        return await self._on(index, lambda s: s.read_on_owner(entity_id, projector))

    async def credit_note(self, command: CreditNoteCommand) -> Reply:
        entity = command.invoice_id if isinstance(command, CreateCreditNote) else command.note_id
        return await self._on(self.routes.of_id(entity), lambda s: s.credit_note(command))

    # -- the environment: broadcast (SCL-13) and scatter-gather (SCL-10) -------------------------

    async def upsert_catalog(self, update: CatalogUpdated) -> Catalog:
        return await self.versions.broadcast(lambda s: s.upsert_catalog(update))

    async def change_catalog(self, change: CatalogChange) -> Catalog:
        """Every shard decides the same fact: one time, the same new ids (a meter, feature or
        rule has one id environment-wide)."""
        alike = Alike(change, None if self._now is None else self._now())
        return await self.versions.broadcast(lambda s: s.change_catalog(alike))

    @property
    def price_table(self) -> PriceTable:
        return self.members[0].price_table

    async def replace_prices(self, table: PriceTable) -> PriceTable:
        tables = await self.versions.broadcast_all(lambda s: s.replace_prices(table))
        return tables[0]

    async def record_unapplied_payment(self, record: PaymentRecord) -> PaymentRecord:
        """Kept by the shard its checkout session places (SCL-9), so a retry finds it."""
        index = self.routes.of_reference("payment\x00" + record.payment.session_id)
        return await self._on(index, lambda s: s.record_unapplied_payment(record))

    async def list_unapplied_payments(self) -> list[PaymentRecord]:
        lists = await self._gather(lambda s: s.list_unapplied_payments())
        return sorted((r for records in lists for r in records), key=_recorded_at)

    async def all_customers(self, projector: Projector[T]) -> list[T]:
        """Every shard's customers, merged back into creation order (SCL-11)."""

        def stamped(state: CustomerState, catalog: Catalog, now: datetime) -> tuple[
            datetime, int, T]:  # fmt: skip
            return state.created_at, state.id.int, projector(state, catalog, now)

        lists = await self._gather(lambda s: s.all_customers(stamped))
        return [view for _, _, view in sorted((r for rows in lists for r in rows),
                                              key=lambda row: row[:2])]  # fmt: skip

    async def find_customers(
        self, search: CustomerSearch, projector: Projector[T]
    ) -> CustomerPage[T]:
        """A reference id from its own shard; an email or the whole list from every shard,
        their pages merged, the next page's cursor one position per shard (SCL-100)."""
        if search.text and not could_be_email(search.text):
            index = self.routes.of_reference(search.text)
            return await self._on(index, lambda s: s.find_customers(search, projector))
        merging = ShardedSearch(search, projector, len(self.members))
        keyed = merging.keyed()
        pages = await self._gather_each(lambda i, s: s.find_customers(merging.part(i), keyed))
        return merging.merge(pages)

    async def recent_denials(self, lookup: CustomerLookup, limit: int) -> list[AuditRecord]:
        """From the customer's shard alone: its checks all ran there (SCL-101)."""
        index = await self._find(lookup)
        if index is None:
            return []
        return await self._on(index, lambda s: s.recent_denials(lookup, limit))

    # -- OpenMeter ---------------------------------------------------------------------------------

    async def create_openmeter_customer(
        self, key: str | None, details: OpenMeterDetails, projector: Projector[T]
    ) -> T | Rejected:
        index = self.routes.of_new_customer(key)
        view = await self._on(index, lambda s: s.create_openmeter_customer(key, details,
                                                                            projector))  # fmt: skip
        if not isinstance(view, Rejected):
            for subject in details.subject_keys:
                self.routes.subjects[subject] = index  # SCL-6
        return view

    async def update_openmeter_customer(
        self,
        lookup: CustomerLookup,
        change: Callable[[CustomerState, datetime], OpenMeterDetails],
        projector: Projector[T],
    ) -> T | Rejected:
        index = await self._find(lookup) or 0
        return await self._on(index, lambda s: s.update_openmeter_customer(lookup, change,
                                                                            projector))  # fmt: skip

    async def openmeter_turn(
        self, target: OmTarget, command: OpenMeterCommand | None, view: OmView[T]
    ) -> T | Rejected:
        index = self.routes.of_om_target(target)
        return await self._on(index, lambda s: s.openmeter_turn(target, command, view))


def _recorded_at(record: PaymentRecord) -> datetime:
    return record.recorded_at
