"""The on-disk home of each environment: recovery at start, checkpoints while running.

<data-dir>/journal/<environment>/journal-*.wal
<data-dir>/snapshots/<environment>/snapshot-*.snap
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import anyio
import msgspec

from allotment.histogram import BATCH_BUCKETS, LATENCY_BUCKETS, Histogram
from allotment.persistence.compact_state import DICTIONARY, restored
from allotment.persistence.errors import CheckpointRefused, JournalUnavailable
from allotment.persistence.history_cursor import exported_position
from allotment.persistence.journal import Durability, FileJournal, probe, read_journal
from allotment.persistence.journal_io import JournalIO
from allotment.persistence.ports import Journal
from allotment.persistence.recovery_progress import RecoveryProgress
from allotment.persistence.reports import CheckpointReport, RecoveryReport
from allotment.persistence.snapshots import (
    SnapshotFile,
    SnapshotHeader,
    chunk_frames,
    chunk_part,
    frame,
    header_frame,
    load_latest,
)
from allotment.persistence.store_ports import RecoverableShard

__all__ = ("Storage",)

logger = logging.getLogger("allotment.storage")

CHUNK_CUSTOMERS = 50  # customers per chunk of a snapshot (an index frame and a forms frame)
SLICE_S = 0.001  # the longest a checkpoint holds the event loop before requests run
REST_PER_WORK = 2.0  # seconds a checkpoint rests per second it worked: a third of the loop


S = TypeVar("S", bound=RecoverableShard)


@dataclass
class _Environment:
    journal: FileJournal
    snapshots: Path
    last_checkpoint_position: int
    released: bool = False  # its journal is closed for a rebuild


_WRITE_AT_BYTES = 32 << 20


class _Slices:
    """Lets requests run whenever the checkpoint has held the event loop for `SLICE_S`, and
    rests `REST_PER_WORK` times as long as it worked before it goes on.

    A checkpoint's CPU is the loop's: a changed customer costs about 90 us to encode, so
    100k of them are seconds. Yielding every 50 customers let a slice run 4 to 18 ms, which
    a request arriving behind it waited out, once per step of its own (reading its body, its
    turn, its reply after the fsync). Yielding alone still let the checkpoint take every
    moment requests left it: under load the loop then had no time to spare, and a burst
    queued for 100s of ms. Resting keeps the checkpoint to a third of the loop's time."""

    __slots__ = ("_deadline", "_started")

    def __init__(self) -> None:
        self._started = time.perf_counter()
        self._deadline = self._started + SLICE_S

    async def maybe_yield(self) -> None:
        now = time.perf_counter()
        if now >= self._deadline:
            await _rest((now - self._started) * REST_PER_WORK)
            self._started = time.perf_counter()
            self._deadline = self._started + SLICE_S


async def _rest(seconds: float) -> None:
    await anyio.sleep(seconds)


class _Pending:
    """Frames encoded but not yet written, handed to a worker thread every 32 MB."""

    def __init__(self, snapshot: SnapshotFile, frames: list[bytes]) -> None:
        self._snapshot = snapshot
        self._frames = frames
        self._size = sum(len(f) for f in frames)

    async def add(self, frames: list[bytes]) -> None:
        self._frames += frames
        self._size += sum(len(f) for f in frames)
        if self._size >= _WRITE_AT_BYTES:
            await self.write()

    async def write(self) -> None:
        frames, self._frames, self._size = self._frames, [], 0
        await anyio.to_thread.run_sync(self._snapshot.write, frames)


def _snapshot_positions(directory: Path) -> list[int]:
    return [int(p.stem.split("-")[1]) for p in directory.glob("snapshot-*.snap")]


