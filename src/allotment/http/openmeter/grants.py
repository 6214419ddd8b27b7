"""OpenMeter grants (docs/openmeter.md OM-120..OM-129): issue and list them on an entitlement
(the deprecated v1 subject paths and the v2 customer paths), list them across the
environment (`GET /api/v1/grants`, `GET /api/v2/grants`) and void one by id
(`DELETE /api/v1/grants/{grantId}`).

A grant is a credit grant of its entitlement's pool, issued and voided as one turn of the
customer's actor (OM-84..OM-89); the customer of a grant id is found in O(1) through the
environment's index (`CustomerDirectory.grant_owner`, OM-121)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

import msgspec
from litestar import Response, delete, get, post
from litestar.params import FromPath

from allotment.domain.catalog import Catalog
from allotment.domain.om_commands import GrantShown, OpenMeterCommand, VoidGrant
from allotment.domain.om_entitlements import resolve
from allotment.domain.om_state import OmEntitlement, current_period
from allotment.domain.replies import Rejected, Reply
from allotment.domain.state import CustomerState
from allotment.http.context import AnyRequest, shard_of
from allotment.http.openmeter.grant_wire import (
    GRANT_SORT,
    GrantRow,
    grant_json,
    issue_command,
)
from allotment.http.openmeter.om_targets import (
    OmTarget,
    OmView,
    customer_target,
    om_read,
    rejection_problem,
    subject_target,
)
from allotment.http.openmeter.problems import PROBLEMS, Problem, bad_request
from allotment.http.openmeter.wire import Page, flag, integer, json, ordered, rfc3339

__all__ = ("create_grant", "create_grant_v2", "list_entitlement_grants",
           "list_entitlement_grants_v2", "list_grants", "list_grants_v2", "void_grant")  # fmt: skip

_PATH: Final = "entitlementIdOrFeatureKey"
_SUBJECT_GRANTS: Final = (
    "/subjects/{subject_id_or_key:str}/entitlements/{entitlement_id_or_feature_key:str}/grants"
)
_CUSTOMER_GRANTS: Final = (
    "/customers/{customer_id_or_key:str}/entitlements/{entitlement_id_or_feature_key:str}/grants"
)


async def _turn(request: AnyRequest, target: OmTarget, command: OpenMeterCommand,
                view: OmView[Any]) -> Any:  # fmt: skip
    """`command` on the target's actor; a rejection as problem+json, the domain's
    `entitlement` named as the path parameter it came from (OM-122)."""
    result = await shard_of(request).openmeter_turn(target, command, view)
    if isinstance(result, Rejected):
        if result.field == "entitlement":
            message = result.message.removeprefix("entitlement: ")
            result = msgspec.structs.replace(result, field=_PATH, message=message)
        raise rejection_problem(result)
    return result


def _rows(state: CustomerState, entitlements: Sequence[OmEntitlement]) -> list[GrantRow]:
    subjects = state.openmeter.subject_keys if state.openmeter else ()
    return [
        GrantRow(
            grant,
            str(state.id),
            state.external_id,
            subjects,
            ent.definition.feature_key,
            ent.deleted_at,
        )
        for ent in entitlements
        for grant in ent.grants.values()
    ]


async def _create(
    request: AnyRequest, target: OmTarget, entitlement: str, v2: bool
) -> Response[Any]:
    """OM-120, OM-122: decode, issue as one turn, answer the grant as the turn left it."""
    command = issue_command(await request.body(), entitlement, v2)
    return json(await _turn(request, target, command, _issued(v2)), 201)


def _issued(v2: bool) -> OmView[dict[str, Any]]:
    def view(state: CustomerState, reply: Reply | None, _now: datetime) -> dict[str, Any]:
        assert isinstance(reply, GrantShown)
        # as the turn left it: activation sets `nextRecurrence` (the reply's is as defined)
        grant = state.entitlements[reply.grant.entitlement_id].grants[reply.grant.id]
        return grant_json(grant, None, v2)

    return view


async def _entitlement_grants(
    request: AnyRequest, target: OmTarget, entitlement: str
) -> list[GrantRow]:
    """The grants of one entitlement (by id or the live one of a feature key), deleted
    ones only with `includeDeleted=true` (OM-124); 404 naming the path parameter."""

    def view(state: CustomerState, _reply: Reply | None, _now: datetime) -> list[GrantRow] | None:
        ent = resolve(state, entitlement)
        return None if ent is None else _rows(state, [ent])

    rows = await om_read(request, target, view)
    if rows is None:
        raise Problem(404, f"{_PATH}: no such entitlement.", ())
    deleted = flag(dict(request.query_params), "includeDeleted")
    return [r for r in rows if deleted or r.deleted_at is None]


# -- v1 (deprecated subject paths) -------------------------------------------------------------


@post(_SUBJECT_GRANTS, operation_id="createGrant", responses=PROBLEMS, status_code=201,
      summary="Create subject entitlement grant")  # fmt: skip
async def create_grant(
    request: AnyRequest,
    subject_id_or_key: FromPath[str],
    entitlement_id_or_feature_key: FromPath[str],
) -> Response[Any]:
    """A grant on a live metered entitlement (OM-120, OM-122); `expiration` required,
    `maxRolloverAmount` 0 unless given."""
    target = subject_target(subject_id_or_key)
    return await _create(request, target, entitlement_id_or_feature_key, v2=False)


@get(_SUBJECT_GRANTS, operation_id="listEntitlementGrants", responses=PROBLEMS,
     summary="List subject entitlement grants")  # fmt: skip
async def list_entitlement_grants(
    request: AnyRequest,
    subject_id_or_key: FromPath[str],
    entitlement_id_or_feature_key: FromPath[str],
) -> Response[Any]:
    """The entitlement's grants as a bare array, by `orderBy` (default updatedAt, OM-125)."""
    target = subject_target(subject_id_or_key)
    rows = await _entitlement_grants(request, target, entitlement_id_or_feature_key)
    everything = ordered(rows, GRANT_SORT, dict(request.query_params), "updatedAt")
    return json([grant_json(r.grant, r.deleted_at, False) for r in everything])


