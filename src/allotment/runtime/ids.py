"""Fresh ids without a system call each: a per-process random prefix and a counter, laid out as
a version-4 UUID (issue 21 item 3).

`uuid.uuid4()` reads 16 bytes from `os.urandom` per id, and every fact with an entity (an
invoice, a line, a grant, a reservation) asks for one. Here `os.urandom` runs once per prefix.
The 128 bits, high to low:

    48 random bits | version 4 | counter's high 12 bits | variant 10 | counter's low 30 bits |
    32 low bits

The 32 low bits are a bijective mix of the counter, or the placement tag of the customer whose
turn mints the id (`IdSource.tagged`, SCL-3): the counter sits above them, so replacing them
keeps ids unique. ULIDs take an id's low 80 bits (`domain.meters.ulid`): the counter and its
random starting point are inside those, so two processes minting in the same millisecond still
differ. The counter starts at a random 42-bit value and a new prefix is drawn before it wraps;
a forked child draws its own, so parent and child never share a sequence.
"""

from __future__ import annotations

import os
import uuid
from typing import Final

__all__ = ("IdSource", "new_id")

COUNTER_BITS: Final = 42
_COUNTER_MASK: Final = (1 << COUNTER_BITS) - 1
_LOW_BITS: Final = 32
_LOW_MASK: Final = (1 << _LOW_BITS) - 1
_COUNTER_LOW_BITS: Final = 30  # bits 32..61, under the variant
_COUNTER_LOW_MASK: Final = (1 << _COUNTER_LOW_BITS) - 1
_VERSION_4: Final = 4 << 76
_VARIANT_RFC_4122: Final = 0b10 << 62
_PREFIX_SHIFT: Final = 80
_MIX: Final = 0x9E3779B1  # odd, so multiplying by it is a bijection modulo 2**32
_SAFE: Final = uuid.SafeUUID.unknown
# A UUID made without `UUID.__init__`'s parsing: what it sets (two slots), set here.
_new_uuid = object.__new__
_set = object.__setattr__


class IdSource:
    """A stream of distinct version-4 UUIDs; call it for the next one."""

    __slots__ = ("_fixed", "_left", "_next")

    def __init__(self) -> None:
        self._fixed = 0
        self._next = 0
        self._left = 0
        self.reseed()

    def reseed(self) -> None:
        """Draw a new random prefix and counter start (at start, on fork, before a wrap)."""
        entropy = int.from_bytes(os.urandom(16), "big")
        prefix = entropy >> _PREFIX_SHIFT  # 48 bits
        self._fixed = (prefix << _PREFIX_SHIFT) | _VERSION_4 | _VARIANT_RFC_4122
        self._next = entropy & _COUNTER_MASK
        self._left = 1 << COUNTER_BITS

    def _take(self) -> int:
        """The next counter value (a new prefix first when the counter is spent)."""
        if self._left == 0:
            self.reseed()
        self._left -= 1
        count = self._next
        self._next = (count + 1) & _COUNTER_MASK
        return count

    def tagged(self, tag: int) -> uuid.UUID:
        """The next id, with `tag` (32 bits) as its low bits (SCL-3)."""
        count = self._take()
        made = _new_uuid(uuid.UUID)
        _set(made, "int", self._fixed | _spread(count) | tag)
        _set(made, "is_safe", _SAFE)
        return made

    def __call__(self) -> uuid.UUID:
        count = self._take()
        made = _new_uuid(uuid.UUID)
        _set(made, "int", self._fixed | _spread(count) | ((count * _MIX) & _LOW_MASK))
        _set(made, "is_safe", _SAFE)
        return made


def _spread(count: int) -> int:
    """`count` in its two fields: above the low 32 bits, around the variant."""
    return ((count >> _COUNTER_LOW_BITS) << 64) | ((count & _COUNTER_LOW_MASK) << _LOW_BITS)


_process_ids = IdSource()
os.register_at_fork(after_in_child=_process_ids.reseed)
new_id = _process_ids
