"""`create_app`: the one place that assembles routes, auth, errors, OpenAPI and the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial

from litestar import Litestar, Router
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from allotment.config import Settings
from allotment.http.auth import ApiKeyMiddleware
from allotment.http.errors import exception_handlers
from allotment.http.fast_path import FastPath, Middleware
from allotment.http.metrics import metrics_registry
from allotment.http.observe import Observe, RequestStatistics
from allotment.http.openapi import DecimalAsNumber
from allotment.http.routes import (
    admin,
    billing,
    credits,
    customers,
    entitlements,
    events,
    events_batch,
    health,
    metrics,
    payments_admin,
    plans,
    subscription_changes,
    subscriptions,
    webhooks,
)
from allotment.runtime.checkout import CheckoutService
from allotment.runtime.ports import KeyAuthority
from allotment.runtime.system import ActorSystem

__all__ = ("create_app",)

_OPENAPI = OpenAPIConfig(
    title="allotment — Tanso Client API",
    version="1.0.0",
    description="The Tanso Client API served by allotment. Every response is an envelope "
    "`{success, data?, error?}`; null fields are omitted.",
    components=Components(
        security_schemes={
            "BearerAuth": SecurityScheme(
                type="http",
                scheme="bearer",
                description=(
                    "Pass your API key as a Bearer token. Keys are prefixed with `sk_test_` "
                    "for the sandbox environment."
                ),
            ),
            "ApiKeyAuth": SecurityScheme(
                type="apiKey",
                name="X-API-Key",
                security_scheme_in="header",
                description="Alternatively, pass your API key in the `X-API-Key` header.",
            ),
        }
    ),
    security=[{"BearerAuth": []}, {"ApiKeyAuth": []}],
    use_handler_docstrings=True,
)

CLIENT_ROUTES = [
    customers.create_customer,
    customers.get_customer,
    subscriptions.create_subscription,
    plans.list_plans,
    entitlements.check_entitlement,
    entitlements.evaluate_entitlement,
    events.ingest_event,
    events_batch.ingest_events_batch,
    billing.list_invoices,
    billing.mark_invoice_paid,
    billing.create_checkout_session,
    credits.list_credit_pools,
    subscription_changes.cancel_subscription,
    subscription_changes.revert_cancellation,
    subscription_changes.change_plan,
    subscription_changes.cancel_scheduled_plan_change,
]
ADMIN_ROUTES = [
    admin.get_catalog,
    admin.put_catalog,
    admin.grant_credits,
    admin.get_clock,
    admin.advance_clock,
    admin.snapshot_analytics,
    payments_admin.list_unapplied_payments,
]


def create_app(
    settings: Settings,
    system: ActorSystem,
    keys: KeyAuthority,
    checkout: CheckoutService | None = None,
    *,
    middleware: Sequence[Middleware] = (),
) -> FastPath:
    """The ASGI app for `system`, authenticating against `keys`: the Litestar app behind the
    fast path for the check and single events, both inside the app's own middleware and then
    `middleware` (outermost first). Without `checkout`, Stripe checkout is disabled (STR-1,
    STR-7).

    The app's own middleware is `http.observe.Observe` (request id, request statistics, access
    log): plain ASGI around both the fast path and Litestar, so it runs for every request
    whichever path serves it (see `http.fast_path`). Authentication is not there: it needs the
    route Litestar matched, and the fast path makes the same check."""
    requests = RequestStatistics()

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        async with system.running():
            yield

    litestar = Litestar(
        route_handlers=[
            Router("/api/v1/client", route_handlers=CLIENT_ROUTES, tags=["Client API"]),
            Router("/api/v1/admin", route_handlers=ADMIN_ROUTES, tags=["Admin"]),
            health.health,
            metrics.metrics,
            webhooks.stripe_webhook,
        ],
        middleware=[ApiKeyMiddleware(keys, settings.account_mode)],
        exception_handlers=exception_handlers,  # type: ignore[arg-type]
        openapi_config=_OPENAPI,
        plugins=[DecimalAsNumber()],
        lifespan=[lifespan],
        request_max_body_size=settings.request_body_size_max,
        state={
            "system": system,
            "settings": settings,
            "checkout": checkout or CheckoutService(None, system.clock),
            "metrics": metrics_registry(system, requests),
        },  # type: ignore[arg-type]
        logging_config=None,
    )
    observe = partial(Observe, statistics=requests, access_log=settings.access_log)
    return FastPath(litestar, system, keys, settings, (observe, *middleware))
