"""The console's customer search over N shards (CON-20, docs/scale-out.md SCL-100, SCL-101).

Each shard answers its own customers' page from its indexes; the router merges the shards'
pages. The merge only ever takes the head of a shard's list, so a page is a prefix of what
remains on every shard, and the next page starts, per shard, where this one stopped: the
cursor (`CustomerSearch.after`) is one position per shard. A deep page so asks each shard for
one page's worth, never for everything before it, and a customer created meanwhile (at the end
of its shard's creation order) moves nobody from one page to another.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

from allotment.domain.catalog import Catalog
from allotment.domain.state import CustomerState
from allotment.runtime.ports import CustomerPage, CustomerSearch, Projector

__all__ = ("ShardedSearch", "could_be_email")

T = TypeVar("T")
Key = tuple[int, bool, str]
Keyed = tuple[Key, T]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def could_be_email(text: str) -> bool:
    """Emails the API accepts hold an "@"; anything else can only be a reference id, which
    lives on the one shard its placement names (SCL-100)."""
    return "@" in text


class ShardedSearch(Generic[T]):
    """One `find_customers` over `shards` shards: what to ask each, and how to merge."""

    def __init__(self, search: CustomerSearch, projector: Projector[T], shards: int) -> None:
        self.search = search
        self.projector = projector
        starts = _positions(search.after, shards)
        # Without a cursor, merge from the start and skip `offset` (a link to page N).
        self.starts = starts if starts is not None else [0] * shards
        self.skip = 0 if starts is not None else search.offset

    def part(self, index: int) -> CustomerSearch:
        """What shard `index` is asked: enough from its position for this whole page."""
        want = self.skip + self.search.limit
        return CustomerSearch(text=self.search.text, offset=self.starts[index], limit=want)

    def keyed(self) -> Projector[Keyed[T]]:
        """The projector each shard runs: the caller's view, with the merge key beside it."""
        projector, text = self.projector, self.search.text

        def keyed(state: CustomerState, catalog: Catalog, now: datetime) -> Keyed[T]:
            return _key(state, text), projector(state, catalog, now)

        return keyed

    def merge(self, pages: Sequence[CustomerPage[Keyed[T]]]) -> CustomerPage[T]:
        """The page: heads taken in key order (ties to the lower shard), `skip` dropped."""
        heads = [0] * len(pages)
        taken: list[T] = []
        for _ in range(self.skip + self.search.limit):
            best = _best_head(pages, heads)
            if best is None:
                break
            taken.append(pages[best].items[heads[best]][1])
            heads[best] += 1
        total = sum(page.total for page in pages)
        ends = [start + head for start, head in zip(self.starts, heads, strict=True)]
        following = ",".join(map(str, ends)) if sum(ends) < total else ""
        return CustomerPage(total=total, items=taken[self.skip :], next=following)


def _key(state: CustomerState, text: str) -> Key:
    """The order one shard lists its matches in (runtime/directory.py `search`): creation
    order for the whole list; the exact reference id first, then by id, for a search."""
    if not text:
        return (_microseconds(state.created_at), False, "")
    return (0, state.external_id != text, str(state.id))


def _microseconds(at: datetime) -> int:
    return (at - _EPOCH) // timedelta(microseconds=1)


def _best_head(pages: Sequence[CustomerPage[Keyed[T]]], heads: list[int]) -> int | None:
    best: int | None = None
    for index, page in enumerate(pages):
        if heads[index] < len(page.items) and (
            best is None or page.items[heads[index]][0] < pages[best].items[heads[best]][0]
        ):
            best = index
    return best


def _positions(after: str, shards: int) -> list[int] | None:
    """A router's cursor, one position per shard; None for none or one not of `shards`."""
    parts = after.split(",") if after else []
    if len(parts) != shards or not all(part.isdigit() for part in parts):
        return None
    return [int(part) for part in parts]
