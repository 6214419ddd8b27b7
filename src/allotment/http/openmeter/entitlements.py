"""OpenMeter entitlements of one customer (OM-107..OM-117): create, list, get, delete, override
and reset, on the deprecated v1 subject paths (`/api/v1/subjects/{subjectIdOrKey}/...`) and
the v2 customer paths (`/api/v2/customers/{customerIdOrKey}/...`). Each change is one turn of
the customer's actor (om_targets.py); the environment-wide listings are entitlement_lists.py."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar import Response, delete, get, post, put
from litestar.params import FromPath

from allotment.domain.catalog import Catalog
from allotment.domain.om_commands import (
    DeleteEntitlement,
    EntitlementShown,
    OverrideEntitlement,
)
from allotment.domain.om_entitlements import resolve
from allotment.domain.replies import Reply
from allotment.domain.state import CustomerState
from allotment.http.context import AnyRequest, shard_of
from allotment.http.openmeter.derived_entitlements import derived_json, one_derived_json
from allotment.http.openmeter.entitlement_wire import (
    EntitlementCreate,
    ResetBody,
    create_command,
    entitlement_json,
    reset_command,
)
from allotment.http.openmeter.om_targets import (
    OmTarget,
    customer_target,
    om_read,
    om_turn,
    subject_target,
)
from allotment.http.openmeter.problems import PROBLEMS, not_found
from allotment.http.openmeter.wire import Page, decode, flag, json, order_and_page

__all__ = ("SORT_KEYS", "V1_ROUTES", "V2_ROUTES")

SORT_KEYS = {"createdAt": lambda e: e["createdAt"], "updatedAt": lambda e: e["updatedAt"]}


# -- shared steps ------------------------------------------------------------------------------


def _shown(v2: bool) -> Any:
    """The view of a create or override: the entitlement the turn made."""

    def view(state: CustomerState, reply: Reply | None, now: datetime) -> dict[str, Any]:
        assert isinstance(reply, EntitlementShown)
        return entitlement_json(state, state.entitlements[reply.definition.id], now, v2=v2)

    return view


def _one(entitlement: str, v2: bool, catalog: Catalog) -> Any:
    """The view of a get: the customer's entitlement by id (deleted ones too) or the live one
    of a feature key, else a Tanso plan's read-only view (OM-151); 404 naming the path's
    field when the customer has none such."""

    def view(state: CustomerState, _reply: Reply | None, now: datetime) -> dict[str, Any]:
        ent = resolve(state, entitlement)
        if ent is None:
            derived = one_derived_json(state, catalog, entitlement, now, v2=v2)
            if derived is None:
                raise not_found("entitlement", entitlement)
            return derived
        return entitlement_json(state, ent, now, v2=v2)

    return view


def _all(include_deleted: bool, v2: bool, catalog: Catalog) -> Any:
    """The customer's entitlements, then its Tanso plans' read-only views (OM-150)."""

    def view(state: CustomerState, _reply: Reply | None, now: datetime) -> list[dict[str, Any]]:
        native = [
            entitlement_json(state, ent, now, v2=v2)
            for ent in state.entitlements.values()
            if include_deleted or ent.live
        ]
        return native + derived_json(state, catalog, now, v2=v2)

    return view


def _nothing(_state: CustomerState, _reply: Reply | None, _now: datetime) -> None:
    return None


async def _create(request: AnyRequest, target: OmTarget, v2: bool) -> Response[Any]:
    """OM-112: the body as a command (a bad field refused before any turn), one turn."""
    body = decode(await request.body(), EntitlementCreate)
    command = create_command(body, shard_of(request).catalog)
    return json(await om_turn(request, target, command, _shown(v2)), 201)


async def _override(
    request: AnyRequest, target: OmTarget, entitlement: str, v2: bool
) -> Response[Any]:
    """OM-115: delete and replace in one turn; the replacement is answered (201)."""
    body = decode(await request.body(), EntitlementCreate)
    replacement = create_command(body, shard_of(request).catalog)
    command = OverrideEntitlement(entitlement=entitlement, replacement=replacement)
    return json(await om_turn(request, target, command, _shown(v2)), 201)


async def _reset(request: AnyRequest, target: OmTarget, entitlement: str) -> None:
    """OM-116: a manual reset; an empty body is a reset now."""
    raw = await request.body()
    body = decode(raw, ResetBody) if raw.strip() else ResetBody()
    await om_turn(request, target, reset_command(entitlement, body), _nothing)


# -- v1: the deprecated subject paths ----------------------------------------------------------

_S = "/subjects/{subject_id_or_key:str}/entitlements"


@post(_S, operation_id="createEntitlement", responses=PROBLEMS, status_code=201,
      summary="Create a subject's entitlement")  # fmt: skip
async def create_v1(request: AnyRequest, subject_id_or_key: FromPath[str]) -> Response[Any]:
    """OM-107, OM-112: for the customer claiming the subject key (or with that id or key)."""
    return await _create(request, subject_target(subject_id_or_key), v2=False)


@get(_S, operation_id="listSubjectEntitlements", responses=PROBLEMS,
     summary="List a subject's entitlements")  # fmt: skip
async def list_v1(request: AnyRequest, subject_id_or_key: FromPath[str]) -> Response[Any]:
    """Live entitlements in creation order, deleted ones too with `includeDeleted=true`."""
    deleted = flag(dict(request.query_params), "includeDeleted")
    view = _all(deleted, False, shard_of(request).catalog)
    return json(await om_read(request, subject_target(subject_id_or_key), view))


@get(_S + "/{entitlement_id:str}", operation_id="getEntitlement", responses=PROBLEMS,
     summary="Get a subject's entitlement")  # fmt: skip
async def get_v1(
    request: AnyRequest, subject_id_or_key: FromPath[str], entitlement_id: FromPath[str]
) -> Response[Any]:
    target = subject_target(subject_id_or_key)
    view = _one(entitlement_id, False, shard_of(request).catalog)
    return json(await om_read(request, target, view))


@delete(_S + "/{entitlement_id:str}", operation_id="deleteEntitlement", responses=PROBLEMS,
        status_code=204, summary="Delete a subject's entitlement")  # fmt: skip
async def delete_v1(
    request: AnyRequest, subject_id_or_key: FromPath[str], entitlement_id: FromPath[str]
) -> None:
    """OM-83, OM-114: soft deletion; the entitlement still answers by id, with `deletedAt`."""
    command = DeleteEntitlement(entitlement=entitlement_id)
    await om_turn(request, subject_target(subject_id_or_key), command, _nothing)


@put(_S + "/{entitlement_id_or_feature_key:str}/override", operation_id="overrideEntitlement",
     responses=PROBLEMS, status_code=201, summary="Override a subject's entitlement")  # fmt: skip
async def override_v1(
    request: AnyRequest,
    subject_id_or_key: FromPath[str],
    entitlement_id_or_feature_key: FromPath[str],
) -> Response[Any]:
    target = subject_target(subject_id_or_key)
    return await _override(request, target, entitlement_id_or_feature_key, v2=False)


@post(_S + "/{entitlement_id:str}/reset", operation_id="resetEntitlementUsage",
      responses=PROBLEMS, status_code=204, summary="Reset a subject's entitlement")  # fmt: skip
async def reset_v1(
    request: AnyRequest, subject_id_or_key: FromPath[str], entitlement_id: FromPath[str]
) -> None:
    await _reset(request, subject_target(subject_id_or_key), entitlement_id)


# -- v2: the customer paths --------------------------------------------------------------------

_C = "/customers/{customer_id_or_key:str}/entitlements"
_E = _C + "/{entitlement_id_or_feature_key:str}"


@post(_C, operation_id="createCustomerEntitlementV2", responses=PROBLEMS, status_code=201,
      summary="Create a customer's entitlement")  # fmt: skip
async def create_v2(request: AnyRequest, customer_id_or_key: FromPath[str]) -> Response[Any]:
    return await _create(request, customer_target(customer_id_or_key), v2=True)


@get(_C, operation_id="listCustomerEntitlementsV2", responses=PROBLEMS,
     summary="List a customer's entitlements")  # fmt: skip
async def list_v2(request: AnyRequest, customer_id_or_key: FromPath[str]) -> Response[Any]:
    """A page (OM-3) of the customer's live entitlements, deleted ones too with
    `includeDeleted=true`, ordered by `createdAt` (default) or `updatedAt`."""
    query = dict(request.query_params)
    view = _all(flag(query, "includeDeleted"), True, shard_of(request).catalog)
    items = await om_read(request, customer_target(customer_id_or_key), view)
    page, number, size = order_and_page(items, SORT_KEYS, query, "createdAt")
    return json(Page(totalCount=len(items), page=number, pageSize=size, items=page))


@get(_E, operation_id="getCustomerEntitlementV2", responses=PROBLEMS,
     summary="Get a customer's entitlement")  # fmt: skip
async def get_v2(
    request: AnyRequest,
    customer_id_or_key: FromPath[str],
    entitlement_id_or_feature_key: FromPath[str],
) -> Response[Any]:
    target = customer_target(customer_id_or_key)
    view = _one(entitlement_id_or_feature_key, True, shard_of(request).catalog)
    return json(await om_read(request, target, view))


@delete(_E, operation_id="deleteCustomerEntitlementV2", responses=PROBLEMS, status_code=204,
        summary="Delete a customer's entitlement")  # fmt: skip
async def delete_v2(
    request: AnyRequest,
    customer_id_or_key: FromPath[str],
    entitlement_id_or_feature_key: FromPath[str],
) -> None:
    command = DeleteEntitlement(entitlement=entitlement_id_or_feature_key)
    await om_turn(request, customer_target(customer_id_or_key), command, _nothing)


@put(_E + "/override", operation_id="overrideCustomerEntitlementV2", responses=PROBLEMS,
     status_code=201, summary="Override a customer's entitlement")  # fmt: skip
async def override_v2(
    request: AnyRequest,
    customer_id_or_key: FromPath[str],
    entitlement_id_or_feature_key: FromPath[str],
) -> Response[Any]:
    target = customer_target(customer_id_or_key)
    return await _override(request, target, entitlement_id_or_feature_key, v2=True)


@post(_E + "/reset", operation_id="resetCustomerEntitlementUsageV2", responses=PROBLEMS,
      status_code=204, summary="Reset a customer's entitlement")  # fmt: skip
async def reset_v2(
    request: AnyRequest,
    customer_id_or_key: FromPath[str],
    entitlement_id_or_feature_key: FromPath[str],
) -> None:
    target = customer_target(customer_id_or_key)
    await _reset(request, target, entitlement_id_or_feature_key)


V1_ROUTES = [create_v1, list_v1, get_v1, delete_v1, override_v1, reset_v1]
V2_ROUTES = [create_v2, list_v2, get_v2, delete_v2, override_v2, reset_v2]
