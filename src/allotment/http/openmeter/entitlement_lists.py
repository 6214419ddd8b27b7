"""The environment's OpenMeter entitlements (OM-117, OM-108): `GET /api/v1/entitlements`,
`GET /api/v2/entitlements` and, by id whoever owns it, `GET /api/v{1,2}/entitlements/{id}`
(the runtime's entitlement index finds the customer in O(1))."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from litestar import Response, get
from litestar.params import FromPath

from allotment.domain.catalog import Catalog
from allotment.domain.om_state import EntitlementKind
from allotment.domain.replies import Reply
from allotment.domain.state import CustomerState
from allotment.http.context import AnyRequest, shard_of
from allotment.http.openmeter.derived_entitlements import derived_json, one_derived_json
from allotment.http.openmeter.entitlement_values import no_entitlement
from allotment.http.openmeter.entitlement_wire import entitlement_json
from allotment.http.openmeter.entitlements import SORT_KEYS
from allotment.http.openmeter.om_targets import entitlement_target, om_read
from allotment.http.openmeter.problems import PROBLEMS, bad_request
from allotment.http.openmeter.wire import Page, flag, integer, json, order_and_page, ordered

__all__ = ("get_v1", "get_v2", "list_v1", "list_v2")

_TYPES: Final = frozenset(kind.value for kind in EntitlementKind)


class _Filter:
    """The listing's filters: features (keys or ids), types, and whose (subject keys in
    v1; customer keys and ids in v2). Empty means any."""

    def __init__(self, request: AnyRequest, v2: bool) -> None:
        params = request.query_params
        self.features = set(params.getall("feature", []))
        self.types = set(params.getall("entitlementType", []))
        if not self.types <= _TYPES:
            raise bad_request("entitlementType", f"each one of {', '.join(sorted(_TYPES))}")
        if v2:
            self.whose = set(params.getall("customerKeys", []))
            self.whose |= set(params.getall("customerIds", []))
        else:
            self.whose = set(params.getall("subject", []))

    def customer(self, state: CustomerState) -> bool:
        if not self.whose:
            return True
        details = state.openmeter
        names = {str(state.id), state.external_id, *(details.subject_keys if details else ())}
        return not self.whose.isdisjoint(names)

    def entitlement(self, body: dict[str, Any]) -> bool:
        if self.types and body["type"] not in self.types:
            return False
        return not self.features or not self.features.isdisjoint(
            (body["featureKey"], body["featureId"])
        )


async def _everything(request: AnyRequest, v2: bool) -> list[dict[str, Any]]:
    """Every live entitlement of the environment matching the query (no catch-up: a due
    reset shows as the period containing now, OM-111). Deleted ones are never listed; every
    entitlement is active from its creation, so `excludeInactive` excludes nothing more."""
    flag(dict(request.query_params), "excludeInactive")  # checked, else a typo passes silently
    wanted = _Filter(request, v2)

    def project(state: CustomerState, catalog: Catalog, now: datetime) -> list[dict[str, Any]]:
        if not (state.entitlements or state.subscriptions) or not wanted.customer(state):
            return []
        bodies = [entitlement_json(state, e, now, v2=v2) for e in state.entitlements.values()
                  if e.live]  # fmt: skip
        bodies += derived_json(state, catalog, now, v2=v2)  # OM-150: Tanso plans' views
        return [body for body in bodies if wanted.entitlement(body)]

    per_customer = await shard_of(request).all_customers(project)
    return [body for bodies in per_customer for body in bodies]


@get("/entitlements", operation_id="listEntitlements", responses=PROBLEMS,
     summary="List all entitlements")  # fmt: skip
async def list_v1(request: AnyRequest) -> Response[Any]:
    """With `page` or `pageSize` a page object (OM-3); else an array cut by `offset` and
    `limit`, as the document's `ListEntitlementsResult`."""
    items = await _everything(request, v2=False)
    query = dict(request.query_params)
    if "page" in query or "pageSize" in query:
        page, number, size = order_and_page(items, SORT_KEYS, query, "createdAt")
        return json(Page(totalCount=len(items), page=number, pageSize=size, items=page))
    everything = ordered(items, SORT_KEYS, query, "createdAt")
    offset = integer(query, "offset", 0, 0, 1_000_000_000)
    limit = integer(query, "limit", 100, 1, 1000)  # the document's LimitOffset.limit
    return json(everything[offset : offset + limit])


@get("/entitlements", operation_id="listEntitlementsV2", responses=PROBLEMS,
     summary="List all entitlements (v2)")  # fmt: skip
async def list_v2(request: AnyRequest) -> Response[Any]:
    """Always a page object (OM-3)."""
    items = await _everything(request, v2=True)
    page, number, size = order_and_page(items, SORT_KEYS, dict(request.query_params), "createdAt")
    return json(Page(totalCount=len(items), page=number, pageSize=size, items=page))


def _by_id(entitlement_id: str, v2: bool, catalog: Catalog) -> Any:
    def view(state: CustomerState, _reply: Reply | None, now: datetime) -> dict[str, Any]:
        ent = state.entitlements.get(entitlement_id)
        if ent is not None:
            return entitlement_json(state, ent, now, v2=v2)
        # OM-151: found by its subscription's owner; gone once the plan no longer governs
        derived = one_derived_json(state, catalog, entitlement_id, now, v2=v2)
        if derived is None:  # as the directory's own 404 reads (OM-109)
            raise no_entitlement("entitlementId")
        return derived

    return view


@get("/entitlements/{entitlement_id:str}", operation_id="getEntitlementById",
     responses=PROBLEMS, summary="Get an entitlement by id")  # fmt: skip
async def get_v1(request: AnyRequest, entitlement_id: FromPath[str]) -> Response[Any]:
    """OM-108: whichever customer owns it, deleted ones included (with `deletedAt`)."""
    target = entitlement_target(entitlement_id)
    view = _by_id(entitlement_id, False, shard_of(request).catalog)
    return json(await om_read(request, target, view))


@get("/entitlements/{entitlement_id:str}", operation_id="getEntitlementByIdV2",
     responses=PROBLEMS, summary="Get an entitlement by id (v2)")  # fmt: skip
async def get_v2(request: AnyRequest, entitlement_id: FromPath[str]) -> Response[Any]:
    target = entitlement_target(entitlement_id)
    view = _by_id(entitlement_id, True, shard_of(request).catalog)
    return json(await om_read(request, target, view))
