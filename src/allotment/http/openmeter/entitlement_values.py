"""The enforcement read (OM-130..OM-134): an entitlement's value on every path the official
client uses, and a customer's access to every feature in one round trip.

- `GET /api/v1/customers/{customerIdOrKey}/entitlements/{featureKey}/value`
- `GET /api/v2/customers/{customerIdOrKey}/entitlements/{entitlementIdOrFeatureKey}/value`
- `GET /api/v1/subjects/{subjectIdOrKey}/entitlements/{entitlementIdOrFeatureKey}/value`
- `GET /api/v1/customers/{customerIdOrKey}/access`

Each is one read in the customer's actor: its due resets are applied and the value is computed
in the same turn, after every event acknowledged before the request (OM-131). The customer
value GET without a query is also served by the fast path (`http/fast_path.py`) through
`customer_value`, so both answer the same bytes.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Final

import msgspec
from litestar import MediaType, Response, get
from litestar.params import FromPath

from allotment.domain.catalog import Catalog
from allotment.domain.om_commands import EntitlementValue
from allotment.domain.om_entitlements import live_for_feature
from allotment.domain.om_state import OmEntitlement
from allotment.domain.om_value import live_value, value_at
from allotment.domain.om_views import (
    derived_access,
    derived_value,
    parse_derived_id,
    resolve_derived,
)
from allotment.domain.replies import Rejected, RejectionKind, Reply
from allotment.domain.state import CustomerState
from allotment.http.context import AnyRequest, shard_of
from allotment.http.openmeter.om_targets import (
    OmTarget,
    OmView,
    customer_target,
    rejection_problem,
    subject_target,
)
from allotment.http.openmeter.problems import PROBLEMS, Problem, bad_request
from allotment.http.openmeter.query_params import optional_time
from allotment.http.openmeter.wire import ENCODER
from allotment.runtime.ports import Shard

__all__ = (
    "customer_access",
    "customer_value",
    "entitlement_at",
    "get_customer_access",
    "get_customer_entitlement_value",
    "get_customer_entitlement_value_v2",
    "get_subject_entitlement_value",
    "no_entitlement",
    "read_bytes",
    "value_json",
)

_FEATURE_KEY: Final = re.compile(r"^[a-z0-9]+(?:_[a-z0-9]+)*$")
_ULID: Final = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$")


class ValueJson(msgspec.Struct, frozen=True, omit_defaults=True):
    """The document's `EntitlementValue`: the metered fields only for metered entitlements,
    `config` only for static ones (OM-132)."""

    hasAccess: bool
    balance: Decimal | None = None
    usage: Decimal | None = None
    overage: Decimal | None = None
    totalAvailableGrantAmount: Decimal | None = None
    config: str | None = None


class AccessJson(msgspec.Struct, frozen=True):
    """The document's `CustomerAccess`."""

    entitlements: dict[str, ValueJson]


def value_json(value: EntitlementValue) -> ValueJson:
    return ValueJson(
        hasAccess=value.has_access,
        balance=value.balance,
        usage=value.usage,
        overage=value.overage,
        totalAvailableGrantAmount=value.total_available_grant_amount,
        config=value.config,
    )


def entitlement_at(
    state: CustomerState, id_or_key: str, at: datetime, now: datetime, *, by_id: bool = True
) -> OmEntitlement | None:
    """OM-133: the entitlement a value read names. An id names its entitlement, deleted or
    not; a feature key names the one live at `at`: the live one now, or at a past instant
    the one that was live then (deleted or replaced since), so a past answer is repeatable."""
    found = state.entitlements.get(id_or_key) if by_id else None
    if found is not None:
        return found
    if at < now:
        for ent in state.entitlements.values():
            definition = ent.definition
            if (
                definition.feature_key == id_or_key
                and definition.created_at <= at
                and (ent.deleted_at is None or at < ent.deleted_at)
            ):
                return ent
    return live_for_feature(state, id_or_key)


def _value_view(
    catalog: Catalog, id_or_key: str, at: datetime | None, field: str, *, by_id: bool = True
) -> OmView[bytes | Problem]:
    """The read's view: the value's bytes, or the 404 naming `field`. With no native
    entitlement, a Tanso plan's read-only view answers (OM-153, OM-154)."""

    def view(state: CustomerState, _reply: Reply | None, now: datetime) -> bytes | Problem:
        instant = now if at is None else at
        ent = entitlement_at(state, id_or_key, instant, now, by_id=by_id)
        if ent is None:
            return _derived_value(state, catalog, id_or_key, at, now, field)
        value = live_value(state, ent, now) if at is None else value_at(state, ent, at, now)
        return ENCODER.encode(value_json(value))

    return view


def _derived_value(
    state: CustomerState,
    catalog: Catalog,
    id_or_key: str,
    at: datetime | None,
    now: datetime,
    field: str,
) -> bytes | Problem:
    """OM-153: a Tanso plan's view answers at the present only (400 `time` before it)."""
    derived = resolve_derived(state, catalog, id_or_key)
    if derived is None:
        return no_entitlement(field)
    if at is not None and at < now:
        return bad_request("time", "a Tanso plan's entitlement answers at the present only")
    return ENCODER.encode(value_json(derived_value(state, catalog, derived)))


