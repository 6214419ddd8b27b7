"""ingestEvent (EVT-1..EVT-47)."""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal
from typing import Annotated

from litestar import Response, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter

from allotment.config import Settings
from allotment.domain.commands import CostInput, RecordUsage
from allotment.domain.money import round_usage
from allotment.domain.replies import Rejected, UsageAccepted
from allotment.http.context import (
    AnyRequest,
    documents_body,
    errors,
    json_body,
    settings_of,
    shard_of,
    system_of,
)
from allotment.http.errors import ENCODER, ApiError, encoded_response, raise_rejection
from allotment.http.mapping.events import accepted_event
from allotment.http.schemas import ApiResponseEventIngestionResponse, EventRequest
from allotment.http.validation import check_decimal, decode_body
from allotment.runtime.clock import Clock
from allotment.runtime.ports import CustomerLookup, Shard

__all__ = ("event_command", "ingest", "ingest_event")

_KEY_LENGTH_MAX = 255


def _idempotency_key(header: str | None, body: EventRequest) -> str:
    """EVT-2: a non-blank header overrides the body key; one of them is required."""
    if header is not None and header.strip():
        if len(header) > _KEY_LENGTH_MAX:
            raise ApiError(400, "Invalid header 'X-Idempotency-Key': at most 255 characters.")
        return header.strip()
    if body.eventIdempotencyKey is not None and body.eventIdempotencyKey.strip():
        return body.eventIdempotencyKey.strip()
    raise ApiError(
        400,
        "Invalid field 'eventIdempotencyKey': "
        "required unless the X-Idempotency-Key header is sent.",
    )


def _lookup(body: EventRequest) -> CustomerLookup:
    """EVT-10: exactly one customer identifier."""
    given = [
        name
        for name, value in (
            ("customerReferenceId", body.customerReferenceId),
            ("customerId", body.customerId),
            ("stripeCustomerId", body.stripeCustomerId),
        )
        if value is not None
    ]
    if len(given) != 1:
        raise ApiError(
            400,
            "Invalid field 'customerReferenceId': send exactly one of customerReferenceId, "
            f"customerId or stripeCustomerId (got {', '.join(given) or 'none'}).",
        )
    return CustomerLookup(
        external_id=body.customerReferenceId,
        customer_id=body.customerId,
        stripe_customer_id=body.stripeCustomerId,
    )


def _optional_amount(name: str, value: Decimal | None) -> Decimal | None:
    return None if value is None else check_decimal(name, value)  # EVT-5


def event_command(
    settings: Settings, clock: Clock, body: EventRequest, header_key: str | None
) -> tuple[CustomerLookup, RecordUsage]:
    """Validate one event (EVT-1..EVT-10) and map it to the domain command."""
    key = _idempotency_key(header_key, body)
    lookup = _lookup(body)
    units = body.usageUnits if body.usageUnits is not None else Decimal(1)
    units = round_usage(check_decimal("usageUnits", units))
    if body.meta is not None and len(ENCODER.encode(body.meta)) > settings.event_meta_size_max:
        raise ApiError(400, "Invalid field 'meta': larger than 16 KB when serialised.")  # EVT-6
    cost_input = body.costInput
    occurred_at = body.occurredAt.astimezone(UTC) if body.occurredAt else clock.now()
    command = RecordUsage(
        idempotency_key=key,
        event_name=body.eventName,
        occurred_at=occurred_at,
        units=units,
        feature_key=body.featureKey,
        subscription_id=body.subscriptionId,
        entitlement_id=body.entitlementId,
        invoice_id=body.invoiceId,
        cost_amount=_optional_amount("costAmount", body.costAmount),
        revenue_amount=_optional_amount("revenueAmount", body.revenueAmount),
        cost_input=CostInput(
            model=cost_input.model,
            model_provider=cost_input.modelProvider,
            input_tokens=cost_input.inputTokens,
            output_tokens=cost_input.outputTokens,
        )
        if cost_input
        else None,
        flow_id=body.flowId,
        meta=body.meta,
    )
    return lookup, command


_OVER_LIMIT = ResponseSpec(
    data_container=ApiResponseEventIngestionResponse,
    generate_examples=False,
    description="Event ingested, and usage has reached or exceeded the feature's limit "
    "(`usageLimitExceeded: true`). The event is still recorded.",
)


@post(
    "/events",
    operation_id="ingestEvent",
    status_code=201,
    dependencies=documents_body(EventRequest),
    responses={200: _OVER_LIMIT, **errors(400, 401, 403, 404, 409)},  # EVT-43
)
async def ingest_event(
    request: AnyRequest,
    header: Annotated[str | None, HeaderParameter(name="X-Idempotency-Key", required=False)] = None,
) -> Response[ApiResponseEventIngestionResponse]:
    system = system_of(request)
    status, body = await ingest(
        shard_of(request), settings_of(request), system.clock, await json_body(request), header
    )
    return encoded_response(body, status)


async def ingest(
    shard: Shard, settings: Settings, clock: Clock, raw: bytes, header: str | None
) -> tuple[int, bytes]:
    """ingestEvent's status and encoded answer, once the event is durable: shared by the route
    and the fast path."""
    body = decode_body(raw, EventRequest)
    lookup, command = event_command(settings, clock, body, header)
    reply = await shard.ingest(lookup, command, body.featureId)
    if isinstance(reply, Rejected):
        raise_rejection(reply)
    assert isinstance(reply, UsageAccepted)
    status, data = accepted_event(reply)  # EVT-43, EVT-44, OPS-D5
    return status, ENCODER.encode(ApiResponseEventIngestionResponse(success=True, data=data))
