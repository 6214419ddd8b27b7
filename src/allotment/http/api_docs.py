"""The API docs: an OpenAPI document that teaches, rendered by a Swagger UI served from this
server, so the docs page works with no network (OPS-D1..OPS-D3).

Litestar generates the document's shapes from the routes; this module adds the words. The 14
Tanso operations take the contract's summary, description, tags, parameter descriptions and
examples, and request and response examples, verbatim (`api_docs/tanso.json`, copied from
tests/contract/tanso-openapi.json); allotment's own operations take theirs from
`api_docs/extensions.toml`. Component schemas that share a name with the contract's take its
descriptions where ours have none.

The Swagger UI's files come from the `swagger-ui-bundle-v2` package (Apache-2.0; its licence
ships in its dist-info) and are served under `/schema/swagger/assets/`.
"""

from __future__ import annotations

import copy
import json
import mimetypes
import tomllib
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import swagger_ui_bundle
from litestar import Request, Response, Router, get
from litestar.exceptions import NotFoundException
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.params import FromPath

__all__ = ("ASSETS_PATH", "DocumentedJson", "OfflineSwagger", "documented", "operation_docs")

ASSETS_PATH = "/schema/swagger/assets"
# Only what the page loads: the bundle, its preset, the stylesheet and the icons.
_ASSETS = frozenset(
    {
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
        "swagger-ui.css",
        "favicon-16x16.png",
        "favicon-32x32.png",
    }
)
Document = dict[str, Any]


@cache
def operation_docs() -> tuple[dict[str, Document], list[Document]]:
    """Every documented operation by operationId, and the tags with their descriptions: the
    contract's first, then allotment's own. Our supplements add examples the contract lacks
    to its operations; they never replace its words."""
    folder = resources.files("allotment.http") / "api_docs"
    tanso = json.loads((folder / "tanso.json").read_text(encoding="utf-8"))
    ours = tomllib.loads((folder / "extensions.toml").read_text(encoding="utf-8"))
    operations = {**tanso["operations"], **ours["operations"]}
    for operation_id, supplement in ours.get("supplements", {}).items():
        responses = operations[operation_id]["responses"]
        for code, words in supplement.get("responses", {}).items():
            responses[code] = {**words, **responses.get(code, {})}
    return operations, [*tanso["tags"], *ours["tags"]]


@cache
def _contract_schemas() -> dict[str, Document]:
    """The contract's words for its component schemas and their properties."""
    folder = resources.files("allotment.http") / "api_docs"
    tanso = json.loads((folder / "tanso.json").read_text(encoding="utf-8"))
    schemas: dict[str, Document] = tanso["schemas"]
    return schemas


def documented(schema: Document) -> Document:
    """A copy of Litestar's document with the docs of every operation and schema added."""
    document = copy.deepcopy(schema)
    operations, tags = operation_docs()
    document["tags"] = tags
    for item in document.get("paths", {}).values():
        for operation in item.values():
            if isinstance(operation, dict) and operation.get("operationId") in operations:
                _document_operation(operation, operations[operation["operationId"]])
    for name, ours in document.get("components", {}).get("schemas", {}).items():
        words = _contract_schemas().get(name)
        if words is not None:
            _document_schema(ours, words)
    return document


def _document_schema(ours: Document, words: Document) -> None:
    """The contract's descriptions and examples where ours have none (ours may say more)."""
    if "description" in words:
        ours.setdefault("description", words["description"])
    properties = ours.get("properties", {})
    for name, property_words in words.get("properties", {}).items():
        target = properties.get(name)
        if not isinstance(target, dict):
            continue
        for key, value in property_words.items():
            target.setdefault(key, value)


def _document_operation(operation: Document, docs: Document) -> None:
    for key in ("tags", "summary", "description"):
        if key in docs:
            operation[key] = docs[key]
    for parameter in operation.get("parameters", []):
        words = docs.get("parameters", {}).get(parameter.get("name"))
        if words:
            parameter.update(words)
    body = operation.get("requestBody")
    if body is not None and "requestBody" in docs:
        words = dict(docs["requestBody"])
        if "description" in words:
            body["description"] = words.pop("description")
        _json_content(body).update(words)
    for code, response_docs in docs.get("responses", {}).items():
        response = operation.get("responses", {}).get(code)
        if response is None:
            continue
        examples = {k: v for k, v in response_docs.items() if k != "description"}
        response["description"] = response_docs.get("description", response.get("description"))
        if examples:
            _json_content(response).update(examples)


def _json_content(node: Document) -> Document:
    content: Document = node.setdefault("content", {}).setdefault("application/json", {})
    return content


class _Documented:
    """Renders the document with its docs; computed once per generated document."""

    _source: Document | None = None
    _result: Document | None = None

    def documented(self, schema: Document) -> Document:
        if self._source is not schema or self._result is None:
            self._source, self._result = schema, documented(schema)
        return self._result


class DocumentedJson(_Documented, JsonRenderPlugin):
    """`/schema/openapi.json`, with the docs."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: Document) -> bytes:
        return super().render(request, self.documented(openapi_schema))


class OfflineSwagger(_Documented, SwaggerRenderPlugin):
    """Swagger UI at `/schema/swagger` (and `/schema`), every file it loads served by this
    server: the page needs no network (OPS-D1)."""

    def __init__(self) -> None:
        super().__init__(
            js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            css_url=f"{ASSETS_PATH}/swagger-ui.css",
            standalone_preset_js_url=f"{ASSETS_PATH}/swagger-ui-standalone-preset.js",
            path="/swagger",
            favicon=f"<link rel='icon' type='image/png' href='{ASSETS_PATH}/favicon-32x32.png'>",
        )

    def render(self, request: Request[Any, Any, Any], openapi_schema: Document) -> bytes:
        return super().render(request, self.documented(openapi_schema))

    def receive_router(self, router: Router) -> None:
        super().receive_router(router)
        router.register(swagger_asset)


@cache
def _asset(name: str) -> bytes:
    folder = Path(str(swagger_ui_bundle.swagger_ui_path))
    return (folder / name).read_bytes()


@get("/swagger/assets/{name:str}", sync_to_thread=False, include_in_schema=False)
def swagger_asset(name: FromPath[str]) -> Response[bytes]:
    """One Swagger UI file; nothing else under the package's folder is served."""
    if name not in _ASSETS:
        raise NotFoundException
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return Response(
        _asset(name),
        media_type=media_type,
        headers={"Cache-Control": "public, max-age=86400"},
    )
