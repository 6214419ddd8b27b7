"""Segments written in format 1 (before records carried a magic and a position) still recover.

The fixture `fixtures/journal-v1/` was written by the format-1 writer: five records, one
CustomerCreated each, for customers 1..5 (issue 10, item 7: a journal written before the format
change still recovers).
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from allotment.persistence.journal import iter_records, read_journal

FIXTURE = Path(__file__).parent / "fixtures" / "journal-v1"


def _copy(tmp_path: Path) -> Path:
    directory = tmp_path / "journal"
    shutil.copytree(FIXTURE, directory)
    return directory


def test_a_format_1_segment_still_reads(tmp_path: Path) -> None:
    result = read_journal(_copy(tmp_path))
    assert [r.position for r in result.records] == [1, 2, 3, 4, 5]
    assert [r.customer_id for r in result.records] == [uuid.UUID(int=i) for i in range(1, 6)]
    assert result.last_position == 5


def test_a_format_1_segment_iterates_read_only(tmp_path: Path) -> None:
    directory = _copy(tmp_path)
    before = (directory / "journal-00000000000000000001.wal").read_bytes()
    assert [r.position for r in iter_records(directory, after=2, upto=4)] == [3, 4]
    assert (directory / "journal-00000000000000000001.wal").read_bytes() == before
