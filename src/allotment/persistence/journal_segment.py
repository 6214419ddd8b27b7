"""The file journal's active segment and the two threads that commit to it (journal.py).

The writer thread writes each batch, in order; the syncer thread fsyncs each written batch, in
order, then rotates the segment when the batch asks for it or filled it. So the next batch is
written while the previous one's fsync is in flight. Each thread stops touching the file after
its own failure, and the writer after the syncer's too; a thread hands a batch back (`finish`)
only after its last touch of the file.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from io import FileIO
from pathlib import Path
from queue import SimpleQueue

from allotment.persistence.codec import FORMAT_VERSION
from allotment.persistence.file_modes import private_opener
from allotment.persistence.journal_format import HEADER_SIZE, encode_header, header_version
from allotment.persistence.journal_io import JournalIO, fsync_directory, segments, truncate_file

__all__ = ("ActiveSegment", "Batch", "BatchQueue")

logger = logging.getLogger("allotment.journal")


def _segment_name(first_position: int) -> str:
    return f"journal-{first_position:020d}.wal"


@dataclass(slots=True, eq=False)
class Batch:
    """One group commit on its way through the writer and syncer threads. The thread that
    finishes it sets `done` last; the loop reads the rest only after seeing `done`."""

    data: bytes
    records: int
    last: int  # the batch's last position
    rotate: bool  # a rotation was asked for; the writer also sets it when the segment is full
    started: float
    end_offset: int = 0  # the active segment's size once the batch is written
    durable: bool = False  # written (and synced, when syncing)
    rotated: bool = False
    error: BaseException | None = None
    done: bool = False
    rotation_done: threading.Event | None = None  # the writer waits on it: a new segment


BatchQueue = SimpleQueue[Batch | None]  # None: the thread ends
Finish = Callable[[Batch], None]


class ActiveSegment:
    """The segment new records go to: the last one, unless it is of an older format.

    `durable_offset` is the segment's size up to the last completed fsync (the last write,
    when not syncing): what a cut back after a failure keeps."""

    def __init__(
        self, directory: Path, io: JournalIO, sync: bool, size_max: int, next_position: int
    ) -> None:
        self.directory = directory
        self._io = io
        self._sync = sync
        self._size_max = size_max
        self.path, self.file = self._open(next_position)
        self.durable_offset = self.file.tell()
        self.written_offset = self.durable_offset
        self.write_failed = False
        self.sync_failed = False

    def _open(self, next_position: int) -> tuple[Path, FileIO]:
        files = segments(self.directory)
        path = files[-1] if files else self.directory / _segment_name(next_position)
        if files:
            with path.open("rb") as reader:
                head = reader.read(HEADER_SIZE)
            if head and header_version(head) != FORMAT_VERSION:
                if path.stat().st_size > HEADER_SIZE:  # an old segment stays as it is
                    path = self.directory / _segment_name(next_position)
                else:  # a torn or old header with no record after it
                    truncate_file(path, 0)
        created = not path.exists()
        file = FileIO(
            path, "a", opener=private_opener
        )  # unbuffered: nothing is left in a buffer to write at close
        if file.tell() == 0:
            self._io.write(file, encode_header(next_position))
        if created:  # the new file's name must survive a power cut with its records
            fsync_directory(self.directory)
        return path, file

    def write_loop(self, to_write: BatchQueue, to_sync: BatchQueue, finish: Finish) -> None:
        """The writer thread: one write per batch, in order. A batch that is not synced and
        fills no segment is finished here; the others go on to the syncer."""
        while (batch := to_write.get()) is not None:
            self._write(batch, to_sync, finish)
            # Blocked in `get`, the name would keep the last batch's data (up to the pending
            # bound, 64 MB) alive until the next batch: for good, on an idle server.
            del batch

    def _write(self, batch: Batch, to_sync: BatchQueue, finish: Finish) -> None:
        if self.write_failed or self.sync_failed:  # nothing more reaches the file
            finish(batch)
            return
        try:
            if batch.data:
                self._io.write(self.file, batch.data)
        except Exception as error:  # any I/O failure stops acknowledgements
            self.write_failed = True
            batch.error = error
            finish(batch)
            return
        self.written_offset += len(batch.data)
        batch.end_offset = self.written_offset
        batch.rotate = batch.rotate or batch.end_offset >= self._size_max
        if not (self._sync or batch.rotate):
            self.durable_offset, batch.durable = batch.end_offset, True
            finish(batch)
            return
        rotation = batch.rotation_done = threading.Event() if batch.rotate else None
        to_sync.put(batch)
        if rotation is not None:  # the next batch goes to the next segment
            rotation.wait()

    def sync_loop(self, to_sync: BatchQueue, finish: Finish) -> None:
        """The syncer thread: the fsync of each written batch, in order (it covers everything
        written before it), then the batch's rotation. After a failed fsync it syncs nothing
        more: the page cache's state is unknown."""
        while (batch := to_sync.get()) is not None:
            if not self.sync_failed:
                try:
                    if self._sync and batch.data:
                        self._io.fsync(self.file.fileno())
                    self.durable_offset, batch.durable = batch.end_offset, True
                    if batch.rotate:
                        self._rotate(batch.last + 1)
                        batch.rotated = True
                except Exception as error:  # any I/O failure stops acknowledgements
                    self.sync_failed = True
                    batch.error = error
            finish(batch)
            del batch  # as in `write_loop`: a batch that rotated would stay alive

    def _rotate(self, first_position: int) -> None:
        """Close the segment durably and start the next one."""
        if self.durable_offset <= HEADER_SIZE:
            return  # an empty segment is already a clean boundary
        self._io.fsync(self.file.fileno())
        self.file.close()
        path = self.directory / _segment_name(first_position)
        self.durable_offset = 0
        self.path, self.file = path, FileIO(path, "a", opener=private_opener)
        self._io.write(self.file, encode_header(first_position))
        self.durable_offset = self.written_offset = HEADER_SIZE
        fsync_directory(self.directory)

    def close(self) -> None:
        self._io.fsync(self.file.fileno())
        self.file.close()

    def close_after_failure(self) -> None:
        """Cut the segment back to `durable_offset`, sync that, and close (journal.py's
        `FileJournal.close_after_failure`)."""
        if not self.file.closed:
            try:
                self.file.close()
            except OSError:  # the descriptor is released anyway; its error is the old one
                logger.warning("journal %s: closing after failure", self.path.name)
        fd = os.open(self.path, os.O_RDWR)
        try:
            os.ftruncate(fd, self.durable_offset)
            self._io.fsync(fd)
        finally:
            os.close(fd)
        logger.warning(
            "journal %s: cut back to byte %d, its last durable record",
            self.path.name,
            self.durable_offset,
        )