def no_entitlement(field: str) -> Problem:
    """404 naming the path field, as the domain's own rejection reads (OM-109)."""
    missing = Rejected(kind=RejectionKind.NOT_FOUND, message="no such entitlement.", field=field)
    return rejection_problem(missing)


async def customer_value(
    shard: Shard, customer: str, feature_key: str, at: datetime | None = None
) -> bytes:
    """getCustomerEntitlementValue's body (OM-130..OM-133): shared by the route and the fast
    path.

    Raises:
        Problem: 400 for a feature key off the document's pattern, 404 for no such customer
            or no entitlement of the feature.
    """
    if not _FEATURE_KEY.match(feature_key) or len(feature_key) > 64:
        raise bad_request("featureKey", "must match ^[a-z0-9]+(?:_[a-z0-9]+)*$ (1 to 64)")
    view = _value_view(shard.catalog, feature_key, at, "featureKey", by_id=False)
    return await read_bytes(shard, customer_target(customer), view)


async def read_bytes(shard: Shard, target: OmTarget, view: OmView[bytes | Problem]) -> bytes:
    """`view` on the target's caught-up state (one read turn), or its problem raised."""
    result = await shard.openmeter_turn(target, None, view)
    if isinstance(result, Problem):
        raise result
    if not isinstance(result, bytes):
        raise rejection_problem(result)
    return result


def _bytes(body: bytes) -> Response[bytes]:
    return Response(content=body, media_type=MediaType.JSON)


def _time(request: AnyRequest) -> datetime | None:
    return optional_time("time", request.query_params.get("time"))


@get(
    "/customers/{customer_id_or_key:str}/entitlements/{feature_key:str}/value",
    operation_id="getCustomerEntitlementValue",
    responses=PROBLEMS,
    summary="Get customer entitlement value",
)
async def get_customer_entitlement_value(
    request: AnyRequest, customer_id_or_key: FromPath[str], feature_key: FromPath[str]
) -> Response[bytes]:
    """The value of the customer's entitlement to a feature, now or at `time` (OM-130)."""
    at = _time(request)
    return _bytes(await customer_value(shard_of(request), customer_id_or_key, feature_key, at))


@get(
    "/customers/{customer_id_or_key:str}/entitlements/{entitlement_id_or_feature_key:str}/value",
    operation_id="getCustomerEntitlementValueV2",
    responses=PROBLEMS,
    summary="Get customer entitlement value",
)
async def get_customer_entitlement_value_v2(
    request: AnyRequest,
    customer_id_or_key: FromPath[str],
    entitlement_id_or_feature_key: FromPath[str],
) -> Response[bytes]:
    """The v2 value: by entitlement id or feature key (OM-130, OM-133)."""
    name = entitlement_id_or_feature_key
    field = "entitlementIdOrFeatureKey"
    if not (
        _ULID.match(name)
        or (_FEATURE_KEY.match(name) and len(name) <= 64)
        or parse_derived_id(name) is not None  # a Tanso plan's view (OM-151)
    ):
        raise bad_request(field, "must be an entitlement id (ULID) or a feature key")
    shard = shard_of(request)
    view = _value_view(shard.catalog, name, _time(request), field)
    return _bytes(await read_bytes(shard, customer_target(customer_id_or_key), view))


@get(
    "/subjects/{subject_id_or_key:str}/entitlements/{entitlement_id_or_feature_key:str}/value",
    operation_id="getEntitlementValue",
    responses=PROBLEMS,
    summary="Get subject entitlement value",
)
async def get_subject_entitlement_value(
    request: AnyRequest,
    subject_id_or_key: FromPath[str],
    entitlement_id_or_feature_key: FromPath[str],
) -> Response[bytes]:
    """The deprecated subject path (OM-130): the subject's customer (OM-107), by entitlement
    id or feature key."""
    shard = shard_of(request)
    name = entitlement_id_or_feature_key
    view = _value_view(shard.catalog, name, _time(request), "entitlementIdOrFeatureKey")
    return _bytes(await read_bytes(shard, subject_target(subject_id_or_key), view))


def _access(catalog: Catalog) -> OmView[bytes]:
    """Every live native entitlement's value, and the Tanso plans' views of the features
    none covers (OM-155)."""

    def view(state: CustomerState, _reply: Reply | None, now: datetime) -> bytes:
        native = {
            ent.definition.feature_key: live_value(state, ent, now)
            for ent in state.entitlements.values()
            if ent.live
        }
        values = derived_access(state, catalog, native)
        json = {key: value_json(value) for key, value in values.items()}
        return ENCODER.encode(AccessJson(entitlements=json))

    return view


@get(
    "/customers/{customer_id_or_key:str}/access",
    operation_id="getCustomerAccess",
    responses=PROBLEMS,
    summary="Get customer access",
)
async def get_customer_access(
    request: AnyRequest, customer_id_or_key: FromPath[str]
) -> Response[bytes]:
    """Every live entitlement's value, by feature key, read in one turn (OM-134)."""
    return _bytes(await customer_access(shard_of(request), customer_id_or_key))


async def customer_access(shard: Shard, customer: str) -> bytes:
    """getCustomerAccess's body (OM-134): shared by the route and the fast path (OM-138).

    Raises:
        Problem: 404 for no such customer.
    """
    return await read_bytes(shard, customer_target(customer), _access(shard.catalog))
