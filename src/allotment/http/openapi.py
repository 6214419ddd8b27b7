"""OpenAPI adjustments: decimals are JSON numbers on the wire (API-8), so document them so."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from litestar.openapi.spec import Schema
from litestar.openapi.spec.enums import OpenAPIType
from litestar.plugins import OpenAPISchemaPlugin

__all__ = ("DecimalAsNumber",)


class DecimalAsNumber(OpenAPISchemaPlugin):
    """Litestar documents `Decimal` as a string; allotment encodes it as a JSON number."""

    @staticmethod
    def is_plugin_supported_type(value: Any) -> bool:
        return value is Decimal

    def to_openapi_schema(self, field_definition: Any, schema_creator: Any) -> Schema:
        del field_definition, schema_creator
        return Schema(type=OpenAPIType.NUMBER)
