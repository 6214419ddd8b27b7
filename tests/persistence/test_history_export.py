"""The history exporter over a real file journal (issue 10, item 3): every accepted event and
credit transaction reaches the history exactly once, whatever crashes interrupt the export,
and however the export is cut into increments."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

import anyio
import duckdb
import pytest

from allotment.domain.credits import CreditTransaction, GrantSource, TransactionType
from allotment.domain.facts import (
    CreditsDebited,
    CreditsGranted,
    CustomerCreated,
    Fact,
    UsageRecorded,
)
from allotment.domain.state import CustomerSource
from allotment.persistence import history_export
from allotment.persistence.history_cursor import exported_position
from allotment.persistence.history_export import export_history
from allotment.persistence.history_rows import history_view
from allotment.persistence.journal import FileJournal, segments

pytestmark = pytest.mark.anyio
AT = datetime(2025, 1, 15, tzinfo=UTC)
CUSTOMERS = [uuid.UUID(int=i) for i in range(1, 4)]
POOLS = {customer: uuid.UUID(int=100 + i) for i, customer in enumerate(CUSTOMERS)}


def _tx(customer: uuid.UUID, kind: TransactionType, amount: int, before: int) -> CreditTransaction:
    return CreditTransaction(
        id=uuid.uuid4(), pool_id=POOLS[customer], type=kind, amount=Decimal(amount),
        balance_before=Decimal(before), balance_after=Decimal(before + amount),
        created_at=AT, description=kind.value,
    )  # fmt: skip


def _turns() -> list[tuple[uuid.UUID, list[Fact]]]:
    """A customer-created turn, a grant, then turns of one or two events each debiting the pool,
    for three customers interleaved: 3 + 3 + 3 * 20 records."""
    turns: list[tuple[uuid.UUID, list[Fact]]] = []
    balances = dict.fromkeys(CUSTOMERS, 0)
    for customer in CUSTOMERS:
        created = CustomerCreated(
            at=AT, customer_id=customer, external_id=f"ext-{customer.int}",
            source=CustomerSource.API,
        )  # fmt: skip
        turns.append((customer, [created]))
    for customer in CUSTOMERS:
        tx = _tx(customer, TransactionType.GRANT, 1000, 0)
        grant = CreditsGranted(
            at=AT, denomination="TOKENS", grant_id=uuid.UUID(int=customer.int + 500),
            amount=Decimal(1000), source=GrantSource.MANUAL, expires_at=None,
            subscription_id=None, period_key=None, transaction=tx,
        )  # fmt: skip
        turns.append((customer, [grant]))
        balances[customer] = 1000
    for i in range(20):
        for customer in CUSTOMERS:
            facts: list[Fact] = []
            for j in range(1 + i % 2):
                at = AT + timedelta(hours=i)
                facts.append(
                    UsageRecorded(
                        at=at,
                        idempotency_key=f"{customer.int}-{i}-{j}",
                        event_name="chat",
                        occurred_at=at,
                        units=Decimal(3),
                    )
                )
                tx = _tx(customer, TransactionType.DEBIT, -3, balances[customer])
                balances[customer] -= 3
                grant_id = uuid.UUID(int=customer.int + 500)
                facts.append(
                    CreditsDebited(at=at, denomination="TOKENS", grant_id=grant_id, transaction=tx)
                )
            turns.append((customer, facts))
    return turns


EVENTS = 3 * (10 * 1 + 10 * 2)  # per customer: ten turns of one event, ten of two
LEDGER = 3 + EVENTS  # a grant per customer, a debit per event


async def _write_journal(data_dir: Path, segment_size_max: int = 4096) -> int:
    """Journal the turns in small segments; returns the durable position."""
    journal = FileJournal(data_dir / "journal" / "test", segment_size_max=segment_size_max)
    async with anyio.create_task_group() as tg:
        tg.start_soon(journal.run)
        for customer, facts in _turns():
            await journal.wait_durable(journal.append(customer, facts))
        tg.cancel_scope.cancel()
    journal.close()
    return journal.durable_position


def _rows(data_dir: Path, table: str) -> list[tuple[Any, ...]]:
    """Every exported row of `table`, ordered by journal position and fact index."""
    pattern = str(data_dir / "history" / table / "*.parquet")
    connection = duckdb.connect()
    try:
        return connection.execute(
            f"SELECT * EXCLUDE (environment) FROM read_parquet('{pattern}', union_by_name = true)"
            " ORDER BY journal_position, fact_index"
        ).fetchall()
    finally:
        connection.close()


def _assert_exactly_once(data_dir: Path, last: int) -> None:
    events, ledger = _rows(data_dir, "events"), _rows(data_dir, "credit_transactions")
    assert len(events) == EVENTS and len(ledger) == LEDGER
    for rows in (events, ledger):  # (journal_position, fact_index) identifies a row
        assert len({(row[1], row[2]) for row in rows}) == len(rows)
    assert len({row[3] for row in events}) == EVENTS  # every idempotency key once
    assert exported_position(data_dir, "test") == last


async def test_one_export_writes_every_event_and_transaction_once(tmp_path: Path) -> None:
    last = await _write_journal(tmp_path)
    assert len(segments(tmp_path / "journal" / "test")) > 3  # the export crosses segments
    report = export_history(tmp_path, "test", last)
    assert (report.events, report.credit_transactions, report.position) == (EVENTS, LEDGER, last)
    _assert_exactly_once(tmp_path, last)
    names = sorted(p.name for p in (tmp_path / "history" / "events").glob("test-*.parquet"))
    assert names == [f"test-{1:020d}-{last:020d}.parquet"]
    again = export_history(tmp_path, "test", last)  # nothing new: nothing written
    assert (again.events, again.credit_transactions, again.files) == (0, 0, 0)
    _assert_exactly_once(tmp_path, last)


async def test_export_in_increments_equals_export_in_one(tmp_path: Path) -> None:
    one, steps = tmp_path / "one", tmp_path / "steps"
    last = await _write_journal(one)
    shutil.copytree(one / "journal", steps / "journal")
    export_history(one, "test", last)
    for upto in [0, 1, 2, 5, 5, 9, 17, 30, 31, 50, last - 1, last]:
        export_history(steps, "test", upto)
    for table in ("events", "credit_transactions"):
        assert _rows(steps, table) == _rows(one, table)
    _assert_exactly_once(steps, last)


async def test_a_long_range_is_split_into_files_of_whole_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history_export, "ROWS_PER_FILE_MAX", 7)
    last = await _write_journal(tmp_path)
    export_history(tmp_path, "test", last)
    _assert_exactly_once(tmp_path, last)
    for table in ("events", "credit_transactions"):
        ranges = sorted(
            tuple(int(part) for part in p.stem.split("-")[1:])
            for p in (tmp_path / "history" / table).glob("test-*.parquet")
        )
        assert len(ranges) > 3
        for (_, end), (start, _) in pairwise(ranges):
            assert start > end  # no record in two files


class Crash(BaseException):
    """The process dies here: nothing after it runs."""


def _crash_when(
    monkeypatch: pytest.MonkeyPatch, crashes: Callable[[Path], bool], mid_write: bool = False
) -> None:
    """Make the exporter's durable write of the first path for which `crashes` holds die,
    after the file is in place (or, with `mid_write`, half-way through the temporary file)."""
    real = history_export.write_durably

    def write(final: Path, writer: Callable[[Any], object]) -> None:
        if crashes(final):
            monkeypatch.setattr(history_export, "write_durably", real)  # one crash only
            if mid_write:
                final.with_name(f".{final.name}.tmp").write_bytes(b"PAR1 torn")
                raise Crash
            real(final, writer)
            raise Crash
        real(final, writer)

    monkeypatch.setattr(history_export, "write_durably", write)


@pytest.mark.parametrize(
    ("crash_at", "mid_write", "exported_after_crash"),
    [
        ("events/test-", False, 20),  # between the events file and its cursor file
        ("events/test-", True, 20),  # inside the events file
        ("credit_transactions/test-", False, 20),  # ledger file in place, no cursor file
        ("credit_transactions/test.position", False, 20),  # its file in, its cursor missing
        # the crash right after the last cursor file (this journal holds no reservation, so
        # that table has a cursor file only): everything is exported (None: the whole journal)
        ("reservation_history/test.position", False, None),
    ],
)
async def test_re_export_after_a_crash_never_duplicates(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    crash_at: str,
    mid_write: bool,
    exported_after_crash: int | None,
) -> None:
    """A crash between writing a range file and its cursor, or between the tables' files: the
    next export writes what is missing, once (issue 10, item 3). A file in place counts as
    exported even when its cursor file never moved; the exported position is the table
    furthest behind (the reservation history is written last)."""
    last = await _write_journal(tmp_path)
    export_history(tmp_path, "test", 20)
    _crash_when(monkeypatch, lambda path: crash_at in str(path), mid_write)
    with pytest.raises(Crash):
        export_history(tmp_path, "test", last)
    assert exported_position(tmp_path, "test") == (exported_after_crash or last)
    report = export_history(tmp_path, "test", last)
    assert report.position == last
    _assert_exactly_once(tmp_path, last)
    assert not list((tmp_path / "history").glob("*/.*.tmp"))  # a torn file is cleared away


async def test_exported_position_is_the_table_furthest_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert exported_position(tmp_path, "test") == 0  # before any export
    last = await _write_journal(tmp_path)
    _crash_when(monkeypatch, lambda path: "credit_transactions/test-" in str(path), True)
    with pytest.raises(Crash):
        export_history(tmp_path, "test", last)
    assert exported_position(tmp_path, "test") == 0  # events are exported, the ledger is not
    assert exported_position(tmp_path, "live") == 0  # environments are apart


async def test_the_events_view_joins_external_ids_and_keeps_unexported_legacy_rows(
    tmp_path: Path,
) -> None:
    """History files written from the old in-memory buffers stay readable: a legacy row the
    exporter wrote again shows once, one it never saw (its segment was trimmed) still shows."""
    last = await _write_journal(tmp_path)
    export_history(tmp_path, "test", last)
    legacy = tmp_path / "history" / "events" / "day=2025-01-15"
    legacy.mkdir()
    connection = duckdb.connect()
    exported = str(tmp_path / "history" / "events" / "test-*.parquet")
    connection.execute(
        f"COPY (SELECT * EXCLUDE (journal_position, fact_index), 'old' AS external_id FROM "
        f"read_parquet('{exported}') ORDER BY journal_position LIMIT 2) "
        f"TO '{legacy / 'part-a.parquet'}'"
    )
    connection.execute(
        f"COPY (SELECT * REPLACE ('gone' AS idempotency_key) FROM '{legacy / 'part-a.parquet'}'"
        f" LIMIT 1) TO '{legacy / 'part-b.parquet'}'"
    )
    connection.execute(
        "CREATE TABLE customers (environment TEXT, customer_id TEXT, external_id TEXT)"
    )
    for customer in CUSTOMERS:
        connection.execute(
            "INSERT INTO customers VALUES ('test', ?, ?)", [str(customer), f"ext-{customer.int}"]
        )
    connection.execute(history_view(tmp_path / "history" / "events", "events"))
    count, external_ids, legacy_rows = connection.execute(
        "SELECT count(*), count(DISTINCT external_id), count(*) FILTER (journal_position IS NULL)"
        " FROM events"
    ).fetchone() or (0, 0, 0)
    connection.close()
    assert (count, legacy_rows) == (EVENTS + 1, 1)
    assert external_ids == 3 + 1  # every exported row has its customer's current external id
