"""OpenMeter entitlement commands (issue 17) and their due transitions: the one entry point
`decide` and `schedule` call. The interface the HTTP layer uses is listed in
docs/openmeter.md, "Entitlements and grants (issue 17, domain)"."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import assert_never

from allotment.domain.context import Outcome, TurnContext
from allotment.domain.facts import Fact
from allotment.domain.om_commands import (
    AccessShown,
    CreateEntitlement,
    DeleteEntitlement,
    IssueGrant,
    OpenMeterCommand,
    OverrideEntitlement,
    ReadAccess,
    ReadEntitlementValue,
    ResetEntitlement,
    ValueShown,
    VoidGrant,
)
from allotment.domain.om_entitlements import create_entitlement, override_entitlement, resolve
from allotment.domain.om_facts import EntitlementDeleted, GrantRecurred
from allotment.domain.om_grants import (
    activation_facts,
    issue_grant,
    next_activation,
    next_recurrence,
    void_grant,
)
from allotment.domain.om_reset import (
    manual_reset,
    next_reset,
    reset_facts,
    scratch_pool,
    set_remaining,
)
from allotment.domain.om_state import pool_denomination
from allotment.domain.om_value import live_value, value_at
from allotment.domain.om_views import derived_access, derived_value, read_only, resolve_derived
from allotment.domain.replies import Done, Rejected, RejectionKind
from allotment.domain.state import CustomerState

__all__ = ("decide_openmeter", "due_transitions")

Apply = Callable[[Fact], None]
Transition = Callable[[CustomerState, TurnContext, Apply], None]
RESET_RANK = 4  # SCH-3 order at one instant: after grant expiry (expired grants never roll over)
ACTIVATION_RANK = 5  # after a reset: a grant effective at a boundary starts the new period whole
RECURRENCE_RANK = 6  # after a reset too: a re-issued grant is whole whatever rollover left


def decide_openmeter(state: CustomerState, command: OpenMeterCommand, ctx: TurnContext) -> Outcome:  # noqa: PLR0911 (one return per command)
    match command:
        case ReadEntitlementValue():
            ent = resolve(state, command.entitlement)
            if ent is None:
                return _derived_value(state, command, ctx)
            at = command.at or ctx.now
            return Outcome(ValueShown(value=value_at(state, ent, at, ctx.now)))
        case ReadAccess():
            at = command.at or ctx.now
            values = {
                ent.definition.feature_key: value_at(state, ent, at, ctx.now)
                if at < ctx.now
                else live_value(state, ent, ctx.now)
                for ent in state.entitlements.values()
                if ent.live
            }
            if at >= ctx.now:  # OM-155: a Tanso plan's views have no past
                values = derived_access(state, ctx.catalog, values)
            return Outcome(AccessShown(values=values))
        case CreateEntitlement():
            return create_entitlement(state, command, ctx)
        case OverrideEntitlement():
            if resolve(state, command.entitlement) is None:
                refused = _read_only(state, command.entitlement, ctx)
                if refused is not None:
                    return refused
            return override_entitlement(state, command, ctx)
        case VoidGrant():
            return void_grant(state, command, ctx)
        case DeleteEntitlement() | ResetEntitlement() | IssueGrant():
            return _on_live(state, command, ctx)
        case _:
            assert_never(command)


def _on_live(
    state: CustomerState,
    command: DeleteEntitlement | ResetEntitlement | IssueGrant,
    ctx: TurnContext,
) -> Outcome:
    """Commands on a live entitlement (by id or feature key): 404 for any other."""
    ent = resolve(state, command.entitlement)
    if ent is None:
        return _read_only(state, command.entitlement, ctx) or _not_found()
    if not ent.live:
        return _not_found()
    match command:
        case DeleteEntitlement():
            return Outcome(Done(), [EntitlementDeleted(at=ctx.now, entitlement_id=ent.id)])
        case ResetEntitlement():
            return manual_reset(state, ent, command, ctx)
        case IssueGrant():
            return issue_grant(state, ent, command, ctx)
        case _:
            assert_never(command)


def due_transitions(state: CustomerState) -> list[tuple[datetime, int, Transition]]:
    """The earliest automatic reset (OM-94) and grant activation (OM-88), if any."""
    found: list[tuple[datetime, int, Transition]] = []
    reset = next_reset(state)
    if reset is not None:
        found.append((reset[0], RESET_RANK, _reset(reset[1].id, reset[0])))
    activation = next_activation(state)
    if activation is not None:
        at, ent, grant = activation
        found.append((at, ACTIVATION_RANK, _activate(ent.id, grant.id.hex, at)))
    recurrence = next_recurrence(state)
    if recurrence is not None:
        at, ent, grant = recurrence
        found.append((at, RECURRENCE_RANK, _recur(ent.id, grant.id.hex, at)))
    return found


def _recur(entitlement_id: str, grant_hex: str, at: datetime) -> Transition:
    """OM-85: a recurring grant's remaining credits become its amount again."""

    def run(state: CustomerState, ctx: TurnContext, apply: Apply) -> None:
        ent = state.entitlements[entitlement_id]
        grant = next(g for g in ent.grants.values() if g.id.hex == grant_hex)
        scratch = scratch_pool(state.pools[pool_denomination(ent.id)])
        adjusted = set_remaining(ctx, scratch, grant, at, grant.amount, "OpenMeter recurrence")
        if adjusted is not None:
            apply(adjusted)
        apply(GrantRecurred(at=at, entitlement_id=ent.id, grant_id=grant.id))

    return run


def _reset(entitlement_id: str, at: datetime) -> Transition:
    def run(state: CustomerState, ctx: TurnContext, apply: Apply) -> None:
        ent = state.entitlements[entitlement_id]
        assert ent.anchor is not None
        preserve = ent.definition.preserve_overage_at_reset
        for fact in reset_facts(state, ent, ctx, at, at, ent.anchor, preserve, automatic=True):
            apply(fact)

    return run


def _activate(entitlement_id: str, grant_hex: str, at: datetime) -> Transition:
    def run(state: CustomerState, ctx: TurnContext, apply: Apply) -> None:
        ent = state.entitlements[entitlement_id]
        grant = next(g for g in ent.grants.values() if g.id.hex == grant_hex)
        pool = state.pools[pool_denomination(ent.id)]
        for fact in activation_facts(pool.id, pool.denomination, pool.balance, grant, ctx, at):
            apply(fact)

    return run


def _derived_value(
    state: CustomerState, command: ReadEntitlementValue, ctx: TurnContext
) -> Outcome:
    """OM-153: a Tanso plan's view answers now only: the plan's terms and counters keep no
    past the way an entitlement's log does (400 `at`, the wire's `time`)."""
    view = resolve_derived(state, ctx.catalog, command.entitlement)
    if view is None:
        return _not_found()
    if command.at is not None and command.at < ctx.now:
        message = "a Tanso plan's entitlement answers at the present only."
        return Outcome(Rejected(kind=RejectionKind.INVALID, message=message, field="at"))
    return Outcome(ValueShown(value=derived_value(state, ctx.catalog, view)))


def _read_only(state: CustomerState, entitlement: str, ctx: TurnContext) -> Outcome | None:
    """OM-157: a write naming a Tanso plan's view (and no native entitlement) is refused as
    read-only; None when it names no view either."""
    view = resolve_derived(state, ctx.catalog, entitlement)
    return None if view is None else Outcome(read_only(view))


def _not_found() -> Outcome:
    return Outcome(
        Rejected(
            kind=RejectionKind.NOT_FOUND, message="Entitlement not found.", field="entitlement"
        )
    )
