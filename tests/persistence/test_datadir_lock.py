"""The data directory lock (issue 10, scenario 6): one process per directory, shared within it."""

from __future__ import annotations

import fcntl
import gc
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from allotment.config import Settings
from allotment.persistence import datadir_lock
from allotment.runtime.clock import ManualClock
from allotment.wiring import build_system
from tests.conftest import START

_HOLDER = (
    "import sys; from pathlib import Path; from allotment.persistence import datadir_lock\n"
    "datadir_lock.hold(Path(sys.argv[1])); print('held', flush=True); sys.stdin.read()"
)


@contextmanager
def _other_process_holds(data_dir: Path) -> Iterator[int]:
    """Another process holding the lock until the block ends; yields its PID."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(data_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        yield holder.pid
    finally:
        holder.communicate(timeout=60)  # closing stdin ends it


def _locked_by_anyone(data_dir: Path) -> bool:
    fd = os.open(data_dir / datadir_lock.LOCK_FILE, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_another_process_is_refused_with_the_holders_pid(tmp_path: Path) -> None:
    with _other_process_holds(tmp_path) as pid:
        with pytest.raises(datadir_lock.DataDirInUse) as refused:
            datadir_lock.hold(tmp_path)
        assert refused.value.pid == pid
        assert str(refused.value) == f"data directory {tmp_path.resolve()} in use by PID {pid}"
    datadir_lock.hold(tmp_path).release()  # its exit released it


def test_shares_in_one_process_release_the_lock_with_the_last(tmp_path: Path) -> None:
    first = datadir_lock.hold(tmp_path)
    second = datadir_lock.hold(tmp_path / ".." / tmp_path.name)  # the same directory
    first.release()
    first.release()  # idempotent: one share is one release
    assert _locked_by_anyone(tmp_path)
    second.release()
    assert not _locked_by_anyone(tmp_path)


def test_a_persistent_system_holds_the_lock_and_a_memory_one_does_not(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, clock="manual")
    build_system(settings, ManualClock(START), persistent=False)
    assert not (tmp_path / datadir_lock.LOCK_FILE).exists()
    system = build_system(settings, ManualClock(START))
    restarted = build_system(settings, ManualClock(START))  # in-process restarts share it
    assert _locked_by_anyone(tmp_path)
    del system, restarted
    gc.collect()  # garbage: the last share goes, and the lock with it
    assert not _locked_by_anyone(tmp_path)


def test_a_system_cannot_open_a_directory_another_process_serves(tmp_path: Path) -> None:
    with _other_process_holds(tmp_path) as pid:
        with pytest.raises(datadir_lock.DataDirInUse) as refused:
            build_system(Settings(data_dir=tmp_path, clock="manual"), ManualClock(START))
        assert refused.value.pid == pid
        assert not (tmp_path / "journal").exists()  # refused before recovery touched anything
