"""Journal corruption: a byte flipped at every offset class, in the closed and the active
segment; a torn tail; a zero-filled tail. Each ends in recovery of every acknowledged record,
or in a refusal to start that names the segment and the offset and changes no byte, never in
silent loss (issue 10, item 7 and scenario 7). The repair command then gets the journal
readable again, recovering every record where the damage was in a record's header.
"""

from __future__ import annotations

import shutil
import struct
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allotment.cli import main
from allotment.domain.facts import CustomerCreated
from allotment.domain.state import CustomerSource
from allotment.persistence.errors import JournalCorrupt
from allotment.persistence.journal import (
    Durability,
    FileJournal,
    iter_records,
    read_journal,
    repair_journal,
    segments,
)

AT = datetime(2025, 1, 15, tzinfo=UTC)
ALL = list(range(1, 11))

# Offsets inside a segment header, and inside a record (from its start; -1: its last byte).
HEADER_FIELDS = {"magic": 0, "version": 8, "first position": 10}
RECORD_FIELDS = {
    "magic": 0,
    "length": 4,
    "length high byte": 7,
    "position": 8,
    "position high byte": 15,
    "checksum": 16,
    "payload": 20,
    "payload end": -1,
}
HEADER_DAMAGE = {"magic", "length", "length high byte", "position", "position high byte"}


def _fact(i: int) -> CustomerCreated:
    return CustomerCreated(
        at=AT, customer_id=uuid.UUID(int=i), external_id=f"c{i}", source=CustomerSource.API
    )


async def _write_async(directory: Path) -> None:
    """Records 1-5 in a closed segment, 6-10 in the active one, all acknowledged."""
    journal = FileJournal(directory, Durability.FSYNC)
    async with anyio.create_task_group() as tg:
        tg.start_soon(journal.run)
        for i in ALL:
            await journal.wait_durable(journal.append(uuid.UUID(int=i), [_fact(i)]))
            if i == 5:
                await journal.rotate()
        tg.cancel_scope.cancel()
    journal.close()


_TEMPLATE = Path(tempfile.mkdtemp(prefix="journal-corruption-"))
anyio.run(_write_async, _TEMPLATE)


def _journal(tmp_path: Path) -> tuple[Path, list[Path]]:
    directory = tmp_path / "journal"
    shutil.copytree(_TEMPLATE, directory)
    return directory, segments(directory)


def _record_offsets(segment: Path) -> list[int]:
    data = segment.read_bytes()
    offsets, offset = [], 32
    while offset < len(data):
        offsets.append(offset)
        offset += 20 + struct.unpack_from("<I", data, offset + 4)[0]
    return offsets


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in segments(directory)}


def _cases() -> list[tuple[str, str, str]]:
    cases = [(seg, "header", field) for seg in ("closed", "active") for field in HEADER_FIELDS]
    return cases + [
        (seg, which, field)
        for seg in ("closed", "active")
        for which in ("middle record", "last record")
        for field in RECORD_FIELDS
    ]


@pytest.mark.parametrize(("segment_kind", "where", "field"), _cases())
def test_a_flipped_byte_is_refused_by_name_and_offset_and_the_repair_works(
    tmp_path: Path, segment_kind: str, where: str, field: str
) -> None:
    """Scenario 7: the high byte of a record's length in the active segment is no longer
    taken for a torn tail; nothing is truncated; the refusal names the repair command."""
    directory, files = _journal(tmp_path)
    segment = files[0] if segment_kind == "closed" else files[1]
    if where == "header":
        record, offset = 0, HEADER_FIELDS[field]
    else:
        starts = _record_offsets(segment)
        index = 2 if where == "middle record" else len(starts) - 1
        record = starts[index]
        end = starts[index + 1] if index + 1 < len(starts) else segment.stat().st_size
        shift = RECORD_FIELDS[field]
        offset = record + shift if shift >= 0 else end - 1
    _flip(segment, offset)
    before = _snapshot(directory)
    with pytest.raises(JournalCorrupt) as refused:
        read_journal(directory)
    assert (refused.value.segment, refused.value.offset) == (segment.name, record)
    assert f"allotment journal repair {segment} --offset {record}" in str(refused.value)
    assert _snapshot(directory) == before  # refused without changing a byte
    report = repair_journal(directory, segment.name, record)
    recovered = [r.position for r in read_journal(directory).records]
    if where == "header" or field in HEADER_DAMAGE:
        assert recovered == ALL, report  # rebuilt: nothing lost
    else:  # a damaged payload cannot be rebuilt: the rest is set aside, not deleted
        assert report.set_aside is not None and any(report.set_aside.iterdir())
        assert recovered == ALL[: len(recovered)] and len(recovered) < 10


