"""`<data-dir>/api_keys.json` on disk, shared by the server and `allotment keys` (OPS-K3, OPS-K7).

Two files:

- `api_keys.json`: the key records (hashes, never keys), replaced atomically: written to a
  temporary file created 0600, fsynced, renamed over the old one, and the directory fsynced.
  A reader therefore sees the old list or the new one, never a torn one.
- `api_keys.lock`: 8 bytes, never replaced. Writers hold `flock` on it for their
  read-modify-write, so a change made by the CLI and one made by the server (a revoke through
  the admin API, last-use times) never overwrite each other. The 8 bytes are a change counter
  that each writer increments after its rename. The server maps them into memory, so checking
  for a change on a request costs one memory read and no system call, and a change is seen by
  the first request that starts after the writer returns.
"""

from __future__ import annotations

import fcntl
import mmap
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec

from allotment.persistence.file_modes import PRIVATE, PRIVATE_DIRECTORY
from allotment.persistence.ports import ApiKey

__all__ = (
    "KEYS_FILE",
    "LOCK_FILE",
    "ChangeCounter",
    "file_identity",
    "read_records",
    "write_records",
)

KEYS_FILE = "api_keys.json"
LOCK_FILE = "api_keys.lock"
_COUNTER_BYTES = 8
_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(list[ApiKey])

FileIdentity = tuple[int, int, int]  # inode, mtime in ns, size


def file_identity(path: Path) -> FileIdentity | None:
    """What changes when the file is replaced or edited; None when it does not exist."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


def read_records(path: Path) -> list[ApiKey]:
    """The records in `path`; none when it does not exist yet.

    Raises:
        msgspec.DecodeError, msgspec.ValidationError: the file is not a key list.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    return _DECODER.decode(data)


def write_records(path: Path, records: list[ApiKey]) -> FileIdentity:
    """Replace `path` with `records`, durably and atomically; returns the new file's identity."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, PRIVATE)
    try:
        os.fchmod(fd, PRIVATE)  # an old temporary left with wider bits is narrowed too
        view = memoryview(msgspec.json.format(_ENCODER.encode(records)))
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
        identity = os.fstat(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return identity.st_ino, identity.st_mtime_ns, identity.st_size


class ChangeCounter:
    """The lock file's counter, mapped into memory (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(mode=PRIVATE_DIRECTORY, parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                if os.fstat(self._fd).st_size < _COUNTER_BYTES:  # new: zeros, never shrunk
                    os.ftruncate(self._fd, _COUNTER_BYTES)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            self._map = mmap.mmap(self._fd, _COUNTER_BYTES)
        except BaseException:
            os.close(self._fd)
            raise
        self._view = memoryview(self._map).cast("Q")

    def value(self) -> int:
        """The counter now: one memory read."""
        return self._view[0]

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the writers' lock; other writers (in any process) wait."""
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def increment(self) -> int:
        """Count one change; call while `locked`, after the new file is in place."""
        self._view[0] += 1
        return self._view[0]

    def close(self) -> None:
        self._view.release()
        self._map.close()
        os.close(self._fd)
