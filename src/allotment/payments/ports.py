"""The payment-provider port. The runtime depends on this, never on `stripe`."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import msgspec

__all__ = (
    "CheckoutLine",
    "CheckoutRequest",
    "CheckoutSession",
    "PaymentGateway",
    "PaymentProviderError",
)


class PaymentProviderError(RuntimeError):
    """The provider refused or could not be reached (timeout, outage, error response).

    `message` is the provider's own words; the caller answers 502 and changes nothing.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CheckoutLine(msgspec.Struct, frozen=True, kw_only=True):
    description: str
    amount_minor: int  # in the invoice currency's minor unit, > 0


class CheckoutRequest(msgspec.Struct, frozen=True, kw_only=True):
    invoice_id: str
    customer_reference: str  # our customer id, for the provider's metadata
    provider_customer_id: str
    currency: str
    lines: tuple[CheckoutLine, ...]
    idempotency_key: str


class CheckoutSession(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    url: str
    status: str  # open | complete | expired
    expires_at: datetime | None = None


class PaymentGateway(Protocol):
    """Hosted checkout at a payment provider. Every call is bounded by a timeout.

    Raises:
        PaymentProviderError: from any method, when the provider fails.
    """

    async def create_customer(
        self, customer_reference: str, email: str | None, name: str | None, idempotency_key: str
    ) -> str: ...

    async def create_checkout_session(self, request: CheckoutRequest) -> CheckoutSession: ...

    async def refund(
        self, session_id: str, amount_minor: int, metadata: dict[str, str], idempotency_key: str
    ) -> tuple[str, str]:
        """Refund `amount_minor` of what checkout session `session_id` took: the provider's
        refund id and status (pending, succeeded, failed, canceled, requires_action)."""
        ...
