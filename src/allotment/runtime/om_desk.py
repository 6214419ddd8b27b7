"""OpenMeter entitlements into a shard (issue 17, docs/openmeter.md OM-107, OM-108): find the
customer a request names, by customer id or key, by subject key, or by an entitlement id
through the environment's index (`CustomerDirectory.entitlement_owner`, rebuilt on
recovery) or a grant id through its own (`grant_owner`, OM-121), then run the om_* command
as one turn of that customer's actor."""

from __future__ import annotations

import contextlib
import uuid
from typing import TYPE_CHECKING, TypeVar

from allotment.domain.om_commands import OpenMeterCommand
from allotment.domain.om_views import parse_derived_id
from allotment.domain.replies import Rejected, RejectionKind, Reply
from allotment.runtime.actor import CustomerActor
from allotment.runtime.ports import CustomerLookup, OmTarget, OmView

if TYPE_CHECKING:
    from allotment.runtime.directory import CustomerDirectory
    from allotment.runtime.local_shard import LocalShard

__all__ = ("OmDesk",)

T = TypeVar("T")
_UUID_TEXT_MIN = 32  # hex digits without hyphens; uuid.UUID takes nothing shorter


class OmDesk:
    """The OpenMeter entitlement paths of one shard."""

    __slots__ = ("_shard",)

    def __init__(self, shard: LocalShard) -> None:
        self._shard = shard

    async def turn(
        self, target: OmTarget, command: OpenMeterCommand | None, view: OmView[T]
    ) -> T | Rejected:
        """`command` on the target's actor (None: catch up only), then `view` once durable."""
        shard = self._shard
        shard.turns.admit(write=command is not None)
        actor = self.find(target)
        if isinstance(actor, Rejected):
            return actor
        ctx = shard.context()
        reply: Reply | None = None
        if command is None:
            _, position = shard.turns.applying(actor, lambda applied: actor.catch_up(ctx, applied))
        else:
            reply, position = shard.turns.run(actor, command, ctx)
            if isinstance(reply, Rejected):  # a refused command applied no fact of its own
                if position:
                    await shard.turns.durable(position)
                return reply
        result = view(actor.state, reply, ctx.now)
        if position:  # what the view shows, catch-up included, must survive a crash
            await shard.turns.durable(position)
        return result

    def find(self, target: OmTarget) -> CustomerActor | Rejected:
        """The live customer `target` names (OM-107), or NOT_FOUND naming the path field."""
        directory = self._shard.directory
        if target.entitlement_id is not None:
            actor = directory.entitlement_owner(target.entitlement_id) or _derived_owner(
                directory, target.entitlement_id
            )
            return actor if actor is not None else _missing("entitlementId")
        if target.grant_id is not None:
            actor = directory.grant_owner(target.grant_id)
            return actor if actor is not None else _missing("grantId")
        if target.subject is not None:
            actor = directory.by_subject(target.subject) or self._by_id_or_key(target.subject)
            return actor if actor is not None else _missing("subjectIdOrKey")
        assert target.customer is not None
        actor = self._by_id_or_key(target.customer)
        return actor if actor is not None else _missing("customerIdOrKey")

    def _by_id_or_key(self, id_or_key: str) -> CustomerActor | None:
        """A customer by allotment id or key, unless deleted through OpenMeter (OM-24)."""
        lookup = CustomerLookup(external_id=id_or_key)
        # A key shorter than any UUID's text skips the parse and its exception: the value
        # read (OM-138) is a hot path.
        if len(id_or_key) >= _UUID_TEXT_MIN:
            with contextlib.suppress(ValueError):
                lookup = CustomerLookup(customer_id=uuid.UUID(id_or_key))
        actor = self._shard.directory.find(lookup)
        if actor is None:
            return None
        details = actor.state.openmeter
        return None if details is not None and details.deleted_at is not None else actor


def _derived_owner(directory: CustomerDirectory, entitlement_id: str) -> CustomerActor | None:
    """OM-151: a Tanso plan's view is named by its subscription's id, whose owner the
    directory knows; the view itself is resolved in the customer's state."""
    parsed = parse_derived_id(entitlement_id)
    return None if parsed is None else directory.owner(parsed[0])


def _missing(field: str) -> Rejected:
    what = {"entitlementId": "entitlement", "subjectIdOrKey": "subject", "grantId": "grant"}.get(
        field, "customer"
    )
    return Rejected(kind=RejectionKind.NOT_FOUND, message=f"{field}: no such {what}.", field=field)
