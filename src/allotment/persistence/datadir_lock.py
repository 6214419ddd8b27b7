"""One server per data directory: an exclusive `flock` on `<data-dir>/allotment.lock`.

Two servers on one directory interleave journal writes and leave a journal neither can recover
(issue 10, scenario 6). The lock is an advisory `flock(LOCK_EX | LOCK_NB)` on a file that is
never deleted: the kernel drops it when the last descriptor of the open file goes away,
so a crashed or SIGKILLed server never leaves a stale lock behind, and the PID written into
the file after locking is only for the message, never trusted for the decision.

`flock` locks belong to the open file description, not the process. Two consequences shape
the API:

- A child made by `fork` inherits the descriptor and so shares the lock: the `allotment serve`
  process takes it before granian forks its worker, and the worker (which builds the system)
  keeps holding it for as long as it lives, even if its parent dies first.
- A second `open` + `flock` in the same process would conflict with the first. Within one
  process the lock is therefore counted (`hold`), keyed by the resolved directory: in-process
  users (tests that restart a system on the same directory while the old object is still
  referenced) share it, and the descriptor is closed when the last holder lets go. The
  registry is inherited across `fork` together with the descriptor it names.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
import time
from pathlib import Path

from allotment.persistence.file_modes import PRIVATE, PRIVATE_DIRECTORY

__all__ = ("LOCK_FILE", "DataDirInUse", "DataDirLock", "hold")

LOCK_FILE = "allotment.lock"
_PID_WAIT_S = 1.0  # the holder writes its PID right after locking; wait that long to name it


class DataDirInUse(RuntimeError):
    """Another process holds the data directory's lock."""

    def __init__(self, data_dir: Path, pid: int | None) -> None:
        holder = f"PID {pid}" if pid is not None else "another process"
        super().__init__(f"data directory {data_dir} in use by {holder}")
        self.data_dir = data_dir
        self.pid = pid


class DataDirLock:
    """A counted share of this process's lock on one data directory; `release` once."""

    def __init__(self, entry: _Entry) -> None:
        self._entry: _Entry | None = entry

    @property
    def path(self) -> Path:
        assert self._entry is not None, "released"
        return self._entry.path

    def release(self) -> None:
        """Give this share back; the lock itself goes with the last share. Idempotent."""
        entry, self._entry = self._entry, None
        if entry is not None:
            entry.drop()


class _Entry:
    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd = fd
        self.shares = 0

    def drop(self) -> None:
        with _mutex:
            self.shares -= 1
            if self.shares == 0:
                del _held[self.path.parent]
                os.close(self.fd)  # closing the last descriptor is what unlocks


_mutex = threading.Lock()
_held: dict[Path, _Entry] = {}


def hold(data_dir: Path) -> DataDirLock:
    """A share of the exclusive lock on `data_dir` (created if missing).

    Raises:
        DataDirInUse: another process (or another open file) holds it.
    """
    data_dir = data_dir.resolve()
    with _mutex:
        entry = _held.get(data_dir)
        if entry is None:
            entry = _Entry(data_dir / LOCK_FILE, _lock(data_dir))
            _held[data_dir] = entry
        entry.shares += 1
        return DataDirLock(entry)


def _lock(data_dir: Path) -> int:
    data_dir.mkdir(mode=PRIVATE_DIRECTORY, parents=True, exist_ok=True)
    path = data_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        os.close(fd)
        if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise
        raise DataDirInUse(data_dir, _holder(path)) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _holder(path: Path) -> int | None:
    """The PID the holder wrote, waiting briefly for a holder that has only just locked."""
    deadline = time.monotonic() + _PID_WAIT_S
    while True:
        try:
            return int(path.read_text().strip())
        except (OSError, ValueError):
            if time.monotonic() >= deadline:
                return None
        time.sleep(0.02)
