"""The same Litestar front door as allotment's check, with usage read from another design.

    ALT_FRONTDOOR_SETTINGS='{...}' .venv/bin/python -m bench.alternatives.frontdoor

`bench.alternatives.run` starts it. What is shared with allotment, so that only the usage
lookup differs:
- the route `GET /api/v1/client/entitlements/{customerReferenceId}/{feature-key}`, with the
  same signature and path-length check;
- authentication: allotment's own `ApiKeyMiddleware` over a `KeyStore` holding one key, so a
  Bearer key is hashed with SHA-256 and compared against one digest, as in allotment;
- errors: allotment's exception handlers;
- the response: allotment's `Decision` -> `entitlement_response` -> `json_response`, so the
  bytes are built by the same code (the orchestrator checks they are identical);
- the server: granian, ASGI, one worker, no access log, as `allotment serve` runs it.

What the alternatives get for free: the customer list, the plan and its limit, and the period
start are held in memory here. Only usage comes from the backend, which is the best case for
those designs (a real one would also look up the customer and subscription).

Backends:
- `postgres`: `SUM(usage_units)` over the period's events on every check (the Tanso
  reference design), through an asyncpg pool.
- `redis`: one counter per (customer, feature, period), read with GET (the cache design of
  Autumn and Unkey), through redis-py's asyncio client with its default connection pool (a
  connection per request in flight, so at most the wrk connection count) and the hiredis
  parser when installed. A pool bounded at 16 with waiting (BlockingConnectionPool) measured
  about 30% slower in-process, so the default is also the fastest here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, Protocol

import msgspec
from granian import Granian
from granian.constants import Interfaces
from litestar import Litestar, Response, Router, get
from litestar.params import FromPath

from allotment.config import DEFAULT_CATALOG
from allotment.domain.catalog import FeatureLink
from allotment.domain.entitlement import unknown_customer_decision
from allotment.domain.money import ZERO
from allotment.domain.replies import Decision, DenialReason, UsageBlock
from allotment.http.auth import ApiKeyMiddleware
from allotment.http.context import AnyRequest
from allotment.http.errors import ApiError, exception_handlers, json_response
from allotment.http.mapping.entitlements import entitlement_response
from allotment.http.schemas import ApiResponseEntitlementResponse
from allotment.loading import load_catalog
from allotment.persistence.keys import KeyStore
from bench.alternatives.common import PLAN, SUM_SQL, counter_key

__all__ = ("SETTINGS_ENV", "FrontDoorSettings", "app_from_environment", "create_app")

SETTINGS_ENV = "ALT_FRONTDOOR_SETTINGS"
_PATH_LENGTH_MAX = 255


class FrontDoorSettings(msgspec.Struct, kw_only=True):
    backend: Literal["postgres", "redis"]
    port: int
    api_key: str
    period_start: datetime  # the current period of every bench customer (from allotment)
    customers: list[str]
    pg_dsn: str
    redis_url: str
    pg_pool_size: int = 8
    host: str = "127.0.0.1"
    catalog_path: str = str(DEFAULT_CATALOG)


class UsageSource(Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def used(self, ref: str, feature_key: str) -> Decimal: ...


class PostgresUsage:
    """The Tanso reference design: a SUM over the period's events per check."""

    def __init__(self, dsn: str, pool_size: int, period_start: datetime) -> None:
        self._dsn = dsn
        self._pool_size = pool_size
        self._period_start = period_start
        self._pool: Any = None

    async def open(self) -> None:
        import asyncpg  # noqa: PLC0415 - a bench extra, needed only by this backend

        self._pool = await asyncpg.create_pool(
            self._dsn, min_size=self._pool_size, max_size=self._pool_size
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    async def used(self, ref: str, feature_key: str) -> Decimal:
        value = await self._pool.fetchval(SUM_SQL, ref, feature_key, self._period_start)
        return Decimal(int(value))  # sum(bigint) is numeric; asyncpg may give Decimal('1.0E+5')


class RedisUsage:
    """The cache design: a counter per (customer, feature, period), one GET per check."""

    def __init__(self, url: str, period_start: datetime) -> None:
        self._url = url
        self._period_start = period_start
        self._client: Any = None

    async def open(self) -> None:
        import redis.asyncio  # noqa: PLC0415 - a bench extra, needed only by this backend

        self._client = redis.asyncio.Redis.from_url(self._url)
        await self._client.ping()

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def used(self, ref: str, feature_key: str) -> Decimal:
        raw = await self._client.get(counter_key(ref, feature_key, self._period_start))
        return ZERO if raw is None else Decimal(int(raw))


class FrontDoor:
    """The decision of allotment's `evaluate` for a check, with `used` from `source`."""

    def __init__(self, settings: FrontDoorSettings, source: UsageSource) -> None:
        catalog = load_catalog(Path(settings.catalog_path))
        plan = catalog.plan_by_key(PLAN)
        assert plan is not None, f"the catalog has no plan {PLAN}"
        self._features = frozenset(catalog.features)
        self._links: dict[str, FeatureLink] = {link.feature_key: link for link in plan.features}
        self._customers = frozenset(settings.customers)
        self.source = source

    async def evaluate(self, ref: str, feature_key: str) -> Decision:
        if ref not in self._customers:
            return unknown_customer_decision(None)  # ENT-5
        if feature_key not in self._features:
            return Decision(allowed=False, reason=DenialReason.FEATURE_NOT_FOUND)
        link = self._links.get(feature_key)
        if link is None:
            return Decision(allowed=False, reason=DenialReason.NOT_INCLUDED)
        if not link.metered:
            return Decision(allowed=True)
        used = await self.source.used(ref, feature_key)
        limit = link.max_usage
        if limit is None:
            return Decision(allowed=True, usage=UsageBlock(used=used))
        exceeded = used >= limit  # ENT-15, as allotment decides it
        return Decision(
            allowed=not exceeded,
            reason=DenialReason.LIMIT_EXCEEDED if exceeded else None,
            usage=UsageBlock(used=used, limit=limit, remaining=max(ZERO, limit - used)),
        )


@get(
    "/entitlements/{customerReferenceId:str}/{feature-key:str}",
    operation_id="checkEntitlement",
    opt={"platform": True},
)
async def check_entitlement(
    request: AnyRequest, customerReferenceId: FromPath[str]
) -> Response[ApiResponseEntitlementResponse]:
    feature_key: str = request.path_params["feature-key"]
    if len(customerReferenceId) > _PATH_LENGTH_MAX or len(feature_key) > _PATH_LENGTH_MAX:
        raise ApiError(400, f"Invalid path: identifiers are at most {_PATH_LENGTH_MAX} characters.")
    door: FrontDoor = request.app.state["door"]
    decision = await door.evaluate(customerReferenceId, feature_key)
    data = entitlement_response(decision, customerReferenceId, feature_key, None)
    return json_response(ApiResponseEntitlementResponse(success=True, data=data))


def _source(settings: FrontDoorSettings) -> UsageSource:
    if settings.backend == "postgres":
        return PostgresUsage(settings.pg_dsn, settings.pg_pool_size, settings.period_start)
    return RedisUsage(settings.redis_url, settings.period_start)


def create_app(settings: FrontDoorSettings) -> Litestar:
    door = FrontDoor(settings, _source(settings))
    keys = KeyStore()
    keys.add(settings.api_key)

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await door.source.open()
        try:
            yield
        finally:
            await door.source.close()

    return Litestar(
        route_handlers=[Router("/api/v1/client", route_handlers=[check_entitlement])],
        middleware=[ApiKeyMiddleware(keys, "platform")],
        exception_handlers=exception_handlers,  # type: ignore[arg-type]
        lifespan=[lifespan],
        state={"door": door},  # type: ignore[arg-type]
        logging_config=None,
    )


def app_from_environment() -> Litestar:
    return create_app(msgspec.json.decode(os.environ[SETTINGS_ENV], type=FrontDoorSettings))


def main() -> int:
    settings = msgspec.json.decode(os.environ[SETTINGS_ENV], type=FrontDoorSettings)
    print(
        f"front door ({settings.backend}) at http://{settings.host}:{settings.port}/api/v1/client"
    )
    sys.stdout.flush()
    Granian(  # the same server settings as `allotment serve` (allotment.cli._serve)
        "bench.alternatives.frontdoor:app_from_environment",
        factory=True,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=1,
        log_access=False,
    ).serve()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
