"""The `reservation_history`: one Parquet row per reservation fact and item, exported from the
journal exactly once like `events` (`history_rows`), and the view that adds the timings.

A fact names only what it decides: a commit or release names its items, an extend or an expiry
only the reservation. The exporter reads one journal record at a time and keeps no state
between exports (the reserve of a reservation is often in an earlier export range), so the
stored rows are the facts as they are, and the view joins each fact to the reserve it follows:
the item's held units and credits, when it was held, how long it was held. An extend or expiry
row stands for every item still held then, so the view gives it one row per such item.

Held units are never usage (RSV-11): they are here and in the `reservations` state table only;
the usage a commit records is an `events` row like any other (RSV-12).
"""

from __future__ import annotations

from typing import Any

from allotment.domain.reservation_facts import (
    ReservationCommitted,
    ReservationExpired,
    ReservationExtended,
    ReservationFact,
    ReservationHeld,
    ReservationReleased,
)
from allotment.persistence.analytics_rows import Columns
from allotment.persistence.ports import JournalRecord

__all__ = ("RESERVATION_COLUMNS", "reservation_fact_rows", "reservation_view_query")

RESERVATION_COLUMNS = (
    "day",
    "journal_position",
    "fact_index",
    "customer_id",
    "reservation_id",
    "fact",  # reserve, commit, release, extend, expire
    "fact_at",
    "feature_key",  # null: the fact concerns the whole reservation (extend, expire)
    "held_units",  # a reserve's
    "held_credits",
    "denomination",
    "overage",
    "event_name",
    "ttl_seconds",
    "expires_at",  # a reserve's or an extend's new expiry
    "usage_units",  # a commit's: asked, and recorded by its event
    "recorded_units",
    "hold_expired",
    "event_key",
)
_EMPTY: dict[str, Any] = dict.fromkeys(RESERVATION_COLUMNS)
_FACTS = (
    ReservationHeld,
    ReservationCommitted,
    ReservationReleased,
    ReservationExtended,
    ReservationExpired,
)


def _fact_rows(fact: ReservationFact) -> list[dict[str, Any]]:
    """The rows of one reservation fact (an empty list for any other fact)."""
    match fact:
        case ReservationHeld(reservation=held):
            whole = {"overage": held.overage.value, "event_name": held.event_name,
                     "ttl_seconds": held.ttl_seconds, "expires_at": held.expires_at}  # fmt: skip
            return [
                {"fact": "reserve", "feature_key": item.feature_key, "held_units": item.units,
                 "held_credits": item.credits, "denomination": item.denomination, **whole}
                for item in held.items
            ]  # fmt: skip
        case ReservationCommitted(settlements=settlements):
            return [
                {"fact": "commit", "feature_key": key, "usage_units": s.usage_units,
                 "recorded_units": s.recorded_units, "hold_expired": s.hold_expired,
                 "event_key": s.event_key}
                for key, s in settlements.items()
            ]  # fmt: skip
        case ReservationReleased(feature_keys=keys):
            return [{"fact": "release", "feature_key": key} for key in keys]
        case ReservationExtended(expires_at=expires_at):
            return [{"fact": "extend", "feature_key": None, "expires_at": expires_at}]
        case ReservationExpired():
            return [{"fact": "expire", "feature_key": None, "expires_at": fact.at}]
    return []


def reservation_fact_rows(record: JournalRecord, into: Columns) -> int:
    """Append the rows of every reservation fact of `record`. Returns the rows appended."""
    added = 0
    for index, fact in enumerate(record.facts):
        if not isinstance(fact, _FACTS):
            continue
        where = {
            "day": fact.at.date().isoformat(),
            "journal_position": record.position,
            "fact_index": index,
            "customer_id": str(record.customer_id),
            "reservation_id": fact.reservation_id,
            "fact_at": fact.at,
        }
        for row in _fact_rows(fact):
            values = {**_EMPTY, **where, **row}
            for column in RESERVATION_COLUMNS:
                into[column].append(values[column])
            added += 1
    return added


# Each fact row joined to the latest reserve of its reservation at or before it (an id can be
# used again once its customer forgot it, RSV-27): for an item fact, the reserve row of its
# item; for an extend or expiry, every item of the reserve.
_VIEW = """
WITH h AS ({exported}),
held AS (
    SELECT environment, customer_id, reservation_id, feature_key AS item,
           journal_position AS held_position, fact_at AS held_at,
           held_units AS item_units, held_credits AS item_credits, denomination AS item_pool
    FROM h WHERE fact = 'reserve'),
items AS (
    SELECT h.*, r.item, r.held_position, r.held_at, r.item_units, r.item_credits, r.item_pool
    FROM h LEFT JOIN held r
      ON r.environment = h.environment AND r.customer_id = h.customer_id
     AND r.reservation_id = h.reservation_id AND r.held_position <= h.journal_position
     AND (h.feature_key IS NULL OR r.item = h.feature_key)
    QUALIFY r.held_position IS NOT DISTINCT FROM
        max(r.held_position) OVER (PARTITION BY h.environment, h.journal_position, h.fact_index))
SELECT i.environment, i.day, i.journal_position, i.fact_index, i.customer_id, c.external_id,
       i.reservation_id, i.fact, i.fact_at, coalesce(i.feature_key, i.item) AS feature_key,
       i.item_units AS held_units, i.item_credits AS held_credits,
       coalesce(i.denomination, i.item_pool) AS denomination, i.held_at,
       CASE WHEN i.fact IN ('release', 'expire') OR (i.fact = 'commit' AND NOT i.hold_expired)
            THEN epoch(i.fact_at) - epoch(i.held_at) END AS held_seconds,
       i.expires_at, i.overage, i.event_name, i.ttl_seconds, i.usage_units, i.recorded_units,
       i.usage_units - i.recorded_units AS cut_units,
       i.recorded_units - i.item_units AS over_held_units,
       i.hold_expired, i.event_key
FROM items i LEFT JOIN customers c USING (environment, customer_id)
WHERE i.feature_key IS NOT NULL OR NOT EXISTS (
    SELECT 1 FROM h s
    WHERE s.fact IN ('commit', 'release') AND s.environment = i.environment
      AND s.customer_id = i.customer_id AND s.reservation_id = i.reservation_id
      AND s.feature_key = i.item
      AND s.journal_position > i.held_position AND s.journal_position < i.journal_position)
"""


def reservation_view_query(exported: str) -> str:
    """The view's query over `exported`, a query of the stored rows. An extend or expiry row
    stands for the items not committed or released before it (a commit after expiry comes
    after it, RSV-16). `held_seconds`: from reserve to release, expiry or a commit in time."""
    return _VIEW.format(exported=exported)
