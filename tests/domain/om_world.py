"""Helpers for OpenMeter entitlement domain tests: one customer of the demo catalog with
entitlements on its `api_calls` feature, driven through the actor's turn."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from allotment.domain.commands import RecordUsage
from allotment.domain.om_commands import (
    CreateEntitlement,
    EntitlementShown,
    EntitlementValue,
    GrantShown,
    IssueGrant,
    ReadEntitlementValue,
    ValueShown,
)
from allotment.domain.om_state import EntitlementKind, OmEntitlement, pool_denomination
from allotment.domain.replies import UsageAccepted
from tests.domain.harness import World

FEATURE = "api_calls"


class OmWorld(World):
    """A World with shorthands for entitlements, grants, usage and values."""

    events = 0

    def create(self, **fields: Any) -> str:
        fields.setdefault("feature_key", FEATURE)
        fields.setdefault("kind", EntitlementKind.METERED)
        if fields["kind"] is EntitlementKind.METERED:
            fields.setdefault("usage_period", "MONTH")
        reply = self.run(CreateEntitlement(**fields))
        assert isinstance(reply, EntitlementShown), reply
        return reply.definition.id

    def grant(self, entitlement: str, amount: int | Decimal, **fields: Any) -> GrantShown:
        fields.setdefault("effective_at", self.now)
        reply = self.run(IssueGrant(entitlement=entitlement, amount=Decimal(amount), **fields))
        assert isinstance(reply, GrantShown), reply
        return reply

    def use(self, units: int | Decimal, occurred_at: datetime | None = None) -> None:
        self.events += 1
        reply = self.run(
            RecordUsage(
                idempotency_key=f"e{self.events}",
                event_name="call",
                feature_key=FEATURE,
                occurred_at=occurred_at or self.now,
                units=Decimal(units),
            )
        )
        assert isinstance(reply, UsageAccepted), reply

    def value(self, entitlement: str, at: datetime | None = None) -> EntitlementValue:
        reply = self.run(ReadEntitlementValue(entitlement=entitlement, at=at))
        assert isinstance(reply, ValueShown), reply
        return reply.value

    def entitlement(self, entitlement: str) -> OmEntitlement:
        return self.state.entitlements[entitlement]

    def remaining(self, entitlement: str) -> dict[str, Decimal]:
        """Each live grant's remaining credits in the pool, by public id, in burn order."""
        ent = self.entitlement(entitlement)
        by_id = {g.id: g.public_id for g in ent.grants.values()}
        pool = self.state.pools[pool_denomination(entitlement)]
        return {by_id[g.id]: g.remaining for g in pool.grants}
