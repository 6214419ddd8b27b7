"""allotment: a self-hosted usage-billing and entitlement engine speaking the Tanso Client API.

In-process use, without HTTP::

    system = build_system(Settings(clock="manual"))
    shard = system.shard("test")
    decision = await shard.evaluate("user_1", "api_calls", None, EvaluationContext(method="GET"))
"""

__version__ = "0.1.0"  # the one place the version lives: pyproject.toml reads it (hatch)

from allotment.config import Settings
from allotment.runtime.clock import ManualClock, SystemClock
from allotment.runtime.local_shard import LocalShard
from allotment.runtime.ports import CustomerLookup
from allotment.runtime.records import EvaluationContext
from allotment.runtime.system import ActorSystem
from allotment.wiring import build_app, build_system

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
