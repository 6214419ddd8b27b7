"""`create_app`: the one place that assembles routes, auth, errors, OpenAPI and the lifespan."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial

from litestar import Litestar, Router
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.types import ControllerRouterHandler

from allotment.config import Settings
from allotment.console.router import console_router, console_templates, static_router
from allotment.console.sessions import SessionStore, sessions_dir
from allotment.http.api_docs import DocumentedJson, OfflineSwagger
from allotment.http.auth import ApiKeyMiddleware
from allotment.http.check_answers import CheckAnswers
from allotment.http.errors import exception_handlers
from allotment.http.fast_path import FastPath, Middleware
from allotment.http.flexprice.router import flexprice_router
from allotment.http.metrics import metrics_registry
from allotment.http.observe import Observe, RequestStatistics
from allotment.http.openapi import DecimalAsNumber
from allotment.http.openmeter.router import openmeter_router, openmeter_v2_router
from allotment.http.routes import (
    admin,
    billing,
    credits,
    customers,
    entitlements,
    events,
    events_batch,
    health,
    keys_admin,
    metrics,
    payments_admin,
    plans,
    preflight,
    prices_admin,
    reservations,
    subscription_changes,
    subscriptions,
    webhook_endpoints,
    webhook_messages,
    webhooks,
)
from allotment.payments.ports import PaymentProviderError
from allotment.payments.refunds import GatewayRefundIssuer
from allotment.runtime.checkout import CheckoutService
from allotment.runtime.ports import KeyAdmin
from allotment.runtime.refunds import issue_refunds
from allotment.runtime.system import ActorSystem
from allotment.webhooks.ports import WebhookAdmin

__all__ = ("create_app",)

_OPENAPI = OpenAPIConfig(
    title="allotment — Tanso Client API",
    version="1.0.0",
    description="The Tanso Client API served by allotment, a self-hosted billing and "
    "entitlement engine, plus allotment's own operations (batch events, credit pools, the "
    "admin API).\n\n"
    "**Authentication.** Send your API key as `Authorization: Bearer <key>` or `X-API-Key`; "
    "use **Authorize** above to try operations from this page. `allotment serve` prints a "
    "sandbox key on first start; `allotment keys create` makes more. Keys starting `sk_test_` "
    "and `sk_live_` see separate environments that share no data. Scopes: `client:read` "
    "(GET), `client:write` (POST, PUT, DELETE), `admin` (`/api/v1/admin/*`) and `metrics` "
    "(`GET /metrics`).\n\n"
    "**Responses.** Every response is an envelope `{success, data?, error?}`; null fields are "
    "omitted, and an error's `message` names the field at fault. Amounts are JSON numbers, "
    "exact to the digit; timestamps are UTC.",
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
    # Served from this server, docs added (OPS-D1..D3): no CDN, so the page renders offline.
    render_plugins=[OfflineSwagger(), DocumentedJson()],
)

CLIENT_ROUTES = [
    customers.create_customer,
    customers.get_customer,
    subscriptions.create_subscription,
    plans.list_plans,
    entitlements.check_entitlement,
    entitlements.evaluate_entitlement,
    preflight.preflight_entitlements,
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
    reservations.create_reservation,  # docs/reservations.md
    reservations.get_reservation,
    reservations.commit_reservation,
    reservations.release_reservation,
    reservations.extend_reservation,
    reservations.list_customer_reservations,
]
ADMIN_ROUTES = [
    admin.get_catalog,
    admin.put_catalog,
    admin.grant_credits,
    admin.get_clock,
    admin.advance_clock,
    admin.snapshot_analytics,
    payments_admin.list_unapplied_payments,
    admin.get_statistics,
    keys_admin.list_keys,
    keys_admin.create_key,
    keys_admin.revoke_key,
    prices_admin.get_model_prices,
    prices_admin.replace_model_prices,
    webhook_endpoints.list_endpoints,
    webhook_endpoints.create_endpoint,
    webhook_endpoints.get_endpoint,
    webhook_endpoints.update_endpoint,
    webhook_endpoints.delete_endpoint,
    webhook_endpoints.rotate_secret,
    webhook_endpoints.test_endpoint,
    webhook_messages.list_messages,
    webhook_messages.resend_message,
    webhook_messages.list_events,
]


def _routes() -> list[ControllerRouterHandler]:
    """Every route of the app; new routers per app, as Litestar registers routes on them."""
    return [
        Router("/api/v1/client", route_handlers=CLIENT_ROUTES, tags=["Client API"]),
        Router("/api/v1/admin", route_handlers=ADMIN_ROUTES, tags=["Admin"]),
        openmeter_router(),
        openmeter_v2_router(),
        flexprice_router(),
        health.health,
        health.live,
        health.ready,
        metrics.metrics,
        webhooks.stripe_webhook,
    ]


async def refund_owed(system: ActorSystem, issuer: GatewayRefundIssuer) -> None:
    """Refunds a crash left owed (PENDING, or PROCESSING with no answer from Stripe) are asked
    for again at start, with the same idempotency keys, before anything is served; a provider
    failure leaves them for the next request or start (CN-47, CN-48)."""
    for environment in ("test", "live"):
        with contextlib.suppress(PaymentProviderError):
            await issue_refunds(system.route(environment), issuer, provider_paid_only=True)


def create_app(
    settings: Settings,
    system: ActorSystem,
    keys: KeyAdmin,
    checkout: CheckoutService | None = None,
    *,
    middleware: Sequence[Middleware] = (),
    on_started: Callable[[], None] | None = None,
    webhooks: WebhookAdmin | None = None,
) -> FastPath:
    """The ASGI app for `system`, authenticating against `keys`: the Litestar app behind the
    fast path for the check and single events, both inside the app's own middleware and then
    `middleware` (outermost first). Without `checkout`, Stripe checkout is disabled (STR-1,
    STR-7). `on_started` runs once the system runs, when requests will be served (OPS-P4).
    Without `webhooks`, the webhook routes answer 404 (issue 15).

    The app's own middleware is `http.observe.Observe` (request id, request statistics, access
    log): plain ASGI around both the fast path and Litestar, so it runs for every request
    whichever path serves it (see `http.fast_path`). Authentication is not there: it needs the
    route Litestar matched, and the fast path makes the same check."""
    requests = RequestStatistics()

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(keys.maintained())
            if webhooks is not None:  # before the system: recovery's re-feed is waiting
                await stack.enter_async_context(webhooks.running())
            await stack.enter_async_context(system.running())
            if checkout is not None and checkout.gateway is not None:  # CN-47: after a crash
                await refund_owed(system, GatewayRefundIssuer(checkout.gateway))
            if on_started is not None:
                on_started()
            yield

    # the console's sign-ins, shared by every worker of the server (docs/console.md, CON-81)
    sessions = SessionStore(sessions_dir(settings.data_dir))
    console = [console_router(), static_router()]
    litestar = Litestar(
        route_handlers=[*_routes(), *console],
        middleware=[ApiKeyMiddleware(keys, settings.account_mode)],
        exception_handlers=exception_handlers,  # type: ignore[arg-type]
        openapi_config=_OPENAPI,
        plugins=[DecimalAsNumber()],
        lifespan=[lifespan],
        request_max_body_size=settings.request_body_size_max,
        template_config=console_templates(),
        state={
            "system": system,
            "settings": settings,
            "keys": keys,
            "checkout": checkout or CheckoutService(None, system.clock),
            "metrics": metrics_registry(system, requests, webhooks),
            "webhooks": webhooks,
            "console_sessions": sessions,
            "check_answers": CheckAnswers(),  # the route's and the fast path's (FastPath)
        },  # type: ignore[arg-type]
        logging_config=None,
    )
    observe = partial(Observe, statistics=requests, access_log=settings.access_log)
    return FastPath(litestar, system, keys, settings, (observe, *middleware))
