"""The analytics job: the server streams its state and the drained history buffers to a
worker process (`analytics_worker`), which writes the Parquet history and rebuilds
`analytics.duckdb`. The server only encodes msgpack frames (C, between which requests run);
building rows, Arrow tables and the database happens in the worker, off this process's GIL."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import msgspec
from anyio.abc import ByteReceiveStream, ByteSendStream

from allotment.runtime.analytics_stream import (
    AuditChunk,
    End,
    EnvironmentStart,
    EventChunk,
    Frame,
    LedgerChunk,
    StateChunk,
    encode_frame,
)
from allotment.runtime.buffers import BoundedBuffer
from allotment.runtime.clock import Clock
from allotment.runtime.shard import LocalShard

__all__ = ("AnalyticsFailed", "AnalyticsJob", "AnalyticsReport")

logger = logging.getLogger("allotment.analytics")

# The records drained from each (environment, history table), kept until the worker says that
# table is written, to be put back in their buffer otherwise.
Drained = dict[tuple[str, str], tuple[BoundedBuffer[Any], list[Any]]]

SLICE_CUSTOMERS = 100  # customers encoded per frame (between frames, requests run)
SLICE_ROWS = 2_000  # history records encoded per frame


class AnalyticsReport(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    taken_at: str
    customers: int
    history_rows: int
    seconds: float


class AnalyticsJob:
    def __init__(self, data_dir: Path, clock: Clock) -> None:
        self.data_dir = data_dir
        self._clock = clock
        self._lock = anyio.Lock()
        _remove_leftovers(data_dir)

    async def run_once(
        self, shards: dict[str, LocalShard], positions: dict[str, int]
    ) -> AnalyticsReport:
        """One complete snapshot. Concurrent calls queue, so two never write at once."""
        async with self._lock:
            return await self._run(shards, positions)

    async def _run(
        self, shards: dict[str, LocalShard], positions: dict[str, int]
    ) -> AnalyticsReport:
        started = time.perf_counter()
        taken_at = self._clock.now()
        customers = sum(shard.customer_count() for shard in shards.values())
        drained: Drained = {}
        report: dict[str, Any] = {"history": []}
        try:
            await self._stream_to_worker(shards, positions, taken_at, drained, report)
        finally:
            written = {(environment, table) for environment, table, _ in report["history"]}
            for key, (buffer, rows) in drained.items():
                if key not in written:  # never reached its files: retried next time (ENT-33)
                    buffer.requeue(rows)
        analytics = AnalyticsReport(
            path=str(report["database"]),
            taken_at=taken_at.isoformat(),
            customers=customers,
            history_rows=sum(rows for _, _, rows in report["history"]),
            seconds=time.perf_counter() - started,
        )
        logger.info("analytics snapshot %s", msgspec.json.encode(analytics).decode())
        return analytics

    async def _stream_to_worker(
        self,
        shards: dict[str, LocalShard],
        positions: dict[str, int],
        taken_at: datetime,
        drained: Drained,
        report: dict[str, Any],
    ) -> None:
        """Start the worker, stream every environment to it, and collect in `report` what it
        reports as it goes (so a failure after the history was written is known as such).

        Raises:
            AnalyticsFailed: the worker failed; its error output is in the message.
        """
        command = [sys.executable, "-m", "allotment.runtime.analytics_worker", str(self.data_dir)]
        errors: list[bytes] = []
        async with await anyio.open_process(command) as process:
            assert process.stdin is not None
            assert process.stdout is not None
            assert process.stderr is not None
            async with anyio.create_task_group() as tg:
                tg.start_soon(_read_reports, process.stdout, report)
                tg.start_soon(_read_all, process.stderr, errors)
                try:
                    for environment, shard in shards.items():
                        await _send_environment(
                            process.stdin, environment, shard, positions, drained
                        )
                    await process.stdin.send(encode_frame(End(taken_at=taken_at)))
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    pass  # the worker died: its exit status and error output say why
                finally:
                    await process.stdin.aclose()
            status = await process.wait()
        if status != 0 or "database" not in report:
            message = b"".join(errors).decode(errors="replace").strip()[-2000:]
            raise AnalyticsFailed(f"analytics worker exited with {status}: {message}")


def _remove_leftovers(data_dir: Path) -> None:
    """Files a worker stopped mid-write left behind (a shutdown kills it): never read, only
    in the way."""
    for leftover in [
        *data_dir.glob(".analytics-*.duckdb"),
        *data_dir.glob("history/*/*/.part-*.tmp"),
    ]:
        leftover.unlink(missing_ok=True)


class AnalyticsFailed(RuntimeError):
    """The analytics worker did not finish; the previous `analytics.duckdb` stays."""


async def _send_environment(
    stdin: ByteSendStream,
    environment: str,
    shard: LocalShard,
    positions: dict[str, int],
    drained: Drained,
) -> None:
    """The state in slices of customers, then the history drained from the buffers. Only what
    is buffered now is sent: rows arriving meanwhile belong to the next snapshot, or a busy
    server would keep the stream growing forever."""
    states = shard.states()
    start = EnvironmentStart(
        environment=environment,
        journal_position=positions.get(environment, 0),
        catalog=shard.catalog,
        customers=len(states),
    )
    await stdin.send(encode_frame(start))
    for first in range(0, len(states), SLICE_CUSTOMERS):
        await stdin.send(encode_frame(StateChunk(states=states[first : first + SLICE_CUSTOMERS])))
    chunks: tuple[tuple[str, BoundedBuffer[Any], Callable[[list[Any]], Frame]], ...] = (
        ("events", shard.events, lambda rows: EventChunk(records=rows)),
        ("entitlement_checks", shard.audits, lambda rows: AuditChunk(records=rows)),
        ("credit_transactions", shard.ledger, lambda rows: LedgerChunk(records=rows)),
    )
    for table, buffer, chunk in chunks:
        taken: list[Any] = []
        drained[environment, table] = (buffer, taken)
        left = len(buffer)
        while left > 0:
            rows = buffer.drain(min(SLICE_ROWS, left))
            left -= len(rows)
            taken += rows
            await stdin.send(encode_frame(chunk(rows)))


async def _read_reports(stdout: ByteReceiveStream, report: dict[str, Any]) -> None:
    buffered = b""
    async for chunk in stdout:
        buffered += chunk
        *lines, buffered = buffered.split(b"\n")
        for line in lines:
            if line.strip():
                decoded = msgspec.json.decode(line)
                if "history" in decoded:
                    report["history"].append(decoded["history"])
                else:
                    report.update(decoded)


async def _read_all(stream: ByteReceiveStream, into: list[bytes]) -> None:
    async for chunk in stream:
        into.append(chunk)
