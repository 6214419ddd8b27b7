"""Stripe through the official SDK: async calls on its httpx client, a timeout on each, no
automatic retries (the caller retries, with the same idempotency key)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import stripe

from allotment.payments.ports import CheckoutRequest, CheckoutSession, PaymentProviderError

__all__ = ("StripeGateway",)


class StripeGateway:
    def __init__(
        self,
        secret_key: str,
        success_url: str,
        cancel_url: str,
        api_base: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self._success_url = success_url
        self._cancel_url = cancel_url
        self._client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": api_base} if api_base else None,
            http_client=stripe.HTTPXClient(timeout=timeout_s),
            max_network_retries=0,
        )

    async def create_customer(
        self, customer_reference: str, email: str | None, name: str | None, idempotency_key: str
    ) -> str:
        params: dict[str, Any] = {"metadata": {"allotment_customer_id": customer_reference}}
        if email:
            params["email"] = email
        if name:
            params["name"] = name
        customer = await self._call(
            self._client.v1.customers.create_async(
                cast("Any", params), {"idempotency_key": idempotency_key}
            )
        )
        return str(customer.id)

    async def create_checkout_session(self, request: CheckoutRequest) -> CheckoutSession:
        params: dict[str, Any] = {
            "mode": "payment",
            "customer": request.provider_customer_id,
            "success_url": self._success_url,
            "cancel_url": self._cancel_url,
            "client_reference_id": request.invoice_id,
            "metadata": {
                "invoice_id": request.invoice_id,
                "allotment_customer_id": request.customer_reference,
            },
            "payment_intent_data": {"metadata": {"invoice_id": request.invoice_id}},
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": request.currency.lower(),
                        "unit_amount": line.amount_minor,
                        "product_data": {"name": line.description},
                    },
                }
                for line in request.lines
            ],
        }
        session = await self._call(
            self._client.v1.checkout.sessions.create_async(
                cast("Any", params), {"idempotency_key": request.idempotency_key}
            )
        )
        expires = getattr(session, "expires_at", None)
        return CheckoutSession(
            id=str(session.id),
            url=str(session.url or ""),
            status=str(session.status or "open"),
            expires_at=datetime.fromtimestamp(expires, UTC) if expires else None,
        )

    async def refund(
        self, session_id: str, amount_minor: int, metadata: dict[str, str], idempotency_key: str
    ) -> tuple[str, str]:
        """A refund of the payment the session took (CN-47): the session names its payment
        intent; the refund carries the note in its metadata, so `charge.refunded` finds it."""
        session = await self._call(self._client.v1.checkout.sessions.retrieve_async(session_id))
        intent = session.payment_intent
        params: dict[str, Any] = {
            "payment_intent": intent if isinstance(intent, str) else intent.id,
            "amount": amount_minor,
            "metadata": metadata,
        }
        refund = await self._call(
            self._client.v1.refunds.create_async(
                cast("Any", params), {"idempotency_key": idempotency_key}
            )
        )
        return str(refund.id), str(refund.status)

    @staticmethod
    async def _call(pending: Any) -> Any:
        try:
            return await pending
        except stripe.StripeError as error:
            raise PaymentProviderError(
                error.user_message or str(error) or type(error).__name__
            ) from error
