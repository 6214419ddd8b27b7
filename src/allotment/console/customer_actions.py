"""The customer detail page and its actions (CON-21..CON-31).

Every action is two posts: the first shows what the API would do (the method, path and body
of the same call) and asks for confirmation; the second, carrying `confirm=yes`, runs the
command through the same runtime call the API's handler makes (`Shard.command` for a grant,
`Shard.command_on_owner` for an invoice or a subscription) and returns to the customer. A
rejection is shown with the API's own message, and nothing changed (CON-29).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

import msgspec
from litestar import get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

from allotment.console.context import Console, ConsoleArg
from allotment.console.customer_view import customer_view
from allotment.console.guard import ConsoleRefused
from allotment.domain.commands import (
    CancelSubscription,
    ChangePlan,
    Command,
    GrantCredits,
    MarkInvoicePaid,
    RevertCancellation,
)
from allotment.domain.credits import GrantSource
from allotment.domain.replies import Rejected
from allotment.domain.state import CancelMode, ChangeType
from allotment.http.errors import ENCODER, REJECTION_STATUS
from allotment.runtime.meter_reads import CustomerEvent, HistoryUnavailable
from allotment.runtime.ports import CustomerLookup

__all__ = ("PAGES",)

_DONE = {  # ?done=... after an action: fixed words, never text from the request
    "grant": "Credits granted.",
    "paid": "Invoice marked paid.",
    "cancel": "Subscription cancelled.",
    "revert": "Scheduled cancellation reverted.",
    "change": "Plan change made.",
}


DENIALS_SHOWN = 20
EVENTS_SHOWN = 20


class Action(msgspec.Struct, frozen=True, kw_only=True):
    """An action waiting for confirmation: what it does, in words and as the API call."""

    title: str
    summary: str
    method: str
    path: str
    body: dict[str, Any] | None
    fields: dict[str, str]  # the form fields the confirming post repeats
    done: str  # a key of _DONE


def _page(value: str | int | None) -> int:
    try:
        return max(1, int(value or 1))
    except ValueError:
        return 1


def _detail(reference: str) -> str:
    return f"/console/customers/{quote(reference, safe='')}"


@get("/customers/{reference:str}", name="console.customer")
async def customer(
    console: ConsoleArg,
    reference: FromPath[str],
    ledger: FromQuery[int] = 1,
    invoices: FromQuery[int] = 1,
    done: FromQuery[str] = "",
) -> Template:
    """One customer: profile, subscriptions, usage, credits, invoices, reservations."""
    lookup = CustomerLookup(external_id=reference)
    view = await console.shard.read(lookup, customer_view(_page(ledger), _page(invoices)))
    if view is None:
        raise ConsoleRefused(404, f"No customer has the reference id {reference!r}.")
    denials = await console.shard.recent_denials(lookup, DENIALS_SHOWN)  # CON-26: no turn
    events = await _recent_events(console, view.id)
    return console.render(
        "customer.html",
        title=f"Customer {view.reference}",
        view=view,
        denials=denials,
        events=events,
        done=_DONE.get(done, ""),
        ledger_page=_page(ledger),
        invoice_page=_page(invoices),
        detail=_detail(view.reference),
    )


async def _recent_events(console: Console, customer_id: uuid.UUID) -> list[CustomerEvent] | None:
    """The customer's latest events from the journal's event history, the port OpenMeter's
    event listing reads (CON-80); None without a data directory. No customer turn."""
    history = console.system.history
    if history is None:
        return None
    try:
        return await history.customer_events(console.session.environment, customer_id,
                                             EVENTS_SHOWN)  # fmt: skip
    except HistoryUnavailable:
        return None


async def _confirm_or_run(
    console: ConsoleArg,
    reference: str,
    action: Action,
    run: Callable[[], Any],
) -> Template | Redirect:
    """The confirmation page, or (confirmed) the command's result (see the module doc)."""
    form = await console.form()
    if form.get("confirm") != "yes":
        return _confirmation(console, reference, action)
    reply = await run()
    if isinstance(reply, Rejected):
        status = REJECTION_STATUS[reply.kind]
        return _confirmation(console, reference, action, reply.message, status)
    return Redirect(f"{_detail(reference)}?done={action.done}", status_code=HTTP_303_SEE_OTHER)