@pytest.mark.parametrize(
    "tail",
    [
        pytest.param(b"\xf7\x4a\x52\xc1\x40\x00", id="partial record header"),
        pytest.param(bytes(4096), id="4 KiB of zeros"),
        pytest.param(b"\x13\x37" * 300, id="garbage"),
    ],
)
def test_a_torn_tail_of_the_active_segment_is_truncated_and_every_record_recovers(
    tmp_path: Path, tail: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """Item 7: a partial last record, zero fill (preallocation after a power cut) or
    garbage to the end is a torn tail: truncated with a warning; nothing acknowledged lost."""
    directory, files = _journal(tmp_path)
    intact = files[1].stat().st_size
    with files[1].open("ab") as file:
        file.write(tail)
    assert [r.position for r in iter_records(directory)] == ALL  # reading only: untouched
    assert files[1].stat().st_size == intact + len(tail)
    assert [r.position for r in read_journal(directory).records] == ALL
    assert files[1].stat().st_size == intact
    assert "torn write" in caplog.text


def test_a_partial_last_record_is_a_torn_tail(tmp_path: Path) -> None:
    directory, files = _journal(tmp_path)
    data = files[1].read_bytes()
    last = _record_offsets(files[1])[-1]
    files[1].write_bytes(data[: last + 30])  # the last record cut short, as a crash leaves it
    assert [r.position for r in read_journal(directory).records] == ALL[:-1]


def test_a_zero_filled_tail_of_a_closed_segment_is_refused(tmp_path: Path) -> None:
    """Closed segments were synced whole before the next began: damage there is never a
    torn write."""
    directory, files = _journal(tmp_path)
    intact = files[0].stat().st_size
    with files[0].open("ab") as file:
        file.write(bytes(4096))
    with pytest.raises(JournalCorrupt) as refused:
        read_journal(directory)
    assert (refused.value.segment, refused.value.offset) == (files[0].name, intact)
    repair_journal(directory, files[0].name, intact)
    assert [r.position for r in read_journal(directory).records] == ALL


def test_a_stale_repair_command_changes_nothing(tmp_path: Path) -> None:
    directory, files = _journal(tmp_path)
    _flip(files[1], _record_offsets(files[1])[2] + 30)
    before = _snapshot(directory)
    with pytest.raises(ValueError, match="first damage"):
        repair_journal(directory, files[1].name, 32)
    with pytest.raises(ValueError, match="no damage"):
        repair_journal(directory, files[0].name, 32)
    assert _snapshot(directory) == before


@settings(max_examples=150, deadline=None)
@given(segment_index=st.integers(0, 1), at=st.floats(0, 1, exclude_max=True))
def test_a_flipped_byte_anywhere_never_loses_an_acknowledged_record_silently(
    segment_index: int, at: float
) -> None:
    """Item 7, as a property: recovery returns every record, or refuses without a change."""
    with tempfile.TemporaryDirectory() as temporary:
        directory, files = _journal(Path(temporary))
        segment = files[segment_index]
        _flip(segment, int(at * segment.stat().st_size))
        before = _snapshot(directory)
        refused: JournalCorrupt | None = None
        try:
            recovered = [r.position for r in read_journal(directory).records]
        except JournalCorrupt as error:
            refused, recovered = error, []
        if refused is not None:
            assert refused.segment == segment.name
            assert _snapshot(directory) == before
        else:
            assert recovered == ALL


def test_the_repair_command_the_refusal_names_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The refusal's command line, run as printed, repairs the journal (item 7)."""
    directory, files = _journal(tmp_path)
    offset = _record_offsets(files[1])[1]
    _flip(files[1], offset + 7)  # the high byte of a record's length
    with pytest.raises(JournalCorrupt) as refused:
        read_journal(directory)
    command = str(refused.value).split("repair it with: ")[1].split()
    assert command[:3] == ["allotment", "journal", "repair"]
    assert main(command[1:]) == 0
    assert "rebuilt a record header" in capsys.readouterr().out
    assert [r.position for r in read_journal(directory).records] == ALL
    assert main(command[1:]) == 2  # nothing left to repair
