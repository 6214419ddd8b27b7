"""A fault-injecting `JournalIO` for tests and simulation: a full disk, failing fsyncs and
torn writes, injected under the real file journal."""

from __future__ import annotations

import errno
import os
import threading
from io import FileIO

from allotment.persistence.journal_io import JournalIO, RealIO

__all__ = ("FaultyIO",)


class FaultyIO:
    """Passes writes and fsyncs to `inner` (the real disk by default) until armed.

    Arming is thread-safe: tests arm it on the event loop while the journal writes on a
    worker thread. Each armed fault raises `OSError(error)`, ENOSPC unless told otherwise.
    """

    def __init__(self, inner: JournalIO | None = None) -> None:
        self._inner = inner or RealIO()
        self._lock = threading.Lock()
        self._write_failures = 0
        self._fsync_failures = 0
        self._tear: int | None = None  # bytes the next write keeps before it fails
        self._full = False
        self._error = errno.ENOSPC
        self.writes = 0  # calls that reached the disk, whole or torn
        self.fsyncs = 0
        self.faults = 0  # faults raised

    def fail_writes(self, count: int = 1, error: int = errno.ENOSPC) -> None:
        """The next `count` writes write nothing and raise."""
        with self._lock:
            self._write_failures, self._error = count, error

    def fail_fsyncs(self, count: int = 1, error: int = errno.EIO) -> None:
        """The next `count` fsyncs raise (after the data reached the page cache)."""
        with self._lock:
            self._fsync_failures, self._error = count, error

    def tear_next_write(self, keep_bytes: int) -> None:
        """The next write writes only its first `keep_bytes` bytes, then raises ENOSPC."""
        with self._lock:
            self._tear, self._error = keep_bytes, errno.ENOSPC

    def fill_disk(self) -> None:
        """Every write and fsync raises ENOSPC until `free_disk`."""
        with self._lock:
            self._full, self._error = True, errno.ENOSPC

    def free_disk(self) -> None:
        with self._lock:
            self._full = False

    def _raise(self) -> None:
        self.faults += 1
        raise OSError(self._error, os.strerror(self._error))

    def write(self, file: FileIO, data: bytes) -> None:
        with self._lock:
            fail = self._full or self._write_failures > 0
            self._write_failures -= 1 if self._write_failures > 0 else 0
            tear, self._tear = self._tear, None
        if fail:
            self._raise()
        self.writes += 1
        if tear is not None:
            self._inner.write(file, data[:tear])
            self._raise()
        self._inner.write(file, data)

    def fsync(self, fd: int) -> None:
        with self._lock:
            fail = self._full or self._fsync_failures > 0
            self._fsync_failures -= 1 if self._fsync_failures > 0 else 0
        if fail:
            self._raise()
        self.fsyncs += 1
        self._inner.fsync(fd)
