"""The analytics job: the server streams its state and the drained audit records to a worker
process (`persistence.analytics_worker`), which writes the audit history, exports the `events` and
`credit_transactions` histories from the journal up to its durable position
(`persistence.history_export`) and rebuilds `analytics.duckdb`. The server only encodes
msgpack frames (C, between which requests run); building rows, Arrow tables and the database
happens in the worker, off this process's GIL.

At shutdown, `drain` exports the journal histories up to the durable positions once more, in
a process of its own, so a clean stop leaves no accepted event out of the history."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any

import anyio
import msgspec
from anyio.abc import ByteReceiveStream, ByteSendStream

from allotment.persistence.analytics_stream import (
    AuditChunk,
    End,
    EnvironmentStart,
    StateChunk,
    encode_frame,
)
from allotment.persistence.history_cursor import exported_position
from allotment.persistence.reports import AnalyticsReport, ExportReport
from allotment.persistence.store_ports import AnalyticsSource, AuditRecord, AuditSource

__all__ = ("AnalyticsFailed", "AnalyticsJob")

logger = logging.getLogger("allotment.analytics")

# The audit records drained from each environment's buffer, kept until the worker says they
# are written, to be put back in their buffer otherwise.
Drained = dict[str, tuple[AuditSource, list[AuditRecord]]]

SLICE_CUSTOMERS = 100  # customers encoded per frame (between frames, requests run)
SLICE_ROWS = 2_000  # audit records encoded per frame
DRAIN_TIMEOUT_S = 120.0  # a shutdown export longer than this is left for the next start


class AnalyticsJob:
    """Writes the analytics files from the shards (a `store_ports.AnalyticsRunner`)."""

    def __init__(self, data_dir: Path, now: Callable[[], datetime]) -> None:
        self.data_dir = data_dir
        self._now = now
        self._lock = anyio.Lock()
        _remove_leftovers(data_dir)

    async def run_once(
        self, shards: dict[str, AnalyticsSource], positions: dict[str, int], durable: dict[str, int]
    ) -> AnalyticsReport:
        """One complete snapshot: the state as of `positions`, the journal histories exported
        up to `durable` (each environment's durable journal position). Concurrent calls (and
        `drain`) queue, so two never write at once."""
        async with self._lock:
            return await self._run(shards, positions, durable)

    async def _run(
        self, shards: dict[str, AnalyticsSource], positions: dict[str, int], durable: dict[str, int]
    ) -> AnalyticsReport:
        started = time.perf_counter()
        taken_at = self._now()
        customers = sum(shard.customer_count() for shard in shards.values())
        drained: Drained = {}
        report: dict[str, Any] = {"history": [], "exported": []}
        try:
            await self._stream_to_worker(shards, (positions, durable), taken_at, drained, report)
        finally:
            written = {environment for environment, _, _ in report["history"]}
            for environment, (buffer, rows) in drained.items():
                if environment not in written:  # never reached its files: retried (ENT-33)
                    buffer.requeue(rows)
        exported = [msgspec.convert(line, ExportReport) for line in report["exported"]]
        analytics = AnalyticsReport(
            path=str(report["database"]),
            taken_at=taken_at.isoformat(),
            customers=customers,
            history_rows=sum(rows for _, _, rows in report["history"])
            + sum(e.events + e.credit_transactions + e.reservation_history for e in exported),
            exported={e.environment: e.position for e in exported},
            seconds=time.perf_counter() - started,
        )
        logger.info("analytics snapshot %s", msgspec.json.encode(analytics).decode())
        return analytics

    async def _stream_to_worker(
        self,
        shards: dict[str, AnalyticsSource],
        positions: tuple[dict[str, int], dict[str, int]],
        taken_at: datetime,
        drained: Drained,
        report: dict[str, Any],
    ) -> None:
        """Start the worker, stream every environment to it, and collect in `report` what it
        reports as it goes (so a failure after the history was written is known as such).

        Raises:
            AnalyticsFailed: the worker failed; its error output is in the message.
        """
        command = [
            sys.executable,
            "-m",
            "allotment.persistence.analytics_worker",
            str(self.data_dir),
        ]
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

    async def drain(self, durable: dict[str, int]) -> list[ExportReport]:
        """Export the journal histories of every environment up to `durable` (its durable
        journal position), waiting for a snapshot in progress first; environments already
        exported that far cost nothing. For shutdown: it never raises; a failure or a run past
        `DRAIN_TIMEOUT_S` is logged, and the next start exports the rest (the journal keeps
        every segment not yet exported).

        Returns:
            One report per environment exported.
        """
        try:
            # Shielded like the journal flush before it: a shutdown by cancellation still
            # exports, within the bound.
            with anyio.CancelScope(shield=True), anyio.fail_after(DRAIN_TIMEOUT_S):
                async with self._lock:
                    behind = {
                        environment: position
                        for environment, position in durable.items()
                        if exported_position(self.data_dir, environment) < position
                    }
                    reports = await self._export(behind) if behind else []
        except Exception:
            logger.exception("history export at shutdown failed; the next start catches up")
            return []
        for report in reports:
            logger.info("history exported %s", msgspec.json.encode(report).decode())
        return reports

    async def _export(self, durable: dict[str, int]) -> list[ExportReport]:
        """Run the exporter in a process of its own (pyarrow stays out of this one).

        Raises:
            AnalyticsFailed: the exporter failed; its error output is in the message.
        """
        targets = [f"{environment}={position}" for environment, position in durable.items()]
        module = "allotment.persistence.history_export"
        command = [sys.executable, "-m", module, str(self.data_dir), *targets]
        done = await anyio.run_process(command, check=False)
        if done.returncode != 0:
            message = done.stderr.decode(errors="replace").strip()[-2000:]
            raise AnalyticsFailed(f"history export exited with {done.returncode}: {message}")
        lines = done.stdout.decode().splitlines()
        return [msgspec.json.decode(line, type=ExportReport) for line in lines if line.strip()]


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
    shard: AnalyticsSource,
    positions: tuple[dict[str, int], dict[str, int]],
    drained: Drained,
) -> None:
    """The state in slices of customers, then the audit records drained from their buffer.
    Only what is buffered now is sent: records arriving meanwhile belong to the next snapshot,
    or a busy server would keep the stream growing forever. Accepted events and credit
    transactions are not sent: the worker reads them from the journal."""
    count = shard.customer_count()
    states = islice(shard.each_state(), count)  # decoded a slice at a time (compact state)
    start = EnvironmentStart(
        environment=environment,
        journal_position=positions[0].get(environment, 0),
        durable_position=positions[1].get(environment, 0),
        catalog=shard.catalog,
        customers=count,
        unapplied_payments=shard.environment_payments.values(),
    )
    await stdin.send(encode_frame(start))
    while chunk := list(islice(states, SLICE_CUSTOMERS)):
        await stdin.send(encode_frame(StateChunk(states=chunk)))
    taken: list[AuditRecord] = []
    drained[environment] = (shard.audits, taken)
    left = len(shard.audits)
    while left > 0:
        rows = shard.audits.drain(min(SLICE_ROWS, left))
        left -= len(rows)
        taken += rows
        await stdin.send(encode_frame(AuditChunk(records=rows)))


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
                elif "exported" in decoded:
                    report["exported"].append(decoded["exported"])
                else:
                    report.update(decoded)


async def _read_all(stream: ByteReceiveStream, into: list[bytes]) -> None:
    async for chunk in stream:
        into.append(chunk)
