"""Whose entitlement a request names, and its turn, for every OpenMeter entitlement, grant,
value and notification route of issue 17 (docs/openmeter.md OM-107..OM-109).

- `customer_target(customerIdOrKey)`: the v2 customer paths; an allotment customer id or its
  key (`customerReferenceId`).
- `subject_target(subjectIdOrKey)`: the deprecated v1 subject paths; a subject key some live
  customer claims in `usageAttribution.subjectKeys`, else a customer id or key.
- `entitlement_target(entitlementId)`: `/api/v1/entitlements/{id}` and the like; whichever
  customer of the environment owns it (the runtime's index, rebuilt on recovery).

A customer deleted through OpenMeter (OM-24) answers to none of them. `om_turn` runs an om_*
command on that customer's actor and `om_read` only catches it up; both then apply `view` to
the customer's state (with the turn's reply) and raise the problem+json of a `Rejected`:
INVALID 400, NOT_FOUND 404, CONFLICT 409, naming the rejection's field (OM-109).
"""

from __future__ import annotations

from typing import TypeVar

from allotment.domain.om_commands import OpenMeterCommand
from allotment.domain.replies import Rejected, RejectionKind
from allotment.http.context import AnyRequest, shard_of
from allotment.http.openmeter.problems import FieldError, Problem
from allotment.runtime.ports import OmTarget, OmView

__all__ = (
    "OmTarget",
    "OmView",
    "customer_target",
    "entitlement_target",
    "om_read",
    "om_turn",
    "rejection_problem",
    "subject_target",
    "wire_field",
)

T = TypeVar("T")
_STATUS = {RejectionKind.INVALID: 400, RejectionKind.NOT_FOUND: 404,
           RejectionKind.CONFLICT: 409}  # fmt: skip


def customer_target(customer_id_or_key: str) -> OmTarget:
    """`{customerIdOrKey}` of the v2 paths."""
    return OmTarget(customer=customer_id_or_key)


def subject_target(subject_id_or_key: str) -> OmTarget:
    """`{subjectIdOrKey}` of the deprecated v1 subject paths (OM-107)."""
    return OmTarget(subject=subject_id_or_key)


def entitlement_target(entitlement_id: str) -> OmTarget:
    """The customer owning entitlement `entitlement_id`, deleted or not (OM-108)."""
    return OmTarget(entitlement_id=entitlement_id)


async def om_turn(
    request: AnyRequest, target: OmTarget, command: OpenMeterCommand, view: OmView[T]
) -> T:
    """`command` as one turn of the target's actor, then `view(state, reply, now)` once the
    turn is durable.

    Raises:
        Problem: the target names nobody, or the turn refused (nothing changed).
    """
    result = await shard_of(request).openmeter_turn(target, command, view)
    if isinstance(result, Rejected):
        raise rejection_problem(result)
    return result


async def om_read(request: AnyRequest, target: OmTarget, view: OmView[T]) -> T:
    """`view(state, None, now)` on the target's caught-up state (due resets applied).

    Raises:
        Problem: 404 when the target names nobody.
    """
    result = await shard_of(request).openmeter_turn(target, None, view)
    if isinstance(result, Rejected):
        raise rejection_problem(result)
    return result


def rejection_problem(rejected: Rejected) -> Problem:
    """A domain rejection as problem+json (OM-109): the status of its kind, its message as
    `detail`, and its field in `extensions.validationErrors` (the field without the
    "field: " prefix the domain's messages carry). The domain names fields in its own
    snake_case (`usage_period.interval`); the wire name is its camelCase
    (`usagePeriod.interval`)."""
    if rejected.field is None:
        return Problem(_STATUS[rejected.kind], rejected.message)
    message = rejected.message.removeprefix(f"{rejected.field}: ")
    field = wire_field(rejected.field)
    return Problem(_STATUS[rejected.kind], f"{field}: {message}", (FieldError(field, message),))


def wire_field(domain_field: str) -> str:
    """`usage_period.interval` -> `usagePeriod.interval`: each dotted part in camelCase."""
    return ".".join(_camel(part) for part in domain_field.split("."))


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(word.capitalize() for word in rest)
