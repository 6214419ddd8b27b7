"""The far end of a shard in another process: `HostedShards`, an `ActorSystem`'s shards
answering calls by method name (a Ray actor's, runtime/ray_shard.py `ShardHost`).

What crosses, `Answer` and `EnvironmentView`, and the near end that reads it are in
runtime/remote_shard.py; a call is refused with `CatalogStale` when stamped with an older
catalog version than the host holds (SCL-14, SCL-33), and what the shard raised crosses back
as itself.
"""

from __future__ import annotations

import copyreg
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from allotment.domain.catalog import Catalog
from allotment.domain.cost import PriceTable
from allotment.runtime.catalog_versions import CatalogStale
from allotment.runtime.hosted_reads import history_read, webhook_operation
from allotment.runtime.ports import Shard
from allotment.runtime.remote_shard import Answer, EnvironmentView
from allotment.runtime.system import ActorSystem

__all__ = ("HostedShards",)

R = TypeVar("R")

# What a remote caller may invoke: the `Shard` protocol's coroutines, and nothing else.
REMOTE_METHODS = frozenset(
    {
        "create_customer", "command", "command_on_owner", "evaluate", "ingest",
        "ingest_batch", "read", "read_on_owner", "reserve", "settle", "read_reservation",
        "upsert_catalog", "replace_prices", "record_unapplied_payment",
        "list_unapplied_payments", "ingest_cloud_events", "change_catalog",
        "create_openmeter_customer", "update_openmeter_customer", "all_customers",
        "openmeter_turn", "credit_note", "claim_keys", "find_customers", "recent_denials",
    }
)  # fmt: skip


class HostedShards:
    """The far end: calls by method name on the shards of `system` (a Ray actor's), each
    refused with `CatalogStale` when stamped with an older catalog version than the one this
    host adopted last (SCL-14 across processes, SCL-33)."""

    def __init__(self, system: ActorSystem) -> None:
        self.system = system
        self._epoch = uuid.uuid4().hex[:12]
        self._counter = 0
        self._seen: dict[str, tuple[Catalog, PriceTable, str]] = {}

    def view(self, environment: str) -> EnvironmentView:
        """The environment's current view, with a new version whenever its catalog or price
        table is another object than last time (both are immutable: a change replaces them)."""
        shard = self.system.shard(environment)
        seen = self._seen.get(environment)
        if seen is None or seen[0] is not shard.catalog or seen[1] is not shard.price_table:
            self._counter += 1
            seen = (shard.catalog, shard.price_table, f"{self._epoch}:{self._counter}")
            self._seen[environment] = seen
        return EnvironmentView(version=seen[2], catalog=seen[0], prices=seen[1])

    def _answer(self, environment: str, result: object, known: str) -> Answer:
        view = self.view(environment)
        return Answer(
            result=result,
            customers=self.system.shard(environment).customer_count(),
            view=view if view.version != known else None,
        )

    async def call(
        self, environment: str, method: str, args: tuple[object, ...], known: str,
        stamp: int | None = None,
    ) -> Answer:  # fmt: skip
        """Run `method` of the environment's shard. Exceptions travel to the caller as they
        are (ShardUnavailable, Overloaded, CatalogInvalid, CatalogStale ...)."""
        if method not in REMOTE_METHODS:
            raise ValueError(f"{method!r} is not a shard call")
        held = self.system.shard(environment).catalog_version  # journalled (SCL-77)
        if stamp is not None and stamp < held:
            raise CatalogStale(held)  # checked as the turn starts: nothing ran
        with _shippable_errors():
            result = await getattr(self.system.route(environment), method)(*args)
        return self._answer(environment, result, known)

    async def history(self, environment: str, method: str, args: tuple[object, ...]) -> object:
        """One of OpenMeter's reads of this host's CloudEvent history (SCL-63)."""
        with _shippable_errors():
            return await history_read(self.system, environment, method, args)

    async def webhooks(self, method: str, args: tuple[object, ...]) -> object:
        """One of the webhook admin's operations on this host's webhook service (SCL-67)."""
        with _shippable_errors():
            return await webhook_operation(self.system, method, args)

    async def adopt(
        self, environment: str, version: int, change: Callable[[Shard], Awaitable[R]], known: str
    ) -> Answer:
        """Run a broadcast catalog or price change, then hold `version` (SCL-13)."""
        with _shippable_errors():
            result = await change(self.system.route(environment))
        await self.system.shard(environment).hold_catalog_version(version)
        return self._answer(environment, result, known)


@contextmanager
def _shippable_errors() -> Iterator[None]:
    """Let whatever the shard raises cross to the caller as itself. Pickle rebuilds an exception
    by calling its class with `args`, which breaks those whose constructor takes something else
    (`CatalogInvalid(problems)` has its message as its args): such a class is registered to be
    rebuilt from its args and attributes instead, without calling its constructor."""
    try:
        yield
    except Exception as error:
        copyreg.pickle(type(error), _reduce_error)
        raise


def _reduce_error(
    error: Exception,
) -> tuple[Callable[..., Exception], tuple[object, ...]]:
    return (_rebuilt_error, (type(error), error.args, vars(error)))


def _rebuilt_error(
    kind: type[Exception], args: tuple[object, ...], attributes: dict[str, object]
) -> Exception:
    error = kind.__new__(kind)
    error.args = args
    vars(error).update(attributes)
    return error
