"""allotment: a self-hosted usage-billing and entitlement engine speaking the Tanso Client API.

In-process use, without HTTP::

    system = build_system(Settings(clock="manual"))
    shard = system.shard("test")
    decision = await shard.evaluate("user_1", "api_calls", None, EvaluationContext(method="GET"))
"""

__version__ = "0.1.0"  # the one place the version lives: pyproject.toml reads it (hatch)

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from allotment.config import Settings
    from allotment.runtime.clock import ManualClock, SystemClock
    from allotment.runtime.local_shard import LocalShard
    from allotment.runtime.ports import CustomerLookup
    from allotment.runtime.records import EvaluationContext
    from allotment.runtime.system import ActorSystem
    from allotment.wiring import build_app, build_system

# The engine loads on first use of one of these names, not on `import allotment`: so
# `allotment.client`, the thin HTTP client, imports without Litestar, DuckDB or the runtime.
_LAZY = {
    "Settings": "allotment.config",
    "ManualClock": "allotment.runtime.clock",
    "SystemClock": "allotment.runtime.clock",
    "LocalShard": "allotment.runtime.local_shard",
    "CustomerLookup": "allotment.runtime.ports",
    "EvaluationContext": "allotment.runtime.records",
    "ActorSystem": "allotment.runtime.system",
    "build_app": "allotment.wiring",
    "build_system": "allotment.wiring",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'allotment' has no attribute {name!r}")
    import importlib  # noqa: PLC0415 (only when an engine name is first asked for)

    return getattr(importlib.import_module(_LAZY[name]), name)


__all__ = (
    "ActorSystem",
    "CustomerLookup",
    "EvaluationContext",
    "LocalShard",
    "ManualClock",
    "Settings",
    "SystemClock",
    "__version__",
    "build_app",
    "build_system",
)
