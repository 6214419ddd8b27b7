"""An accepted event's answer: its status and body (EVT-43, EVT-44, OPS-D5)."""

from __future__ import annotations

from allotment.domain.replies import UsageAccepted
from allotment.http.schemas import EventIngestionResponse

__all__ = ("accepted_event",)


def accepted_event(reply: UsageAccepted) -> tuple[int, EventIngestionResponse | None]:
    """201 with a note when there is one; 200 with `usageLimitExceeded` when the event reached
    its limit (it is still recorded). An event whose cost is unknown says so with
    `costKnown: false` and the reason in `message` (OPS-D5)."""
    notes = [text for text in (reply.message, reply.cost_unknown) if text]
    message = " ".join(notes) or None
    cost_known = False if reply.cost_unknown else None
    if reply.over_limit:
        return 200, EventIngestionResponse(
            usageLimitExceeded=True, message=message, costKnown=cost_known
        )
    if message is None:
        return 201, None
    return 201, EventIngestionResponse(message=message, costKnown=cost_known)
