"""The catalog editor (CON-52..CON-55): the catalog document as JSON text, saved through the
admin API's own path (`http.routes.admin.save_catalog`), its refusals placed on the lines of
the fields they name.

The text is laid out by `layout`, which records the line of every field as it writes it, under
both spellings a refusal may use: by index (`plans[0].priceAmount`, msgspec's decode errors)
and by key (`plans[pro].features[api_calls].pricePerUnit`, the domain's rules). A refused
document that is valid JSON comes back laid out the same way, so each error's line is the
line the browser shows.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from allotment.domain.catalog import Catalog
from allotment.http.catalog_document import CATALOG_ENCODER, CatalogDocumentInvalid
from allotment.http.catalog_mapping import from_catalog
from allotment.http.errors import ApiError
from allotment.http.routes.admin import save_catalog
from allotment.runtime.ports import Shard

__all__ = ("EditorOutcome", "FieldError", "catalog_text", "layout", "submit_catalog")

_INDENT = "  "
_DECODER = msgspec.json.Decoder(float_hook=Decimal)  # exact: the text keeps its digits
# Items of these lists are named by this field in the domain's paths (`plans[pro]`).
_ITEM_NAMES = ("key", "featureKey", "creditModelKey")
_API_FIELD = re.compile(r"^Invalid field '(?P<path>[^']*)': (?P<message>.*)$", re.DOTALL)
_PROBLEM = re.compile(r"^(?P<path>[A-Za-z][\w.\[\]\-:]*): (?P<message>.*)$", re.DOTALL)
_BYTE = re.compile(r"\(byte (?P<offset>\d+)\)")
_LAST_STEP = re.compile(r"(\.[^.\[]+|\[[^\]]*\])$")


class FieldError(msgspec.Struct, frozen=True, kw_only=True):
    path: str  # the field the refusal names, in the document's words ("" for the whole text)
    line: int | None  # 1-based line of the text it is on, when found
    message: str


class EditorOutcome(msgspec.Struct, frozen=True, kw_only=True):
    text: str  # what the editor shows next
    errors: tuple[FieldError, ...] = ()
    catalog: Catalog | None = None  # the saved catalog, when saved


def _scalar(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)
    return msgspec.json.encode(value).decode()


def _item_name(item: Any) -> str | None:
    if isinstance(item, dict):
        for field in _ITEM_NAMES:
            if isinstance(item.get(field), str):
                return str(item[field])
    return None


class _Writer:
    """Writes JSON two spaces deep, noting the line each path starts on."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.where: dict[str, int] = {}

    def value(self, value: Any, paths: tuple[str, ...], depth: int, lead: str) -> None:
        for path in paths:
            self.where.setdefault(path, len(self.lines) + 1)
        pad = _INDENT * depth
        if isinstance(value, dict) and value:
            self.lines.append(f"{pad}{lead}{{")
            for n, (key, item) in enumerate(value.items()):
                inner = tuple(f"{p}.{key}" if p else key for p in paths)
                self.value(item, inner, depth + 1, f"{_scalar(key)}: ")
                self._comma(n, len(value))
            self.lines.append(f"{pad}}}")
        elif isinstance(value, list) and value:
            self.lines.append(f"{pad}{lead}[")
            for n, item in enumerate(value):
                name = _item_name(item)
                steps = [f"[{n}]"] + ([f"[{name}]"] if name is not None else [])
                self.value(item, tuple(p + s for p in paths for s in steps), depth + 1, "")
                self._comma(n, len(value))
            self.lines.append(f"{pad}]")
        else:
            empty = "{}" if isinstance(value, dict) else "[]" if isinstance(value, list) else None
            self.lines.append(f"{pad}{lead}{empty or _scalar(value)}")

    def _comma(self, index: int, count: int) -> None:
        if index < count - 1:
            self.lines[-1] += ","


def layout(value: Any) -> tuple[str, dict[str, int]]:
    """`value` as the editor's JSON text, and the line of every field path in it."""
    writer = _Writer()
    writer.value(value, ("",), 0, "")
    return "\n".join(writer.lines) + "\n", writer.where


def catalog_text(catalog: Catalog) -> str:
    """The catalog as the document `GET /api/v1/admin/catalog` gives, laid out for editing."""
    document = _DECODER.decode(CATALOG_ENCODER.encode(from_catalog(catalog)))
    return layout(document)[0]


def _line_of(path: str, where: dict[str, int]) -> int | None:
    """The line of `path`, or of the nearest field holding it (a missing field's object)."""
    while path:
        if path in where:
            return where[path]
        shorter = _LAST_STEP.sub("", path)
        if shorter == path:
            break
        path = shorter
    return None


def _field_error(text: str, where: dict[str, int]) -> FieldError:
    match = _API_FIELD.match(text) or _PROBLEM.match(text)
    if match is None:
        return FieldError(path="", line=None, message=text)
    path = match["path"]
    return FieldError(path=path, line=_line_of(path, where), message=match["message"])


def _malformed(text: str, error: msgspec.DecodeError) -> EditorOutcome:
    found = _BYTE.search(str(error))
    line = None
    if found is not None:
        line = text.encode()[: int(found["offset"])].count(b"\n") + 1
    message = f"Malformed JSON: {error}"
    return EditorOutcome(text=text, errors=(FieldError(path="", line=line, message=message),))


async def submit_catalog(shard: Shard, text: str, now: datetime) -> EditorOutcome:
    """Save `text` as the catalog through the admin API's path, or say where it is wrong."""
    try:
        parsed = _DECODER.decode(text)
    except msgspec.DecodeError as error:
        return _malformed(text, error)
    laid_out, where = layout(parsed)
    try:
        catalog = await save_catalog(shard, text.encode(), now)
    except ApiError as refused:  # the document does not decode (one field named)
        return EditorOutcome(text=laid_out, errors=(_field_error(refused.message, where),))
    except CatalogDocumentInvalid as invalid:  # the rules' problems, each with its path
        errors = tuple(_field_error(problem, where) for problem in invalid.errors)
        return EditorOutcome(text=laid_out, errors=errors)
    return EditorOutcome(text=catalog_text(catalog), catalog=catalog)