class Storage:
    """Journals and snapshots under one data directory (a `store_ports.ShardStore`)."""

    def __init__(
        self,
        data_dir: Path,
        now: Callable[[], datetime],
        durability: Durability = Durability.FSYNC,
        segment_size_max: int = 64 * 1024 * 1024,
        snapshots_kept: int = 2,
        io: JournalIO | None = None,
        progress_every_s: float = 5.0,
    ) -> None:
        self.data_dir = data_dir
        self._progress_every_s = progress_every_s  # a longer recovery reports its progress
        self._now = now  # when a snapshot is taken
        self.durability = durability
        self._segment_size_max = segment_size_max
        self._snapshots_kept = snapshots_kept
        self._io = io  # the journals' file operations (tests inject faults here)
        self._environments: dict[str, _Environment] = {}
        # One checkpoint or rebuild at a time per environment. Kept across rebuilds, which
        # replace the _Environment, so a waiter never holds a lock nobody else uses.
        self._locks: dict[str, anyio.Lock] = {}
        self.recoveries: list[RecoveryReport] = []
        # Each environment's group-commit counts, kept across rebuilds (a new journal each).
        self._commits: dict[str, tuple[Histogram, Histogram]] = {}

    def readiness_problems(self, disk_free_min_bytes: int) -> list[str]:
        """Why the data directory cannot take the journal's writes (OPS-P9): a write, fsync
        and remove of a probe file fails, or free space is below `disk_free_min_bytes`."""
        problems = []
        try:
            probe(self.data_dir)
        except OSError as error:
            problems.append(f"data directory not writable: {error.strerror or error}")
        try:
            free = shutil.disk_usage(self.data_dir).free
        except OSError as error:
            return [*problems, f"disk space unknown: {error.strerror or error}"]
        if free < disk_free_min_bytes:
            problems.append(
                f"disk space low: {free >> 20} MB free, below the minimum "
                f"{disk_free_min_bytes >> 20} MB"
            )
        return problems

    def existing_environments(self) -> list[str]:
        root = self.data_dir / "journal"
        return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.exists() else []

    def journal(self, environment: str) -> FileJournal:
        return self._environments[environment].journal

    def open_shard(self, environment: str, make_shard: Callable[[Journal], S]) -> S:
        """Recover an environment: the latest snapshot, then the journal tail through `evolve`.
        (The caller keeps the cycle collector out of it: runtime/heap.py.)

        Raises:
            JournalCorrupt: damage in the middle of the journal; start-up must stop.
        """
        started = time.perf_counter()
        shard, snapshot_position, replayed = self._recover(environment, make_shard)
        report = RecoveryReport(
            environment=environment,
            snapshot_position=snapshot_position,
            records_replayed=replayed,
            customers=shard.customer_count(),
            seconds=time.perf_counter() - started,
        )
        self.recoveries.append(report)
        logger.info("recovered %s", msgspec.json.encode(report).decode())
        return shard

    def _recover(self, environment: str, make_shard: Callable[[Journal], S]) -> tuple[S, int, int]:
        journal_dir = self.data_dir / "journal" / environment
        snapshot_dir = self.data_dir / "snapshots" / environment
        snapshot = load_latest(snapshot_dir)
        after = snapshot.header.position if snapshot else 0
        tail = read_journal(journal_dir, after=after) if journal_dir.exists() else None
        last = max(after, tail.last_position if tail else 0)
        commit_seconds, commit_records = self._commits.setdefault(
            environment, (Histogram(LATENCY_BUCKETS), Histogram(BATCH_BUCKETS))
        )
        journal = FileJournal(
            journal_dir, self.durability, last + 1, self._segment_size_max, io=self._io,
            commit_seconds=commit_seconds, commit_records=commit_records,
        )  # fmt: skip
        shard = make_shard(journal)
        if snapshot is not None:
            header = snapshot.header
            stored = snapshot.stored
            forms = (restored(form, header.dictionary) for form in stored.forms)
            shard.restore(
                header.catalog,
                snapshot.customers,
                header.event_keys,
                zip(stored.ids, forms, strict=True),
                stored.keys(),
            )
            shard.environment_payments.update(header.unapplied_payments)
            shard.prices.restore(header.prices)
            shard.restore_numbers(header.sequences)
            shard.catalog_version = header.catalog_version
            if header.key_tables:
                shard.event_keys.import_tables(
                    snapshot.key_tables, header.key_slots_used, header.keys_per_day
                )
        records = tail.records if tail else []
        progress = RecoveryProgress(environment, len(records), self._progress_every_s)
        for replayed, record in enumerate(records, 1):
            shard.replay(record)
            if progress.due(replayed):
                progress.replayed(replayed, shard.customer_count)
        shard.reindex()
        self._environments[environment] = _Environment(journal, snapshot_dir, after)
        return shard, after, len(records)

    def exclusive(self, environment: str) -> anyio.Lock:
        """The lock that checkpoints and rebuilds of `environment` take."""
        lock = self._locks.get(environment)
        if lock is None:
            lock = self._locks[environment] = anyio.Lock()
        return lock

    async def release_journal(self, environment: str) -> None:
        """Close the journal of a shard about to be rebuilt from disk. A healthy journal is
        flushed first: the turns waiting on it applied real facts and are acknowledged. A failed
        one is cut back to its last durable record, so nothing unacknowledged is kept.

        Raises:
            OSError: the disk still refuses writes; try again later.
        """
        env = self._environments[environment]
        journal = env.journal
        if not env.released:  # a retry after the disk refused only probes again
            if journal.failure is None:
                with contextlib.suppress(JournalUnavailable):  # failed meanwhile: cut back
                    await journal.flush()
            if journal.failure is None:
                journal.close()
            else:
                journal.close_after_failure()
            env.released = True
        probe(journal.directory)

    def _trim(self, environment: str, oldest_snapshot: int) -> int:
        """Runs on a worker thread: delete the segments both the oldest kept snapshot and the
        history export have passed."""
        exported = exported_position(self.data_dir, environment)
        journal = self._environments[environment].journal
        return journal.delete_segments_before(min(oldest_snapshot, exported))

    def due_for_checkpoint(self, environment: str, every_records: int) -> bool:
        env = self._environments[environment]
        return env.journal.position - env.last_checkpoint_position >= every_records

    def changed_since_checkpoint(self, environment: str) -> bool:
        """Whether the journal holds records the last checkpoint (or the snapshot recovered
        from) does not cover. Every change to what a snapshot holds is a journal record, so
        when this is False a checkpoint would write the snapshot already on disk."""
        env = self._environments[environment]
        return env.journal.position != env.last_checkpoint_position

    async def checkpoint(self, environment: str, shard: RecoverableShard) -> CheckpointReport:
        """Write a snapshot without stalling the loop, then drop journal segments it covers.
        Concurrent calls for one environment run one after the other."""
        async with self.exclusive(environment):
            return await self._checkpoint(environment, shard)

    async def _checkpoint(self, environment: str, shard: RecoverableShard) -> CheckpointReport:
        started = time.perf_counter()
        env = self._environments[environment]
        _refuse_if_failed(shard, env.journal)
        position = await env.journal.rotate()  # records <= position are in closed segments
        # Each customer is taken as it is when encoded (its state says its journal position;
        # recovery replays it only the records after that), so taking them all at once, a
        # stop of the loop, is not needed.
        order = shard.customer_order()
        snapshot = await anyio.to_thread.run_sync(SnapshotFile, env.snapshots, position)
        try:
            await self._encode(snapshot, shard, position, order)
            # Customers were encoded with records appended after `position`. Those must be
            # durable before the snapshot is visible: were they lost in a crash, the positions
            # would be handed out again after recovery, and the snapshot's customers would
            # skip the new records.
            await env.journal.flush()
            _refuse_if_failed(shard, env.journal)  # a turn may have failed while we encoded
            # Recovery re-feeds the outbox only the records after `position`: those up to it
            # must be in the outbox's own log before the snapshot makes them unreplayed.
            await shard.notifications_logged(position)
            path = await anyio.to_thread.run_sync(snapshot.commit, self._snapshots_kept)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(snapshot.abandon)
            raise
        # Keep the journal back to the OLDEST kept snapshot, so that a damaged newest snapshot
        # can fall back to the older one and replay from there without a gap; and back to the
        # history export, whose only source is the journal (a deleted segment that was not
        # exported would be missing from the history for ever).
        oldest = min(_snapshot_positions(env.snapshots), default=position)
        deleted = await anyio.to_thread.run_sync(self._trim, environment, oldest)
        env.last_checkpoint_position = position
        report = CheckpointReport(
            environment=environment,
            position=position,
            customers=len(order),
            bytes=path.stat().st_size,
            seconds=time.perf_counter() - started,
            segments_deleted=deleted,
        )
        logger.info("checkpoint %s", msgspec.json.encode(report).decode())
        return report

    async def _encode(
        self,
        snapshot: SnapshotFile,
        shard: RecoverableShard,
        position: int,
        order: list[uuid.UUID],
    ) -> None:
        """Encode the customers in slices and the key tables one by one, handing each 32 MB
        to a worker thread to write, with requests served between slices."""
        with shard.event_keys.exported() as keys:
            header = SnapshotHeader(
                position=position,
                created_at=self._now(),
                catalog=shard.catalog,  # replaying catalog facts on a later catalog: a no-op
                customers=len(order),
                chunks=-(-len(order) // CHUNK_CUSTOMERS),
                key_tables=len(keys.slots_used),
                key_slots_used=keys.slots_used,
                keys_per_day=keys.keys_per_day,
                unapplied_payments=shard.environment_payments.values(),
                prices=shard.prices.recorded,
                sequences=shard.numbers_taken(),
                catalog_version=shard.catalog_version,
                dictionary=DICTIONARY,
            )
            pending = _Pending(snapshot, header_frame(header))
            slices = _Slices()
            for start in range(0, len(order), CHUNK_CUSTOMERS):
                parts = []
                for customer_id in order[start : start + CHUNK_CUSTOMERS]:
                    parts.append(chunk_part(shard.stored_customer(customer_id)))
                    await slices.maybe_yield()
                await pending.add(chunk_frames(parts))
            for table in keys.tables:
                await pending.add(frame(table))
                await slices.maybe_yield()
            for _ in shard.event_keys.merge_pending():  # every table is copied
                await slices.maybe_yield()
        await pending.write()


def _refuse_if_failed(shard: RecoverableShard, journal: FileJournal) -> None:
    """A checkpoint publishes memory as durable truth: never when memory may be ahead of the
    journal (ARCHITECTURE principle 10).

    Raises:
        CheckpointRefused: the shard or its journal failed.
    """
    refusal = shard.checkpoint_refusal()
    if refusal is not None:
        raise CheckpointRefused(f"checkpoint refused: {refusal}")
    if journal.failure is not None:
        raise CheckpointRefused(f"checkpoint refused: journal failed: {journal.failure}")
