"""Liveness and readiness (OPS-P9, OPS-P10): whether requests will be served, and why not.

Ready means every request can be served as documented: the system has recovered and runs,
no shard waits to be rebuilt after a journal failure, the data directory takes writes and has
at least the configured free space, and the analytics schedule runs and its last run worked.
Each unmet condition is one reason, in that order.
"""

from __future__ import annotations

import anyio
import msgspec

from allotment.runtime.system import ActorSystem

__all__ = ("Readiness", "readiness")


class Readiness(msgspec.Struct, frozen=True, kw_only=True):
    ready: bool
    reason: str  # what was checked when ready; every unmet condition when not


async def readiness(system: ActorSystem, disk_free_min_bytes: int) -> Readiness:
    """Check each condition now. The data directory's probe (a small write and fsync) runs on
    a worker thread, so a slow disk delays this answer and nothing else."""
    problems: list[str] = []
    if not system.serving:
        problems.append("not serving yet: recovery or start-up is in progress")
    problems += [
        f"{s.environment} failed and waits to be rebuilt from disk: {s.failure}"
        for s in system.statistics()
        if s.failure is not None
    ]
    storage = system.storage
    if storage is not None:
        problems += await anyio.to_thread.run_sync(storage.readiness_problems, disk_free_min_bytes)
    upkeep = system.upkeep
    if upkeep is not None and system.serving:
        if not upkeep.analytics_alive:
            problems.append("the analytics worker's schedule is not running")
        elif upkeep.analytics_failure is not None:
            problems.append(f"the last analytics run failed: {upkeep.analytics_failure}")
    if problems:
        return Readiness(ready=False, reason="; ".join(problems))
    if storage is None:
        return Readiness(ready=True, reason=system.ready_without_storage)
    return Readiness(
        ready=True,
        reason=f"recovered; journal writable; disk space above {disk_free_min_bytes >> 20} MB; "
        "analytics worker alive",
    )
