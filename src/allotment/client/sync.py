"""`Client`: the Tanso Client API (and allotment's reservation extension) over httpx, blocking.

Every method sends one request and returns the typed answer, or raises an `ApiError` subclass
with the server's status and message (`errors.py`). The async twin is `aio.AsyncClient`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from allotment.client import _operations as ops
from allotment.client._wire import BASE_PATH, Call
from allotment.client.errors import TransportError
from allotment.client.models import (
    CheckoutSession,
    CreditPool,
    Customer,
    Entitlement,
    EventBatchItem,
    EventResult,
    Invoice,
    PlanWithFeatures,
    SubscribedCustomer,
    UsageEvent,
)
from allotment.client.sync_reservations import SyncReservations

__all__ = ("Client",)

T = TypeVar("T")


class Client(SyncReservations):
    """A blocking client. Use it as a context manager, or call `close()`.

    Args:
        base_url: the server, e.g. "http://127.0.0.1:8000".
        api_key: a key with the client scopes ("sk_test_..." or "sk_live_...").
        timeout_s: the bound on each request, connect to last byte.
        http: an httpx.Client to send through instead (its transport, proxies and limits);
            the caller keeps ownership of it.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout_s: float = 30.0,
        http: httpx.Client | None = None,
    ) -> None:
        self._url = base_url.rstrip("/") + BASE_PATH
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._owns_http = http is None
        self._http = http if http is not None else httpx.Client(timeout=timeout_s)

    def close(self) -> None:
        """Closes the connections (only those of an httpx.Client this client created)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def send(self, call: Call[T]) -> T:
        """Sends one request and reads its answer.

        Raises:
            ApiError: the server refused it (a subclass per status).
            TransportError: no answer arrived; the operation may or may not have happened.
            UnexpectedResponse: a success whose body is not the expected shape.
        """
        headers = {**self._headers, **call.headers}
        if call.body is not None:
            headers["Content-Type"] = "application/json"
        try:
            response = self._http.request(
                call.method, self._url + call.path, content=call.body, params=call.params,
                headers=headers,
            )  # fmt: skip
        except httpx.TransportError as error:
            raise TransportError(f"{call.method} {call.path}: {error!r}") from error
        retry_after = response.headers.get("retry-after")
        return call.result(response.status_code, response.content, retry_after)

    # -- customers, plans, subscriptions -------------------------------------------------------

    def create_customer(
        self,
        customer_reference_id: str,
        *,
        first_name: str,
        last_name: str,
        email: str,
        phone_number: str | None = None,
        address: str | None = None,
    ) -> None:
        """Creates a customer with your reference id (409 `Conflict` if it exists)."""
        self.send(ops.create_customer(
            customer_reference_id=customer_reference_id, first_name=first_name,
            last_name=last_name, email=email, phone_number=phone_number, address=address,
        ))  # fmt: skip

    def get_customer(self, customer_reference_id: str) -> Customer:
        """The customer with its subscriptions and credit pools (404 `NotFound`)."""
        return self.send(ops.get_customer(customer_reference_id))

    def list_plans(self) -> list[PlanWithFeatures]:
        """The published plans with their features and credit allocations."""
        return self.send(ops.list_plans())

    def create_subscription(
        self,
        customer_reference_id: str,
        plan_id: uuid.UUID | str,
        *,
        grace_period_days: int | None = None,
    ) -> SubscribedCustomer:
        """Subscribes the customer to a plan; the answer carries the first invoice."""
        call = ops.create_subscription(
            customer_reference_id, plan_id, grace_period_days=grace_period_days
        )
        return self.send(call)

    def cancel_subscription(
        self, subscription_id: uuid.UUID | str, *, mode: ops.CancelMode | None = None
    ) -> None:
        """Cancels at the period's end (the default) or immediately."""
        self.send(ops.cancel_subscription(subscription_id, mode=mode))

    def revert_cancellation(self, subscription_id: uuid.UUID | str) -> None:
        """Takes back a cancellation scheduled for the period's end."""
        self.send(ops.revert_cancellation(subscription_id))

    def change_plan(
        self,
        subscription_id: uuid.UUID | str,
        to_plan_id: uuid.UUID | str,
        change_type: ops.ChangeType,
    ) -> None:
        """Upgrades (now, prorated) or downgrades (at the period's end)."""
        self.send(ops.change_plan(subscription_id, to_plan_id, change_type))

    def cancel_scheduled_plan_change(self, subscription_id: uuid.UUID | str) -> None:
        """Takes back a scheduled downgrade."""
        self.send(ops.cancel_scheduled_plan_change(subscription_id))

    # -- entitlements and usage ----------------------------------------------------------------

    def check_entitlement(self, customer_reference_id: str, feature_key: str) -> Entitlement:
        """May the customer use the feature now? (GET, nothing recorded but the audit)"""
        return self.send(ops.check_entitlement(customer_reference_id, feature_key))

    def evaluate_entitlement(
        self,
        customer_reference_id: str,
        feature_key: str,
        *,
        flow_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> Entitlement:
        """As `check_entitlement`, with a flow id and idempotency key for the audit."""
        call = ops.evaluate_entitlement(
            customer_reference_id, feature_key, flow_id=flow_id, idempotency_key=idempotency_key
        )
        return self.send(call)

    def simulate_usage(
        self,
        customer_reference_id: str,
        feature_key: str,
        units: Decimal | int,
        *,
        event_name: str | None = None,
        meta: dict[str, Any] | None = None,
        flow_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> Entitlement:
        """Would `units` more be allowed? Holds nothing: use `reserve` to hold them."""
        return self.send(ops.simulate_usage(
            customer_reference_id, feature_key, units, event_name=event_name, meta=meta,
            flow_id=flow_id, idempotency_key=idempotency_key,
        ))  # fmt: skip

    def ingest_event(self, event: UsageEvent, *, idempotency_key: str | None = None) -> EventResult:
        """Records one usage event (a repeat of its idempotency key is not counted twice)."""
        return self.send(ops.ingest_event(event, idempotency_key=idempotency_key))

    def ingest_events(self, events: Sequence[UsageEvent]) -> list[EventBatchItem]:
        """Records many events in one request; each has its own outcome, in order."""
        return self.send(ops.ingest_events(events))

    # -- credits and billing -------------------------------------------------------------------

    def list_credit_pools(
        self, customer_reference_id: str, *, grants: bool = False, transactions: bool = False
    ) -> list[CreditPool]:
        """The customer's credit pools, with their live grants and ledger if asked."""
        call = ops.list_credit_pools(
            customer_reference_id, grants=grants, transactions=transactions
        )
        return self.send(call)

    def list_invoices(self, customer_reference_id: str) -> list[Invoice]:
        """The customer's invoices, newest first."""
        return self.send(ops.list_invoices(customer_reference_id))

    def mark_invoice_paid(self, invoice_id: uuid.UUID | str) -> None:
        """Records that an invoice was paid outside Stripe."""
        self.send(ops.mark_invoice_paid(invoice_id))

    def create_checkout_session(self, invoice_id: uuid.UUID | str) -> CheckoutSession:
        """A Stripe Checkout URL for the invoice ("" when it is already paid)."""
        return self.send(ops.create_checkout_session(invoice_id))
