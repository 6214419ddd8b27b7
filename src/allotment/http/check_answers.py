"""The encoded answers of repeated checks (checkEntitlement, the app's per-request gate).

A repeated check whose answer still holds gets back the very `Decision` object the customer's
actor remembered (`CustomerActor.remembered_check`). Its wire answer is a pure function of that
object, the customer reference and the feature key, so the bytes made for it the first time
are the bytes of every repeat: mapping the decision to its schema and encoding it (the Decimals
above all: msgspec encodes one as a JSON number in about 0.5 µs) cost more than the rest of the
repeated check's own work together.

An answer is reused only when the decision is the same object (`is`): a decision decided
afresh, or one that came from another process (a Ray shard decodes a new object every time),
is mapped and encoded as before, and replaces the entry.
"""

from __future__ import annotations

from typing import Final

from allotment.domain.decisions import Decision

__all__ = ("CheckAnswers",)

_ANSWERS_MAX: Final = 16_384  # about 250 B each: ~4 MB at most


class CheckAnswers:
    """The last encoded answer per (customer reference, feature key), with its decision."""

    __slots__ = ("_answers",)

    def __init__(self) -> None:
        self._answers: dict[tuple[str, str], tuple[Decision, bytes]] = {}

    def __len__(self) -> int:
        return len(self._answers)

    def get(self, reference: str, feature_key: str, decision: Decision) -> bytes | None:
        """The bytes made for `decision` itself, or None."""
        entry = self._answers.get((reference, feature_key))
        return entry[1] if entry is not None and entry[0] is decision else None

    def put(self, reference: str, feature_key: str, decision: Decision, answer: bytes) -> None:
        answers = self._answers
        if len(answers) >= _ANSWERS_MAX:
            # Start again rather than evict one by one: an eviction order would cost every
            # check a bookkeeping step, and the entries refill on the next check of each.
            answers.clear()
        answers[(reference, feature_key)] = (decision, answer)
