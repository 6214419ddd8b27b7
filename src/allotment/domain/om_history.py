"""An entitlement's history (OM-102..OM-105): usage and balance per window of an IANA time zone,
and the grant burn-down in segments. Pure functions of the state, by `om_value.Replay`, so
they agree with `value_at` at every instant."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import msgspec

from allotment.domain.meter_queries import WindowSize  # the one enum meter queries use too
from allotment.domain.money import ZERO
from allotment.domain.om_state import OmEntitlement, UsageMark
from allotment.domain.om_value import Replay

__all__ = (
    "BalanceWindow",
    "BurnDownSegment",
    "WindowSize",
    "burn_down",
    "window_of",
    "windowed_history",
)


class BalanceWindow(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """OM-102: usage recorded in `[start, end)`, and the balance the window opened with."""

    start: datetime
    end: datetime
    usage: Decimal
    balance_at_start: Decimal


class BurnDownSegment(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """OM-104: a stretch in which the burn-down order did not change. Grants by public id."""

    start: datetime
    end: datetime
    usage: Decimal
    overage: Decimal
    balance_at_start: Decimal
    grant_balances_at_start: dict[str, Decimal]
    balance_at_end: Decimal
    grant_balances_at_end: dict[str, Decimal]
    grant_usages: dict[str, Decimal]


def window_of(instant: datetime, size: WindowSize, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The window `[start, end)` containing `instant`, on the local clock of `zone` (OM-103):
    a DAY is a local calendar day, 23 or 25 hours across a DST change."""
    local = instant.astimezone(zone)
    if size is WindowSize.MINUTE:  # local: old offsets had seconds (local mean time)
        start = local.replace(second=0, microsecond=0).astimezone(UTC)
        return start, start + timedelta(minutes=1)
    if size is WindowSize.HOUR:
        start = local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
        return start, start + timedelta(hours=1)
    if size is WindowSize.DAY:
        day = local.date()
        after = day + timedelta(days=1)
        start = datetime(day.year, day.month, day.day, tzinfo=zone)
        end = datetime(after.year, after.month, after.day, tzinfo=zone)
    else:
        year, month = divmod(local.year * 12 + local.month, 12)  # the next month, 1-based
        start = datetime(local.year, local.month, 1, tzinfo=zone)
        end = datetime(year, month + 1, 1, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def windowed_history(
    ent: OmEntitlement, start: datetime, end: datetime, size: WindowSize, zone: ZoneInfo
) -> list[BalanceWindow]:
    """OM-102, OM-103: one row per window with usage recorded in `[start, end)`, oldest first;
    windows are clipped to the bounds."""
    replay = Replay.opening(ent, start)
    totals: dict[tuple[datetime, datetime], Decimal] = {}
    for mark in ent.log[replay.position :]:
        if mark.at >= end:
            break
        if isinstance(mark, UsageMark):
            window = window_of(mark.at, size, zone)
            totals[window] = totals.get(window, ZERO) + mark.units
    rows = []
    for (window_start, window_end), usage in totals.items():  # marks are in time order
        opens = max(window_start, start)
        replay.open_at(opens)
        rows.append(
            BalanceWindow(
                start=opens,
                end=min(window_end, end),
                usage=usage,
                balance_at_start=replay.balance(opens),
            )
        )
    return rows


class _Open:
    """The start of a segment: the replay's counters and balances then."""

    __slots__ = ("balances", "by_grant", "overage", "start", "usage")

    def __init__(self, replay: Replay, start: datetime) -> None:
        self.start = start
        self.usage = replay.usage
        self.overage = replay.overage
        self.by_grant = dict(replay.usage_by_grant)
        self.balances = replay.balances(start)


def burn_down(ent: OmEntitlement, start: datetime, end: datetime) -> list[BurnDownSegment]:
    """OM-104: segments of `[start, end)` cut wherever the burn-down order can change: a
    period start (reset), a grant's activation, void or expiry."""
    replay = Replay.opening(ent, start)
    expiries = sorted(
        {
            g.expires_at
            for g in ent.grants.values()
            if g.expires_at is not None and start < g.expires_at < end
        }
    )
    segments: list[BurnDownSegment] = []
    current = _Open(replay, start)
    log = ent.log
    used = False  # whether the open segment has burnt anything yet
    while replay.position < len(log) and log[replay.position].at < end:
        mark = log[replay.position]
        while expiries and expiries[0] <= mark.at:
            current, used = _cut(ent, replay, current, expiries.pop(0), segments), False
        usage = isinstance(mark, UsageMark)
        if not usage and (mark.at > current.start or used):
            current, used = _cut(ent, replay, current, mark.at, segments), False
        replay.apply(mark)
        replay.position += 1
        used = used or usage
        if not usage:
            current = _Open(replay, current.start)  # it takes effect as the segment opens
    for instant in expiries:
        current = _cut(ent, replay, current, instant, segments)
    _cut(ent, replay, current, end, segments)
    return segments


def _cut(
    ent: OmEntitlement,
    replay: Replay,
    current: _Open,
    at: datetime,
    segments: list[BurnDownSegment],
) -> _Open:
    """Close `current` at `at` and open the next segment there."""
    closing = replay.balances(at, closing=True)
    used = {
        _public(ent, grant_id): amount - current.by_grant.get(grant_id, ZERO)
        for grant_id, amount in replay.usage_by_grant.items()
        if amount != current.by_grant.get(grant_id, ZERO)
    }
    segments.append(
        BurnDownSegment(
            start=current.start,
            end=at,
            usage=replay.usage - current.usage,
            overage=replay.overage - current.overage,
            balance_at_start=sum(current.balances.values(), ZERO),
            grant_balances_at_start={_public(ent, k): v for k, v in current.balances.items()},
            balance_at_end=sum(closing.values(), ZERO),
            grant_balances_at_end={_public(ent, k): v for k, v in closing.items()},
            grant_usages=used,
        )
    )
    return _Open(replay, at)


def _public(ent: OmEntitlement, grant_id: uuid.UUID) -> str:
    return ent.grants[grant_id].public_id