def _confirmation(
    console: Console,
    reference: str,
    action: Action,
    error: str = "",
    status: int = 200,
) -> Template:
    body = None  # the API's body, encoded as the API encodes (amounts as exact numbers)
    if action.body is not None:
        body = msgspec.json.format(ENCODER.encode(action.body), indent=2).decode()
    return console.render(
        "confirm.html", status_code=status, title=action.title, action=action, body=body,
        error=error, detail=_detail(reference), target=console.path,
    )  # fmt: skip


def _uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ConsoleRefused(400, f"Not a valid {what} id.") from None


def _amount(text: str) -> Decimal:
    try:
        amount = Decimal(text.strip())
    except InvalidOperation:
        amount = Decimal(0)
    if not amount.is_finite() or amount <= 0:
        raise ConsoleRefused(400, "The amount must be a number greater than zero.")
    return amount


def _grant(form: dict[str, str], reference: str) -> tuple[Action, GrantCredits]:
    denomination = form.get("denomination", "").strip()
    amount = _amount(form.get("amount", ""))
    try:
        source = GrantSource(form.get("source", "MANUAL"))
    except ValueError:
        raise ConsoleRefused(400, "Unknown grant source.") from None
    expires = form.get("expires", "").strip()
    try:
        day = datetime.fromisoformat(expires).date() if expires else None
    except ValueError:
        raise ConsoleRefused(400, "The expiry must be a date (YYYY-MM-DD).") from None
    expires_at = datetime.combine(day, time(), UTC) if day is not None else None
    body: dict[str, Any] = {"customerReferenceId": reference, "denomination": denomination,
                            "amount": amount, "source": source.value}  # fmt: skip
    if expires_at is not None:
        body["expiresAt"] = expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    action = Action(
        title="Grant credits",
        summary=f"Grant {amount} {denomination} to {reference} ({source.value}).",
        method="POST", path="/api/v1/admin/credits/grants", body=body,
        fields={"denomination": denomination, "amount": str(amount), "source": source.value,
                "expires": expires}, done="grant",
    )  # fmt: skip
    command = GrantCredits(denomination=denomination, amount=amount, source=source,
                           expires_at=expires_at)  # fmt: skip
    return action, command


@post("/customers/{reference:str}/grant", name="console.grant")
async def grant(console: ConsoleArg, reference: FromPath[str]) -> Template | Redirect:
    """CON-28: grantCredits, as `POST /api/v1/admin/credits/grants` does it."""
    action, command = _grant(await console.form(), reference)
    lookup = CustomerLookup(external_id=reference)
    return await _confirm_or_run(
        console, reference, action, lambda: console.shard.command(lookup, command)
    )


@post("/customers/{reference:str}/invoices/{invoice:str}/mark-paid", name="console.mark_paid")
async def mark_paid(
    console: ConsoleArg, reference: FromPath[str], invoice: FromPath[str]
) -> Template | Redirect:
    """CON-28: markInvoicePaid, as `POST /api/v1/client/billing/invoices/{id}/mark-paid`."""
    invoice_id = _uuid(invoice, "invoice")
    action = Action(
        title="Mark invoice paid",
        summary=f"Record invoice {invoice_id} of {reference} as paid outside Stripe; a "
        "subscription waiting on it becomes ACTIVE.",
        method="POST", path=f"/api/v1/client/billing/invoices/{invoice_id}/mark-paid",
        body=None, fields={}, done="paid",
    )  # fmt: skip
    command = MarkInvoicePaid(invoice_id=invoice_id)
    return await _on_owner(console, reference, invoice_id, command, action, "Invoice not found.")


