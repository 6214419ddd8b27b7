"""The cheap id source (runtime/ids.py): distinct, valid version-4 UUIDs, distinct between
processes and after a fork, with a placement tag kept in the low bits (SCL-3)."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from allotment.domain.meters import ulid
from allotment.runtime import ids
from allotment.runtime.ids import COUNTER_BITS, IdSource, new_id
from allotment.runtime.placement import TAG_MASK, IdMint, placement_tag, tag_of_id, tag_of_ulid

AT = datetime(2025, 1, 15, tzinfo=UTC)


def _valid(made: uuid.UUID) -> bool:
    """A version-4, RFC 4122 UUID, and the same value as parsed from its text."""
    return (
        made.version == 4
        and made.variant == uuid.RFC_4122
        and uuid.UUID(str(made)) == made
        and hash(made) == hash(uuid.UUID(int=made.int))
    )


def test_ids_are_distinct_valid_version_4_uuids() -> None:
    source = IdSource()
    made = [source() for _ in range(100_000)]
    assert len(set(made)) == len(made)
    assert all(_valid(m) for m in made)
    assert _valid(new_id())


def test_two_processes_draw_different_sequences() -> None:
    """Two sources (two processes, or one restarted) share no id and no ULID in the same
    millisecond: the low 80 bits a ULID keeps differ too."""
    first, second = IdSource(), IdSource()
    a = [first() for _ in range(20_000)]
    b = [second() for _ in range(20_000)]
    assert not set(a) & set(b)
    assert not {ulid(AT, m) for m in a} & {ulid(AT, m) for m in b}


def test_the_low_bits_of_untagged_ids_spread() -> None:
    """Untagged ids do not all carry one tag: anything that buckets by the low bits spreads."""
    source = IdSource()
    tags = {tag_of_id(source()) % 7 for _ in range(100)}
    assert tags == set(range(7))


@given(st.integers(min_value=0, max_value=TAG_MASK))
def test_a_tag_is_kept_and_ids_stay_distinct(tag: int) -> None:
    source = IdSource()
    made = [source.tagged(tag) for _ in range(500)]
    assert len(set(made)) == len(made)
    assert all(tag_of_id(m) == tag and _valid(m) for m in made)
    assert all(tag_of_ulid(ulid(AT, m)) == tag for m in made)


def test_the_mint_keeps_the_customer_tag() -> None:
    mint = IdMint("test", 0, 1, ids=IdSource())
    mint.customer_id("acme")
    made = {mint.new_id() for _ in range(1000)}
    assert len(made) == 1000
    assert {tag_of_id(m) for m in made} == {placement_tag("test", "acme")}


def test_a_new_prefix_is_drawn_before_the_counter_wraps() -> None:
    source = IdSource()
    before = source()
    source._next = (1 << COUNTER_BITS) - 1  # the counter's last value, then a wrap
    source._left = 1
    last, after = source(), source()
    assert last.int >> 80 == before.int >> 80  # the same prefix up to the wrap
    assert after.int >> 80 != before.int >> 80
    assert len({before, last, after}) == 3 and _valid(after)


def test_a_forked_child_draws_its_own_sequence() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, then out without running the parent's cleanup
        os.close(read)
        os.write(write, "".join(ids.new_id().hex for _ in range(100)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        text = pipe.read().decode()
    os.waitpid(pid, 0)
    child = {uuid.UUID(text[i : i + 32]) for i in range(0, len(text), 32)}
    parent = {ids.new_id() for _ in range(100)}
    assert len(child) == 100
    assert not child & parent
