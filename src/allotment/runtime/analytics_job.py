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
        drained: list[tuple[BoundedBuffer[Any], list[Any]]] = []
        report: dict[str, Any] = {}
        try:
            await self._stream_to_worker(shards, positions, taken_at, drained, report)
        finally:
            if "history_rows" not in report:  # the history never reached its files
                for buffer, rows in drained:
                    buffer.requeue(rows)  # ENT-33: retried with the next snapshot
        analytics = AnalyticsReport(
            path=str(report["database"]),
            taken_at=taken_at.isoformat(),
            customers=customers,
            history_rows=int(report["history_rows"]),
            seconds=time.perf_counter() - started,
        )
        logger.info("analytics snapshot %s", msgspec.json.encode(analytics).decode())
        return analytics

    async def _stream_to_worker(
        self,
        shards: dict[str, LocalShard],
        positions: dict[str, int],
        taken_at: datetime,
        drained: list[tuple[BoundedBuffer[Any], list[Any]]],
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


class AnalyticsFailed(RuntimeError):
    """The analytics worker did not finish; the previous `analytics.duckdb` stays."""


async def _send_environment(
    stdin: ByteSendStream,
    environment: str,
    shard: LocalShard,
    positions: dict[str, int],
    drained: list[tuple[BoundedBuffer[Any], list[Any]]],
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
    chunks: tuple[tuple[BoundedBuffer[Any], Callable[[list[Any]], Frame]], ...] = (
        (shard.events, lambda rows: EventChunk(records=rows)),
        (shard.audits, lambda rows: AuditChunk(records=rows)),
        (shard.ledger, lambda rows: LedgerChunk(records=rows)),
    )
    for buffer, chunk in chunks:
        taken: list[Any] = []
        drained.append((buffer, taken))
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
                report.update(msgspec.json.decode(line))


async def _read_all(stream: ByteReceiveStream, into: list[bytes]) -> None:
    async for chunk in stream:
        into.append(chunk)
