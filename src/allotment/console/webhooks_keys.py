"""Webhooks and keys (CON-60..CON-66): the environment's webhook endpoints with their latest
deliveries and a resend button, and its API keys (create, shown once; list; revoke).

Every read and action is the admin API's own call on the same ports: `WebhookAdmin`
(`list_endpoints`, `messages`, `resend`, as `routes/webhook_endpoints.py` and
`routes/webhook_messages.py`) and `KeyAdmin` (`list_keys`, `create_key`, `revoke_key`, as
`routes/keys_admin.py`, whose request struct validates the form). None of them is a customer
turn; a page costs the number of endpoints times `MESSAGES`, and the number of keys.
"""

from __future__ import annotations

import msgspec
from litestar import get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

from allotment.console.context import Console, ConsoleArg
from allotment.console.guard import ConsoleRefused
from allotment.http.routes.keys_admin import KeyCreateRequest
from allotment.runtime.ports import ApiKey, KeyRefused
from allotment.webhooks.ports import Endpoint, Message, WebhookRefused

__all__ = ("PAGES", "create_key", "resend", "revoke_key", "webhooks_and_keys")

MESSAGES = 10  # the latest deliveries shown per endpoint
ENDPOINTS_MAX = 50  # endpoints shown (the API lists them all; a page stays bounded)
SCOPES = ("client:read", "client:write", "admin")
DONE = {
    "resent": "The message is queued to be sent again, with the same webhook-id.",
    "revoked": "The key is revoked: it is refused from its next request on.",
}


async def _endpoints(console: Console) -> list[tuple[Endpoint, list[Message]]]:
    webhooks = console.webhooks
    if webhooks is None:
        return []
    found = [e for e in await webhooks.list_endpoints(console.environment) if not e.channel]
    shown = []
    for endpoint in found[:ENDPOINTS_MAX]:
        messages = await webhooks.messages(console.environment, endpoint.id, None, MESSAGES)
        shown.append((endpoint, messages))
    return shown


async def _keys(console: Console) -> list[ApiKey]:
    """The environment's keys, as `GET /api/v1/admin/keys` lists them (API-12)."""
    return [k for k in await console.keys.list_keys() if k.environment == console.environment]


async def _page(
    console: Console, status: int = 200, *, created: tuple[str, ApiKey] | None = None,
    key_error: str = "", name: str = "", done: str = "",
) -> Template:  # fmt: skip
    return console.render(
        "webhooks_keys.html", status_code=status, title="Webhooks & keys",
        webhooks_on=console.webhooks is not None, endpoints=await _endpoints(console),
        keys=await _keys(console), scopes=SCOPES, created=created, key_error=key_error,
        name=name, done=done,
    )  # fmt: skip


@get("/webhooks", name="console.webhooks")
async def webhooks_and_keys(console: ConsoleArg, done: FromQuery[str] = "") -> Template:
    """Endpoints with their deliveries, and the keys; `done` names what was just done (fixed
    words: nothing from the URL is shown)."""
    return await _page(console, done=DONE.get(done, ""))


@post("/webhooks/{endpoint_id:str}/messages/{message_id:str}/resend", name="console.resend",
      status_code=303)  # fmt: skip
async def resend(
    console: ConsoleArg, endpoint_id: FromPath[str], message_id: FromPath[str]
) -> Redirect:
    """Send a message again, with the same webhook-id and a fresh retry schedule (CON-61)."""
    if console.webhooks is None:
        raise ConsoleRefused(404, "Webhooks are not enabled on this server.")
    try:
        await console.webhooks.resend(console.environment, endpoint_id, message_id)
    except WebhookRefused as refused:
        raise ConsoleRefused(refused.status, refused.message) from None
    return Redirect("/console/webhooks?done=resent", status_code=HTTP_303_SEE_OTHER)


@post("/keys", name="console.key_create", status_code=201)
async def create_key(console: ConsoleArg) -> Template:
    """Create a key (CON-62): the answer is the only page that ever shows it (CON-63)."""
    data = await console.form()
    name = data.get("name", "").strip()
    scopes = [scope for scope in SCOPES if data.get(f"scope:{scope}")]
    try:  # the admin API's own request struct: the same limits, the same words
        request = msgspec.convert({"name": name, "scopes": scopes}, KeyCreateRequest)
    except msgspec.ValidationError as invalid:
        return await _page(console, 400, key_error=f"Not created: {invalid}", name=name)
    try:
        created = await console.keys.create_key(
            request.name, tuple(request.scopes or SCOPES), console.environment
        )
    except KeyRefused as refused:
        return await _page(console, 400, key_error=f"Not created: {refused.message}.", name=name)
    return await _page(console, 201, created=created)


@post("/keys/{key_id:str}/revoke", name="console.key_revoke", status_code=303)
async def revoke_key(console: ConsoleArg, key_id: FromPath[str]) -> Redirect:
    """Revoke a key of this environment (CON-64); it is refused from its next request on."""
    if key_id not in {k.key_id for k in await _keys(console)}:
        raise ConsoleRefused(404, "API key not found.")  # another environment's: not here
    try:
        await console.keys.revoke_key(key_id)
    except KeyRefused as refused:
        raise ConsoleRefused(refused.status, f"{refused.message}.") from None
    return Redirect("/console/webhooks?done=revoked#keys", status_code=HTTP_303_SEE_OTHER)


PAGES = [webhooks_and_keys, resend, create_key, revoke_key]
