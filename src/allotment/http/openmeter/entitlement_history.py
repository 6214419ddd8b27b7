"""An entitlement's history (OM-135..OM-137): the document's `WindowedBalanceHistory`, usage and
opening balance per window of an IANA zone's clock, and the grant burn-down in segments.

- `GET /api/v1/subjects/{subjectIdOrKey}/entitlements/{entitlementId}/history`
- `GET /api/v2/customers/{customerIdOrKey}/entitlements/{entitlementIdOrFeatureKey}/history`

Computed in one read turn of the customer's actor by the domain's `om_history` (OM-102..
OM-105), so it agrees with the value at every instant.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import msgspec
from litestar import MediaType, Response, get
from litestar.params import FromPath

from allotment.domain.meter_queries import WindowSize
from allotment.domain.om_history import BalanceWindow, BurnDownSegment, burn_down, windowed_history
from allotment.domain.om_state import OmEntitlement
from allotment.domain.replies import Reply
from allotment.domain.state import CustomerState
from allotment.http.context import AnyRequest, shard_of
from allotment.http.openmeter.entitlement_values import (
    entitlement_at,
    no_entitlement,
    read_bytes,
)
from allotment.http.openmeter.om_targets import OmTarget, OmView, customer_target, subject_target
from allotment.http.openmeter.problems import PROBLEMS, Problem, bad_request
from allotment.http.openmeter.query_params import optional_time, time_zone, window_size
from allotment.http.openmeter.wire import ENCODER

__all__ = ("get_customer_entitlement_history_v2", "get_subject_entitlement_history")


class _Period(msgspec.Struct, frozen=True):
    from_: datetime = msgspec.field(name="from")
    to: datetime


class _Window(msgspec.Struct, frozen=True):
    """`BalanceHistoryWindow`."""

    period: _Period
    usage: Decimal
    balanceAtStart: Decimal


class _GrantUsage(msgspec.Struct, frozen=True):
    """`GrantUsageRecord`."""

    grantId: str
    usage: Decimal


class _Segment(msgspec.Struct, frozen=True):
    """`GrantBurnDownHistorySegment`."""

    period: _Period
    usage: Decimal
    overage: Decimal
    balanceAtStart: Decimal
    grantBalancesAtStart: dict[str, Decimal]
    balanceAtEnd: Decimal
    grantBalancesAtEnd: dict[str, Decimal]
    grantUsages: list[_GrantUsage]


class _History(msgspec.Struct, frozen=True):
    """`WindowedBalanceHistory`."""

    windowedHistory: list[_Window]
    burndownHistory: list[_Segment]


class _Query(msgspec.Struct, frozen=True):
    size: WindowSize
    zone: ZoneInfo
    start: datetime | None
    end: datetime | None


def _query(request: AnyRequest) -> _Query:
    """The parameters, each refused by name (OM-135)."""
    params = request.query_params
    size = window_size("windowSize", params.get("windowSize"))
    if size is None:
        raise bad_request("windowSize", "is required: MINUTE, HOUR, DAY or MONTH")
    zone = ZoneInfo(time_zone("windowTimeZone", params.get("windowTimeZone")))
    start = optional_time("from", params.get("from"))
    end = optional_time("to", params.get("to"))
    if start is not None and end is not None and start > end:
        raise bad_request("from", "must not be after `to`")
    return _Query(WindowSize(size.value), zone, start, end)


def _window(row: BalanceWindow) -> _Window:
    return _Window(_Period(row.start, row.end), row.usage, row.balance_at_start)


def _segment(seg: BurnDownSegment) -> _Segment:
    usages = [_GrantUsage(grant, usage) for grant, usage in seg.grant_usages.items()]
    return _Segment(
        period=_Period(seg.start, seg.end),
        usage=seg.usage,
        overage=seg.overage,
        balanceAtStart=seg.balance_at_start,
        grantBalancesAtStart=seg.grant_balances_at_start,
        balanceAtEnd=seg.balance_at_end,
        grantBalancesAtEnd=seg.grant_balances_at_end,
        grantUsages=usages,
    )


def _bounds(ent: OmEntitlement, query: _Query, now: datetime) -> tuple[datetime, datetime]:
    """OM-136: `from` defaults to the current period's start (the last reset) and `to` to now;
    neither reaches before the entitlement's creation nor after now (or its deletion): there
    is no history outside them."""
    last = ent.deleted_at if ent.deleted_at is not None else now
    start = query.start if query.start is not None else ent.log[ent.reset_positions[-1]].at
    end = query.end if query.end is not None else last
    start = max(start, ent.definition.created_at)
    end = min(end, last)
    return start, max(start, end)


def _history_view(
    id_or_key: str, query: _Query, field: str, *, feature_keys: bool
) -> OmView[bytes | Problem]:
    def view(state: CustomerState, _reply: Reply | None, now: datetime) -> bytes | Problem:
        if feature_keys:
            ent = entitlement_at(state, id_or_key, now, now)
        else:
            ent = state.entitlements.get(id_or_key)
        if ent is None:
            return no_entitlement(field)
        if not ent.metered:
            return bad_request(field, "has no history: it is not a metered entitlement")
        start, end = _bounds(ent, query, now)
        windows = windowed_history(ent, start, end, query.size, query.zone)
        segments = burn_down(ent, start, end) if end > start else []
        history = _History([_window(w) for w in windows], [_segment(s) for s in segments])
        return ENCODER.encode(history)

    return view


async def _answer(
    request: AnyRequest, target: OmTarget, view: OmView[bytes | Problem]
) -> Response[bytes]:
    body = await read_bytes(shard_of(request), target, view)
    return Response(content=body, media_type=MediaType.JSON)


@get(
    "/subjects/{subject_id_or_key:str}/entitlements/{entitlement_id:str}/history",
    operation_id="getEntitlementHistory",
    responses=PROBLEMS,
    summary="Get subject entitlement history",
)
async def get_subject_entitlement_history(
    request: AnyRequest, subject_id_or_key: FromPath[str], entitlement_id: FromPath[str]
) -> Response[bytes]:
    """The deprecated subject path: by entitlement id only, as the document names it."""
    view = _history_view(entitlement_id, _query(request), "entitlementId", feature_keys=False)
    return await _answer(request, subject_target(subject_id_or_key), view)


@get(
    "/customers/{customer_id_or_key:str}/entitlements/{entitlement_id_or_feature_key:str}/history",
    operation_id="getCustomerEntitlementHistoryV2",
    responses=PROBLEMS,
    summary="Get customer entitlement history",
)
async def get_customer_entitlement_history_v2(
    request: AnyRequest,
    customer_id_or_key: FromPath[str],
    entitlement_id_or_feature_key: FromPath[str],
) -> Response[bytes]:
    """By entitlement id, or the feature key of the live entitlement (OM-133)."""
    query = _query(request)
    view = _history_view(entitlement_id_or_feature_key, query, "entitlementIdOrFeatureKey",
                         feature_keys=True)  # fmt: skip
    return await _answer(request, customer_target(customer_id_or_key), view)
