"""What a console page handler gets: `Console`, its session's environment and the runtime ports.

A page is a Litestar handler on the console router taking `console: ConsoleArg` (a `Console`
the router provides) and returning `console.render(template, **values)`:

    @get("/customers", name="console.customers")
    async def customers(console: ConsoleArg, q: FromQuery[str] = "") -> Template:
        found = await console.shard.read(CustomerLookup(external_id=q), project)
        return console.render("customers.html", found=found)

Reads and actions go through `console.shard` (the `Shard` of the session's environment, the
same port and the same calls as the API's handlers), `console.keys`, `console.webhooks`,
`console.checkout` and `console.system` (its clock); never around them (CON-13). Add the
handler to `PAGES` in `console/router.py`; forms use `{{ csrf_field() }}` (CON-9).
"""

from __future__ import annotations

from typing import Any, TypeAlias

from litestar import Request
from litestar.di import NamedDependency
from litestar.response import Template

from allotment.config import Settings
from allotment.console.guard import session_of
from allotment.console.sessions import Session
from allotment.http.context import checkout_of, keys_of, settings_of, system_of
from allotment.runtime.checkout import CheckoutService
from allotment.runtime.ports import KeyAdmin, Shard
from allotment.runtime.system import ActorSystem
from allotment.webhooks.ports import WebhookAdmin

__all__ = ("ENVIRONMENTS", "NAV", "Console", "ConsoleArg", "console_of")

NAV = (  # the layout's navigation: (path, label); console-pages fills in the pages
    ("/console/", "Overview"),
    ("/console/customers", "Customers"),
    ("/console/plans", "Plans"),
    ("/console/invoices", "Invoices"),
    ("/console/webhooks", "Webhooks & keys"),
    ("/console/clock", "Clock"),
)
ENVIRONMENTS = {  # CON-8: the banner's words; the colour comes from the `env-*` class
    "test": "Test environment: sandbox data, signed in with an sk_test_ key",
    "live": "LIVE environment: production data, signed in with an sk_live_ key",
}


class Console:
    """One request's view of the console: who is signed in, and the ports to read and act
    through."""

    __slots__ = (
        "checkout", "keys", "path", "request", "session", "settings", "shard", "system",
        "webhooks",
    )  # fmt: skip

    def __init__(self, request: Request[Any, Any, Any]) -> None:
        self.request = request
        self.session: Session = session_of(request.scope)
        self.system: ActorSystem = system_of(request)
        self.shard: Shard = self.system.route(self.session.environment)
        self.settings: Settings = settings_of(request)
        self.keys: KeyAdmin = keys_of(request)
        self.webhooks: WebhookAdmin | None = request.app.state["webhooks"]
        self.checkout: CheckoutService = checkout_of(request)
        self.path: str = request.url.path

    @property
    def environment(self) -> str:
        """ "test" or "live": the environment of the key the session was opened with."""
        return self.session.environment

    @property
    def csrf_token(self) -> str:
        return self.session.csrf_token

    async def form(self) -> dict[str, str]:
        """The posted form's fields (the first value of each; the guard has read it already
        for the CSRF token, and Litestar keeps it)."""
        form = await self.request.form()
        return {name: value for name, value in form.items() if isinstance(value, str)}

    def render(self, template: str, status_code: int = 200, **values: Any) -> Template:
        """`template` with the layout's values (`console`, `nav`, `banner`) and `values`."""
        return Template(
            template_name=template,
            status_code=status_code,
            context={
                "console": self,
                "nav": NAV,
                "banner": ENVIRONMENTS[self.environment],
                "csrf_token": self.csrf_token,
                **values,
            },
        )


ConsoleArg: TypeAlias = NamedDependency[Console]
"""How a handler asks for its `Console` (the router's `console` dependency)."""


async def console_of(request: Request[Any, Any, Any]) -> Console:
    """The `console` dependency of every signed-in page."""
    return Console(request)
