"""The journal's I/O seam: every byte the file journal writes and every fsync it asks for go
through a `JournalIO`, so tests can inject a full disk, a failing fsync or a torn write
(faults.py) into the real writer."""

from __future__ import annotations

import os
from io import FileIO
from pathlib import Path
from typing import Protocol

__all__ = ("JournalIO", "RealIO", "fsync_directory", "probe", "segments", "truncate_file")


class JournalIO(Protocol):
    """Blocking writes and syncs; the file journal calls them on a worker thread."""

    def write(self, file: FileIO, data: bytes) -> None:
        """Write all of `data` at the end of `file` (opened unbuffered, for appending).

        Raises:
            OSError: the write failed; some prefix of `data` may be in the file.
        """
        ...

    def fsync(self, fd: int) -> None:
        """Make everything written to `fd` durable.

        Raises:
            OSError: the sync failed. The page cache's state is then unknown (fsyncgate):
                never sync the same file again and trust the result.
        """
        ...


class RealIO:
    """The operating system."""

    def write(self, file: FileIO, data: bytes) -> None:
        view = memoryview(data)
        while view:  # an unbuffered file may write less than asked
            written = file.write(view)
            assert written is not None  # the file is blocking
            view = view[written:]

    def fsync(self, fd: int) -> None:
        os.fsync(fd)


PROBE_BYTES = 64 * 1024


def probe(directory: Path) -> None:
    """Write, fsync and remove a small file in `directory`: succeeds only when the disk takes
    writes again, so a supervisor can tell that space came back before reopening a journal.

    Raises:
        OSError: the disk still refuses (the probe file is removed where possible).
    """
    path = directory / f".probe-{os.getpid()}"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(bytes(PROBE_BYTES))
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
    finally:
        path.unlink(missing_ok=True)


def segments(directory: Path) -> list[Path]:
    """The journal's segment files, oldest first."""
    return sorted(directory.glob("journal-*.wal"))


def truncate_file(path: Path, size: int) -> None:
    """Cut `path` to `size` bytes, durably."""
    with path.open("r+b") as file:
        file.truncate(size)
        file.flush()
        os.fsync(file.fileno())


def fsync_directory(directory: Path) -> None:
    """Make the directory's entries (created, renamed, removed files) durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