@get("/grants", operation_id="listGrants", responses=PROBLEMS, summary="List grants")
async def list_grants(request: AnyRequest) -> Response[Any]:
    """Every grant of the environment (OM-125), filtered by `feature` (keys) and `subject`
    (subject keys, or customer ids or keys, as `subjectIdOrKey`); a page object with `page`
    or `pageSize`, else an array cut by `offset` and `limit`."""
    query = dict(request.query_params)
    features = set(request.query_params.getall("feature", []))
    subjects = set(request.query_params.getall("subject", []))
    rows = [
        r
        for r in await _all_rows(request)
        if (not features or r.feature_key in features)
        and (not subjects or not subjects.isdisjoint(r.names))
    ]
    if "page" in query or "pageSize" in query:
        return json(_page(rows, query, v2=False))
    everything = ordered(rows, GRANT_SORT, query, "createdAt")
    offset = integer(query, "offset", 0, 0, 1_000_000_000)
    limit = integer(query, "limit", 100, 1, 1000)
    return json([grant_json(r.grant, r.deleted_at, False)
                 for r in everything[offset : offset + limit]])  # fmt: skip


@delete("/grants/{grant_id:str}", operation_id="voidGrant", responses=PROBLEMS, status_code=204,
        summary="Void grant")  # fmt: skip
async def void_grant(request: AnyRequest, grant_id: FromPath[str]) -> None:
    """Void a grant (OM-89, OM-126): what it has left leaves the balance now; what it
    covered stays covered. 404 for an unknown id, 409 for a grant already voided."""
    target = OmTarget(grant_id=grant_id)
    raw_at = request.query_params.get("at")
    if raw_at is not None:
        at = rfc3339("at", raw_at)
        problem = await om_read(request, target, _void_time(grant_id, at))
        if problem is not None:
            raise problem
    await _turn(request, target, VoidGrant(grant=grant_id), lambda _s, _r, _n: None)


