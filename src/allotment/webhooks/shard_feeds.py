"""The webhook feeds of a sharded environment read as one (docs/scale-out.md SCL-64..SCL-66).

Each shard has its own outbox and message log, fed from its own journal, numbering its own
feed 1, 2, ... (WHK-D40). The pull feed's cursor stays one decimal integer: it packs every
shard's last seq, `CURSOR_BITS` bits each, so a page resumes each shard exactly where it left
it (with one shard, the cursor is that shard's seq, as before). Pages interleave the shards'
events by timestamp, each shard's in its own commit order.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

import msgspec

from allotment.webhooks.book import Book, Message, Status
from allotment.webhooks.message_log import EventLogged

__all__ = (
    "CURSOR_BITS",
    "feed_after",
    "feed_gap",
    "interleaved",
    "merged_feed",
    "newest_first",
    "newest_messages",
    "pack",
    "unpack",
)

CURSOR_BITS = 48  # 2.8e14 events a shard before a seq would spill into the next shard's bits
_MASK = (1 << CURSOR_BITS) - 1


def unpack(cursor: int, shards: int) -> list[int]:
    """Each shard's last seq in `cursor`."""
    return [(cursor >> (CURSOR_BITS * k)) & _MASK for k in range(shards)]


def pack(seqs: Sequence[int]) -> int:
    return sum(seq << (CURSOR_BITS * k) for k, seq in enumerate(seqs))


def _first_after(feed: list[EventLogged], after: int) -> int:
    """The index of the first record with seq > `after` (seqs are 1, 2, ... in order)."""
    low, high = 0, len(feed)
    while low < high:
        middle = (low + high) // 2
        if feed[middle].seq <= after:
            low = middle + 1
        else:
            high = middle
    return low


def feed_after(feed: list[EventLogged], after: int, types: frozenset[str], limit: int) -> list[
    EventLogged]:  # fmt: skip
    """One shard's feed: at most `limit` records of `types` (all when empty) after `after`."""
    found: list[EventLogged] = []
    for record in feed[_first_after(feed, after) :]:
        if not types or record.event.type in types:
            found.append(record)
            if len(found) == limit:
                break
    return found


def merged_feed(
    books: Sequence[Book], after: int, types: frozenset[str], limit: int
) -> list[EventLogged]:
    """At most `limit` records after the cursor `after` over every shard's feed; each one's
    `seq` is the packed cursor that resumes after it."""
    if len(books) == 1:
        return feed_after(books[0].feed, after, types, limit)
    seqs = unpack(after, len(books))
    pages = [feed_after(book.feed, seqs[k], types, limit) for k, book in enumerate(books)]
    return interleaved(pages, after, limit)


def interleaved(pages: Sequence[list[EventLogged]], after: int, limit: int) -> list[EventLogged]:
    """Each shard's page after its part of the cursor `after`, interleaved by timestamp (each
    shard's in its own order), at most `limit`; each record's `seq` is the packed cursor that
    resumes after it."""
    seqs = unpack(after, len(pages))
    tagged = [[(k, record) for record in page] for k, page in enumerate(pages)]
    merged: list[EventLogged] = []
    for k, record in heapq.merge(*tagged, key=lambda pair: pair[1].event.timestamp):
        seqs[k] = record.seq
        merged.append(msgspec.structs.replace(record, seq=pack(seqs)))
        if len(merged) == limit:
            break
    return merged


def feed_gap(books: Sequence[Book], after: int) -> bool:
    """Whether compaction dropped events after the cursor on any shard (WHK-D42)."""
    seqs = unpack(after, len(books)) if len(books) > 1 else [after]
    return any(seq < book.compacted.dropped_seq for seq, book in zip(seqs, books, strict=True))


def newest_messages(
    books: Sequence[Book], endpoint_id: str, status: Status | None, limit: int
) -> list[Message]:
    """The endpoint's messages over every shard, newest first (each shard's in reverse log
    order, the shards interleaved by their events' timestamps)."""
    lists = [
        [
            m for (e, _), m in reversed(book.messages.items())
            if e == endpoint_id and (status is None or m.status == status)
        ]
        for book in books
    ]  # fmt: skip
    return newest_first(lists, limit)


def newest_first(lists: Sequence[list[Message]], limit: int) -> list[Message]:
    """Shards' message lists, each newest first, merged by their events' timestamps."""
    merged = heapq.merge(*lists, key=lambda m: m.event.timestamp, reverse=True)
    return [message for _, message in zip(range(limit), merged, strict=False)]
