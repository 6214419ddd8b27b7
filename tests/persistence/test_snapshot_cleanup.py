"""Temporary snapshot files left by a crash are removed at start (issue 10, item 7)."""

from __future__ import annotations

from pathlib import Path

import pytest

from allotment.persistence.snapshots import SnapshotFile, load_latest


def test_load_latest_removes_unfinished_snapshots_and_nothing_else(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    crashed = SnapshotFile(tmp_path, 42)  # written to, never committed: as a crash leaves it
    crashed.write([b"half a snapshot"])
    other = tmp_path / "snapshot-00000000000000000007.snap"  # a real (here: damaged) one
    other.write_bytes(b"not a snapshot")
    assert len(list(tmp_path.glob("snapshot-*.tmp"))) == 1
    assert load_latest(tmp_path) is None  # the damaged one is skipped, not deleted
    assert not list(tmp_path.glob("*.tmp"))
    assert other.exists()
    assert "unfinished" in caplog.text
    crashed.abandon()  # closes the descriptor; the file is already gone
