"""What storage and analytics report of their work: logged as JSON lines, returned to the
admin API and to tests."""

from __future__ import annotations

import msgspec

__all__ = ("AnalyticsReport", "CheckpointReport", "ExportReport", "RecoveryReport")


class RecoveryReport(msgspec.Struct, frozen=True, kw_only=True):
    environment: str
    snapshot_position: int
    records_replayed: int
    customers: int
    seconds: float


class CheckpointReport(msgspec.Struct, frozen=True, kw_only=True):
    environment: str
    position: int
    customers: int
    bytes: int
    seconds: float
    segments_deleted: int


class ExportReport(msgspec.Struct, frozen=True, kw_only=True):
    environment: str
    position: int  # every record up to here is in every history table's files
    events: int  # rows written by this export
    credit_transactions: int
    reservation_history: int = 0  # a default: reports of servers from before it still decode
    files: int


class AnalyticsReport(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    path: str
    taken_at: str
    customers: int
    history_rows: int  # audit records written and rows exported from the journal
    # environment -> journal position exported to the history (over shards: the sum of each
    # shard's position, as each numbers its own records, SCL-75)
    exported: dict[str, int]
    seconds: float
    tables: dict[str, int] = {}  # over shards: rows of each table and view merged (SCL-75)
