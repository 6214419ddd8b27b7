"""Customers (OM-20..OM-25): `GET/POST /api/v1/customers`, `GET/PUT/DELETE
/api/v1/customers/{customerIdOrKey}`. An OpenMeter customer IS an allotment customer: `key` is
its `customerReferenceId`, `id` its allotment UUID, and every customer of the environment,
whichever API created it, is listed here (docs/openmeter.md, "Customers")."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Final

import msgspec
from litestar import Response, delete, get, post, put
from litestar.params import FromPath

from allotment.domain.catalog import Catalog, stable_id
from allotment.domain.reference_ids import reference_id_problem
from allotment.domain.replies import Rejected
from allotment.domain.state import CustomerState, OpenMeterDetails
from allotment.http.context import AnyRequest, shard_of
from allotment.http.openmeter.problems import PROBLEMS, bad_request, not_found
from allotment.http.openmeter.wire import (
    Page,
    decode,
    flag,
    json,
    order_and_page,
    problem_of,
)
from allotment.runtime.ports import CustomerLookup

__all__ = ("create_customer", "customer_json", "delete_customer", "get_customer",
           "list_customers", "update_customer")  # fmt: skip

_Text = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


class _Attribution(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    subjectKeys: list[Annotated[str, msgspec.Meta(min_length=1)]]


class _CustomerBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`CustomerCreate` and `CustomerReplaceUpdate` (the same fields)."""

    name: _Text
    key: _Text | None = None
    description: Annotated[str, msgspec.Meta(max_length=1024)] | None = None
    metadata: dict[str, str] | None = None
    usageAttribution: _Attribution | None = None
    primaryEmail: str | None = None
    currency: Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$")] | None = None
    billingAddress: Any = None

    def details(self, deleted_at: datetime | None = None) -> OpenMeterDetails:
        if self.billingAddress is not None:
            raise bad_request("billingAddress", "not supported yet")
        keys = tuple(self.usageAttribution.subjectKeys) if self.usageAttribution else ()
        if len(set(keys)) != len(keys):
            raise bad_request("usageAttribution.subjectKeys", "holds a key twice")
        return OpenMeterDetails(
            name=self.name,
            subject_keys=keys,
            description=self.description,
            currency=self.currency,
            metadata=self.metadata,
            primary_email=self.primaryEmail,
            deleted_at=deleted_at,
        )


