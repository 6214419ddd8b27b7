"""listCustomerInvoices, markInvoicePaid and Stripe checkout (INV-20..INV-28, STR-1..STR-7)."""

from __future__ import annotations

from litestar import Response, get, post
from litestar.params import FromPath

from allotment.domain.commands import MarkInvoicePaid
from allotment.domain.replies import Rejected
from allotment.http.context import AnyRequest, checkout_of, errors, shard_of
from allotment.http.errors import ApiError, json_response, raise_rejection
from allotment.http.mapping.invoices import project_invoices
from allotment.http.schemas import (
    ApiResponseInvoiceList,
    ApiResponseStripeCheckoutSession,
    ApiResponseVoid,
    StripeCheckoutSessionResponse,
)
from allotment.http.validation import parse_uuid
from allotment.payments.ports import PaymentProviderError
from allotment.runtime.checkout import CheckoutRefused
from allotment.runtime.ports import CustomerLookup

__all__ = ("create_checkout_session", "list_invoices", "mark_invoice_paid")


@get(
    "/billing/invoices/{externalClientCustomerId:str}",
    operation_id="listCustomerInvoices",
    opt={"platform": True},
    responses=errors(400, 401, 403, 404),  # 400 in the envelope
)
async def list_invoices(
    request: AnyRequest, externalClientCustomerId: FromPath[str]
) -> Response[ApiResponseInvoiceList]:
    data = await shard_of(request).read(
        CustomerLookup(external_id=externalClientCustomerId), project_invoices
    )
    if data is None:
        raise ApiError(404, "Customer not found.")  # INV-27
    return json_response(ApiResponseInvoiceList(success=True, data=data))


@post(
    "/billing/invoices/{invoiceId:str}/mark-paid",
    operation_id="markInvoicePaid",
    status_code=200,
    opt={"platform": True},
    responses=errors(400, 401, 403, 404),
)
async def mark_invoice_paid(
    request: AnyRequest, invoiceId: FromPath[str]
) -> Response[ApiResponseVoid]:
    invoice_id = parse_uuid("invoiceId", invoiceId)  # INV-23
    reply = await shard_of(request).command_on_owner(
        invoice_id, MarkInvoicePaid(invoice_id=invoice_id), "Invoice not found."
    )
    if isinstance(reply, Rejected):
        raise_rejection(reply)
    return json_response(ApiResponseVoid())


@post(
    "/billing/invoices/{invoiceId:str}/stripe/checkout",
    operation_id="createStripeCheckoutSession",
    status_code=200,
    opt={"platform": True},
    responses=errors(400, 401, 403, 404, 502),
)
async def create_checkout_session(
    request: AnyRequest, invoiceId: FromPath[str]
) -> Response[ApiResponseStripeCheckoutSession]:
    checkout = checkout_of(request)
    if not checkout.enabled:  # STR-1: before the invoice lookup
        raise ApiError(400, "Stripe is not enabled at the account.")
    invoice_id = parse_uuid("invoiceId", invoiceId)  # STR-2
    try:
        url = await checkout.checkout_url(shard_of(request), invoice_id)
    except CheckoutRefused as refused:
        raise ApiError(refused.status, refused.message) from None
    except PaymentProviderError as failure:  # an outage changes nothing; the caller may retry
        raise ApiError(502, f"Stripe error: {failure.message}") from None
    data = StripeCheckoutSessionResponse(url=url)
    return json_response(ApiResponseStripeCheckoutSession(success=True, data=data))