def _void_time(grant_id: str, at: datetime) -> OmView[Problem | None]:
    """OM-126: `at` must not be in the future nor before its entitlement's current period."""

    def view(state: CustomerState, _reply: Reply | None, now: datetime) -> Problem | None:
        if at > now:
            return bad_request("at", "must not be in the future")
        for ent in state.entitlements.values():
            if any(g.public_id == grant_id for g in ent.grants.values()):
                period = current_period(ent)
                if period is not None and at < period[0]:
                    return bad_request("at", "must be within the entitlement's current period")
        return None

    return view


# -- v2 (customer paths) -----------------------------------------------------------------------


@post(_CUSTOMER_GRANTS, operation_id="createCustomerEntitlementGrantV2", responses=PROBLEMS,
      status_code=201, summary="Create customer entitlement grant")  # fmt: skip
async def create_grant_v2(
    request: AnyRequest,
    customer_id_or_key: FromPath[str],
    entitlement_id_or_feature_key: FromPath[str],
) -> Response[Any]:
    """A grant on a live metered entitlement (OM-120, OM-122): `expiration` optional (never
    expires), `maxRolloverAmount` the amount unless given."""
    target = customer_target(customer_id_or_key)
    return await _create(request, target, entitlement_id_or_feature_key, v2=True)


@get(_CUSTOMER_GRANTS, operation_id="listCustomerEntitlementGrantsV2", responses=PROBLEMS,
     summary="List customer entitlement grants")  # fmt: skip
async def list_entitlement_grants_v2(
    request: AnyRequest,
    customer_id_or_key: FromPath[str],
    entitlement_id_or_feature_key: FromPath[str],
) -> Response[Any]:
    """The entitlement's grants as a `GrantV2PaginatedResponse` (OM-125)."""
    target = customer_target(customer_id_or_key)
    rows = await _entitlement_grants(request, target, entitlement_id_or_feature_key)
    return json(_page(rows, dict(request.query_params), v2=True))


@get("/grants", operation_id="listGrantsV2", responses=PROBLEMS, summary="List grants (v2)")
async def list_grants_v2(request: AnyRequest) -> Response[Any]:
    """Every grant of the environment as a page object (OM-125), filtered by `feature`
    (keys) and `customer` (ids or keys)."""
    features = set(request.query_params.getall("feature", []))
    customers = set(request.query_params.getall("customer", []))
    rows = [
        r
        for r in await _all_rows(request)
        if (not features or r.feature_key in features)
        and (not customers or r.customer_id in customers or r.customer_key in customers)
    ]
    return json(_page(rows, dict(request.query_params), v2=True))


async def _all_rows(request: AnyRequest) -> list[GrantRow]:
    """Every grant of every customer, deleted ones only with `includeDeleted=true`."""
    deleted = flag(dict(request.query_params), "includeDeleted")

    def rows_of(state: CustomerState, _catalog: Catalog, _now: datetime) -> list[GrantRow]:
        return _rows(state, list(state.entitlements.values())) if state.entitlements else []

    per_customer = await shard_of(request).all_customers(rows_of)
    return [r for rows in per_customer for r in rows if deleted or r.deleted_at is None]


def _page(rows: list[GrantRow], query: dict[str, str], v2: bool) -> Page:
    """A `Grant(V2)PaginatedResponse`: `page`/`pageSize` (OM-3), or `offset`/`limit` when
    only they are given (the page is then the one `offset` starts)."""
    everything = ordered(rows, GRANT_SORT, query, "createdAt")
    if ("offset" in query or "limit" in query) and not ("page" in query or "pageSize" in query):
        size = integer(query, "limit", 100, 1, 1000)
        start = integer(query, "offset", 0, 0, 1_000_000_000)
        number = start // size + 1
    else:
        number = integer(query, "page", 1, 1, 1_000_000)
        size = integer(query, "pageSize", 100, 1, 1000)
        start = (number - 1) * size
    items = [grant_json(r.grant, r.deleted_at, v2) for r in everything[start : start + size]]
    return Page(totalCount=len(rows), page=number, pageSize=size, items=items)
