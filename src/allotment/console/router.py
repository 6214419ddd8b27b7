"""The console's router, templates and static files, as `http.app.create_app` mounts them.

`PAGES` lists every page handler (a handler taking `console: ConsoleArg`, see `context.py`);
each page module adds its handlers there. The router puts every route behind `ConsoleGuard`
(session, CSRF, security headers) and answers every failure as an HTML page, never the API's
JSON envelope.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from jinja2 import pass_context
from jinja2.runtime import Context
from litestar import Request, Response, Router
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.router import Router as RouterType
from litestar.static_files import create_static_files_router
from litestar.status_codes import HTTP_303_SEE_OTHER
from litestar.template.config import TemplateConfig
from litestar.types import ControllerRouterHandler
from markupsafe import Markup, escape

from allotment.console import (
    clock,
    customer_actions,
    customers,
    invoices,
    overview,
    plans,
    webhooks_keys,
)
from allotment.console.context import console_of
from allotment.console.formatting import FILTERS
from allotment.console.guard import (
    CSRF_FIELD,
    ConsoleGuard,
    ConsoleRefused,
    NotSignedIn,
    sign_in_location,
)
from allotment.console.sign_in import sign_in_form, sign_in_submit, sign_out
from allotment.runtime.errors import Overloaded, ShardUnavailable

__all__ = ("PAGES", "console_router", "console_templates", "static_router")

_HERE = Path(__file__).parent
TEMPLATES = _HERE / "templates"
STATIC = _HERE / "static"
logger = logging.getLogger("allotment.console")

PAGES: list[ControllerRouterHandler] = [
    *customers.PAGES,
    *customer_actions.PAGES,
    *overview.PAGES,
    *plans.PAGES,
    *invoices.PAGES,
    *webhooks_keys.PAGES,
    *clock.PAGES,
]


@pass_context
def csrf_field(context: Context) -> Markup:
    """`{{ csrf_field() }}`: the hidden CSRF input every form carries (CON-9)."""
    token = context.get("csrf_token")
    assert isinstance(token, str), "a form rendered without a CSRF token"
    return Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, escape(token))


def _configure(engine: JinjaTemplateEngine) -> None:
    engine.engine.globals["csrf_field"] = csrf_field
    engine.engine.filters.update(FILTERS)


def console_templates() -> TemplateConfig[JinjaTemplateEngine]:
    """The app's template config: Jinja2, autoescaping, the console's templates."""
    return TemplateConfig(
        directory=TEMPLATES, engine=JinjaTemplateEngine, engine_callback=_configure
    )


def static_router() -> RouterType:
    """`/console/static/`: htmx (with its licence) and the stylesheet; public, as they hold
    nothing secret, and cacheable, as their names change with their versions."""
    return create_static_files_router(
        path="/console/static",
        directories=[STATIC],
        opt={"public": True},
        include_in_schema=False,
        name="console.static",
    )


def _error_page(status: int, message: str) -> Template:
    return Template(
        template_name="error.html",
        status_code=status,
        context={"status": status, "message": message},
    )


def _not_signed_in(request: Request[Any, Any, Any], error: NotSignedIn) -> Response[Any]:
    location = sign_in_location(error.next_path)
    if request.headers.get("hx-request"):  # htmx follows this header, not a redirect
        return Response(content=b"", status_code=200, headers={"HX-Redirect": location})
    return Redirect(location, status_code=HTTP_303_SEE_OTHER)


def _refused(_: Request[Any, Any, Any], error: ConsoleRefused) -> Template:
    return _error_page(error.status, error.message)


def _http_error(_: Request[Any, Any, Any], error: HTTPException) -> Template:
    message = "Not found." if error.status_code == 404 else str(error.detail)
    return _error_page(error.status_code, message)


def _unavailable(_: Request[Any, Any, Any], error: Exception) -> Template:
    return _error_page(503, f"Unavailable for now; nothing changed. {error} Try again shortly.")


def _failed(request: Request[Any, Any, Any], error: Exception) -> Template:
    logger.exception("console: %s %s failed", request.method, request.url.path, exc_info=error)
    return _error_page(500, "Something went wrong on the server; nothing was changed by it.")


def console_router() -> Router:
    """`/console`: sign-in, sign-out and `PAGES`. `public` tells the API key middleware to
    let the console's own guard decide (the console never takes a key per request)."""
    return Router(
        "/console",
        route_handlers=[sign_in_form, sign_in_submit, sign_out, *PAGES],
        middleware=[ConsoleGuard()],
        dependencies={"console": Provide(console_of)},
        exception_handlers={
            NotSignedIn: _not_signed_in,
            ConsoleRefused: _refused,
            HTTPException: _http_error,
            ShardUnavailable: _unavailable,
            Overloaded: _unavailable,
            Exception: _failed,
        },
        opt={"public": True},
        include_in_schema=False,
    )