async def _on_owner(
    console: ConsoleArg,
    reference: str,
    entity: uuid.UUID,
    command: Command,
    action: Action,
    missing: str,
) -> Template | Redirect:
    return await _confirm_or_run(
        console, reference, action,
        lambda: console.shard.command_on_owner(entity, command, missing),
    )  # fmt: skip


SubscriptionCommand = CancelSubscription | RevertCancellation | ChangePlan


def _cancel(
    console: Console, reference: str, sid: uuid.UUID, form: dict[str, str]
) -> tuple[Action, SubscriptionCommand]:
    """cancelSubscription, as `POST .../subscriptions/cancellation/{id}` does it."""
    try:
        mode = CancelMode(form.get("mode", "END_OF_PERIOD"))
    except ValueError:
        raise ConsoleRefused(400, "The cancel mode is IMMEDIATE or END_OF_PERIOD.") from None
    when = "now" if mode is CancelMode.IMMEDIATE else "at the end of the current period"
    action = Action(
        title="Cancel subscription", summary=f"Cancel subscription {sid} of {reference} {when}.",
        method="POST",
        path=f"/api/v1/client/subscriptions/cancellation/{sid}?cancelMode={mode.value}",
        body=None, fields={"mode": mode.value}, done="cancel",
    )  # fmt: skip
    return action, CancelSubscription(subscription_id=sid, mode=mode)


def _revert(
    console: Console, reference: str, sid: uuid.UUID, form: dict[str, str]
) -> tuple[Action, SubscriptionCommand]:
    """revertScheduledCancellation, as `DELETE .../cancellation/{id}/scheduled` does it."""
    action = Action(
        title="Revert scheduled cancellation",
        summary=f"Keep subscription {sid} of {reference}: its scheduled cancellation is undone.",
        method="DELETE", path=f"/api/v1/client/subscriptions/cancellation/{sid}/scheduled",
        body=None, fields={}, done="revert",
    )  # fmt: skip
    return action, RevertCancellation(subscription_id=sid)


def _change_plan(
    console: Console, reference: str, sid: uuid.UUID, form: dict[str, str]
) -> tuple[Action, SubscriptionCommand]:
    """changeSubscriptionPlan, as `POST .../subscriptions/{id}/plan-change` does it."""
    to_plan = _uuid(form.get("plan", ""), "plan")
    try:
        change_type = ChangeType(form.get("change_type", "UPGRADE"))
    except ValueError:
        raise ConsoleRefused(400, "The change type is UPGRADE or DOWNGRADE.") from None
    plan = console.shard.catalog.plans.get(to_plan)
    action = Action(
        title="Change plan",
        summary=f"Move subscription {sid} of {reference} to {plan.name if plan else to_plan} "
        f"({change_type.value}: an upgrade applies now, a downgrade at the period end).",
        method="POST", path=f"/api/v1/client/subscriptions/{sid}/plan-change",
        body={"changeToPlanId": str(to_plan), "changeType": change_type.value},
        fields={"plan": str(to_plan), "change_type": change_type.value}, done="change",
    )  # fmt: skip
    return action, ChangePlan(subscription_id=sid, to_plan_id=to_plan, change_type=change_type)


_SUBSCRIPTION_ACTIONS = {"cancel": _cancel, "revert": _revert, "change-plan": _change_plan}


@post("/customers/{reference:str}/subscriptions/{sub:str}/{verb:str}", name="console.subscription")
async def subscription_action(
    console: ConsoleArg, reference: FromPath[str], sub: FromPath[str], verb: FromPath[str]
) -> Template | Redirect:
    """CON-28: cancel, revert a scheduled cancellation, or change plan."""
    build = _SUBSCRIPTION_ACTIONS.get(verb)
    if build is None:
        raise ConsoleRefused(404, "No such subscription action.")
    sid = _uuid(sub, "subscription")
    action, command = build(console, reference, sid, await console.form())
    return await _on_owner(console, reference, sid, command, action, "Subscription not found.")


PAGES = [customer, grant, mark_paid, subscription_action]
