"""A snapshot file that fails to commit is abandoned without touching anything else."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from allotment.persistence.snapshots import SnapshotFile


def test_abandoning_after_a_failed_commit_closes_nothing_it_does_not_own(tmp_path: Path) -> None:
    """commit closes its descriptor before the rename; a failed rename then abandon() (what a
    failed checkpoint does) must not close the number again: it may belong to another file."""
    snapshot = SnapshotFile(tmp_path, 7)
    in_the_way = tmp_path / f"snapshot-{7:020d}.snap"
    in_the_way.mkdir()
    (in_the_way / "x").write_text("")  # the rename onto a non-empty directory fails
    with pytest.raises(IsADirectoryError):
        snapshot.commit(2)
    other = os.open(tmp_path / "other", os.O_WRONLY | os.O_CREAT, 0o644)  # reuses the number
    try:
        snapshot.abandon()
        os.fstat(other)  # still open
    finally:
        os.close(other)
    assert not list(tmp_path.glob("*.tmp"))  # the unfinished file is gone
    snapshot.abandon()  # idempotent
