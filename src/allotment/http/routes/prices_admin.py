"""GET and PUT /api/v1/admin/model-prices: the model price table that prices `costInput`
(EVT-30), replaced at runtime, validated and journalled (OPS-D6). Admin-scoped keys only; the
caller's environment only."""

from __future__ import annotations

import msgspec
from litestar import Response, get, put

from allotment.http.context import AnyRequest, documents_body, errors, shard_of
from allotment.http.errors import ApiError, json_response
from allotment.http.price_document import (
    PriceDocument,
    PriceDocumentInvalid,
    from_price_table,
    to_price_table,
)
from allotment.http.validation import decode_body

__all__ = ("ApiResponseModelPrices", "get_model_prices", "replace_model_prices")


class ApiResponseModelPrices(msgspec.Struct, kw_only=True):
    success: bool = True
    data: PriceDocument


@get(
    "/model-prices",
    operation_id="getModelPrices",
    opt={"scope": "admin"},
    responses=errors(401, 403),
)
async def get_model_prices(request: AnyRequest) -> Response[ApiResponseModelPrices]:
    table = shard_of(request).price_table
    return json_response(ApiResponseModelPrices(data=from_price_table(table)))


@put(
    "/model-prices",
    operation_id="replaceModelPrices",
    opt={"scope": "admin"},
    dependencies=documents_body(PriceDocument),
    responses=errors(400, 401, 403),
)
async def replace_model_prices(request: AnyRequest) -> Response[ApiResponseModelPrices]:
    document = decode_body(await request.body(), PriceDocument)
    try:
        table = to_price_table(document)
    except PriceDocumentInvalid as invalid:
        raise ApiError(
            400, f"Invalid model prices: {invalid.errors[0]}", "; ".join(invalid.errors)
        ) from None
    table = await shard_of(request).replace_prices(table)
    return json_response(ApiResponseModelPrices(data=from_price_table(table)))