def customer_json(state: CustomerState, _catalog: Catalog, _now: datetime) -> dict[str, Any]:
    """The document's `Customer` for any allotment customer (OM-25): one created through the
    Tanso API shows its profile's name (or its key) and no subject keys."""
    details = state.openmeter
    profile = state.profile
    full_name = " ".join(p for p in (profile.first_name, profile.last_name) if p)
    name = details.name if details else full_name or state.external_id or str(state.id)
    body: dict[str, Any] = {
        "id": str(state.id),
        "name": name,
        "createdAt": state.created_at,
        "updatedAt": state.modified_at,
        "usageAttribution": {"subjectKeys": list(details.subject_keys) if details else []},
    }
    optional = {
        "key": state.external_id,
        "description": details.description if details else None,
        "metadata": details.metadata if details else None,
        "currency": details.currency if details else None,
        "primaryEmail": (details.primary_email if details else None) or profile.email,
        "deletedAt": details.deleted_at if details else None,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    return body


@post(
    "/customers",
    operation_id="openMeterCreateCustomer",
    responses=PROBLEMS,
    status_code=201,
    summary="Create customer",
)
async def create_customer(request: AnyRequest) -> Response[Any]:
    """A new customer (OM-20); 409 when the key or a subject key is taken (OM-21)."""
    body = decode(await request.body(), _CustomerBody)
    if body.key is not None and (problem := reference_id_problem(body.key)):
        raise bad_request("key", problem)
    details = body.details()
    _identified(body.key, details)
    reply = await shard_of(request).create_openmeter_customer(body.key, details, customer_json)
    if isinstance(reply, Rejected):
        raise problem_of(reply)
    return json(reply, 201)


_SORT: Final[dict[str, Callable[[dict[str, Any]], Any]]] = {
    "id": lambda c: c["id"],
    "name": lambda c: c["name"],
    "createdAt": lambda c: c["createdAt"],
}


@get(
    "/customers",
    operation_id="openMeterListCustomers",
    responses=PROBLEMS,
    summary="List customers",
)
async def list_customers(request: AnyRequest) -> Response[Any]:
    """Every customer of the environment, paged (OM-3, OM-25); filters `key`, `name`,
    `primaryEmail` and `subject` (partial, any case) and `planKey` (a live subscription to
    the plan), deleted ones with `includeDeleted=true`."""
    query = dict(request.query_params)
    plan = query.get("planKey")
    plan_id = stable_id("plan", plan) if plan is not None else None
    deleted = flag(query, "includeDeleted")
    customers = [
        c
        for c, plans in await shard_of(request).all_customers(_listed)
        if (deleted or "deletedAt" not in c)
        and _matches(c, query)
        and (plan_id is None or plan_id in plans)
    ]
    page, number, size = order_and_page(customers, _SORT, query, "createdAt")
    return json(Page(totalCount=len(customers), page=number, pageSize=size, items=page))


def _listed(
    state: CustomerState, catalog: Catalog, now: datetime
) -> tuple[dict[str, Any], frozenset[uuid.UUID]]:
    """A customer as listed, with the plans of its live subscriptions (for `planKey`)."""
    plans = frozenset(s.plan_id for s in state.subscriptions.values() if s.live)
    return customer_json(state, catalog, now), plans


def _matches(customer: dict[str, Any], query: dict[str, str]) -> bool:
    """The document's filters: `key`, `name`, `primaryEmail` and `subject` (any of the
    customer's subject keys) are case-insensitive partial matches."""
    for name in ("key", "name", "primaryEmail"):
        wanted = query.get(name)
        if wanted is not None and wanted.lower() not in str(customer.get(name, "")).lower():
            return False
    subject = query.get("subject")
    keys = customer["usageAttribution"]["subjectKeys"]
    return subject is None or any(subject.lower() in key.lower() for key in keys)


@get(
    "/customers/{customer_id_or_key:str}",
    operation_id="openMeterGetCustomer",
    responses=PROBLEMS,
    summary="Get customer",
)
async def get_customer(request: AnyRequest, customer_id_or_key: FromPath[str]) -> Response[Any]:
    """A customer by allotment id or by key (`customerReferenceId`), deleted ones included."""
    view = await shard_of(request).read(_lookup(customer_id_or_key), customer_json)
    if view is None:
        raise not_found("customer", customer_id_or_key)
    return json(view)


@put(
    "/customers/{customer_id_or_key:str}",
    operation_id="openMeterUpdateCustomer",
    responses=PROBLEMS,
    summary="Update customer",
)
async def update_customer(request: AnyRequest, customer_id_or_key: FromPath[str]) -> Response[Any]:
    """Replace a customer's OpenMeter fields (OM-22); its key cannot change (OM-23)."""
    body = decode(await request.body(), _CustomerBody)
    details = body.details()

    def change(state: CustomerState, _now: datetime) -> OpenMeterDetails:
        if body.key is not None and body.key != state.external_id:
            raise bad_request("key", "cannot change: it is the customerReferenceId (OM-23)")
        _identified(state.external_id, details)
        deleted = state.openmeter.deleted_at if state.openmeter else None
        return msgspec.structs.replace(details, deleted_at=deleted)

    reply = await shard_of(request).update_openmeter_customer(
        _lookup(customer_id_or_key), change, customer_json
    )
    if isinstance(reply, Rejected):
        raise problem_of(reply)
    return json(reply)


@delete(
    "/customers/{customer_id_or_key:str}",
    operation_id="openMeterDeleteCustomer",
    responses=PROBLEMS,
    status_code=204,
    summary="Delete customer",
)
async def delete_customer(request: AnyRequest, customer_id_or_key: FromPath[str]) -> None:
    """Delete through OpenMeter (OM-24): `deletedAt` is set and the subject keys released, so
    new CloudEvents with them count for nobody; the allotment customer, its subscriptions and
    invoices stay (the Tanso API has no deletion)."""

    def change(state: CustomerState, now: datetime) -> OpenMeterDetails:
        details = state.openmeter or OpenMeterDetails(name=state.external_id or str(state.id))
        if details.deleted_at is not None:
            raise not_found("customer", customer_id_or_key)
        return msgspec.structs.replace(details, deleted_at=now)

    reply = await shard_of(request).update_openmeter_customer(
        _lookup(customer_id_or_key), change, customer_json
    )
    if isinstance(reply, Rejected):
        raise problem_of(reply)


def _identified(key: str | None, details: OpenMeterDetails) -> None:
    """OM-20: the document's "Either key or usageAttribution.subjectKeys must be provided", so
    every customer is reachable by one of them."""
    if key is None and not details.subject_keys:
        raise bad_request("key", "give a key or usageAttribution.subjectKeys (either is required)")


def _lookup(id_or_key: str) -> CustomerLookup:
    try:
        return CustomerLookup(customer_id=uuid.UUID(id_or_key))
    except ValueError:
        return CustomerLookup(external_id=id_or_key)
