"""The OpenAPI document teaches (issue 13 item 4): the 14 Tanso operations carry the
contract's summary, description and examples word for word (OPS-D2), and every operation,
allotment's own included, has a summary, a description, tags and examples (OPS-D3). The page
loads nothing from elsewhere (OPS-D1; the Chromium test is tests/reliability/test_docs_offline).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from importlib.metadata import distribution
from typing import Any

import pytest
from litestar.testing import TestClient

from allotment.config import Settings
from allotment.http.app import create_app
from allotment.http.fast_path import FastPath
from allotment.persistence.keys import KeyStore
from allotment.runtime.clock import ManualClock
from allotment.wiring import build_system
from tests.conftest import START
from tests.http.test_openapi import OPERATIONS, SPEC_PATH, resolve

Document = dict[str, Any]


@pytest.fixture(scope="module")
def plain() -> Iterator[TestClient[FastPath]]:
    """No key: /schema is public."""
    settings = Settings(clock="manual")
    system = build_system(settings, ManualClock(START), persistent=False)
    with TestClient(create_app(settings, system, KeyStore()), base_url="http://t.local") as c:
        yield c


@pytest.fixture(scope="module")
def ours(plain: TestClient[FastPath]) -> Document:
    document: Document = plain.get("/schema/openapi.json").json()
    return document


@pytest.fixture(scope="module")
def spec() -> Document:
    document: Document = json.loads(SPEC_PATH.read_text())
    return document


def _operations(document: Document) -> Iterator[tuple[str, Document]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield f"{method.upper()} {path}", operation


def _examples(node: Document) -> dict[str, Any]:
    content = node.get("content", {}).get("application/json", {})
    return {key: content[key] for key in ("example", "examples") if key in content}


@pytest.mark.parametrize("operation_id", list(OPERATIONS))
def test_a_tanso_operation_says_what_the_contract_says(
    spec: Document, ours: Document, operation_id: str
) -> None:
    """OPS-D2: summary, description, tags, parameter words and examples, request examples,
    and each response's description and examples, as in tests/contract/tanso-openapi.json."""
    method, path = OPERATIONS[operation_id]
    theirs, mine = spec["paths"][path][method], ours["paths"][path][method]
    for key in ("summary", "description", "tags"):
        assert mine[key] == theirs[key], key
    our_parameters = {p["name"]: p for p in mine.get("parameters", [])}
    for raw in theirs.get("parameters", []):
        parameter, _ = resolve(spec, raw)
        words = {k: parameter[k] for k in ("description", "example") if k in parameter}
        assert {k: our_parameters[parameter["name"]].get(k) for k in words} == words
    if "requestBody" in theirs:
        their_body, _ = resolve(spec, theirs["requestBody"])
        assert _examples(mine["requestBody"]) == _examples(their_body)
        assert _examples(their_body), "the contract has a request example"
    for code, raw in theirs["responses"].items():
        response, _ = resolve(spec, raw)
        assert mine["responses"][code]["description"] == response["description"], code
        if _examples(response):  # else a supplement of ours (extensions.toml) may add one
            assert _examples(mine["responses"][code]) == _examples(response), code


def test_every_operation_is_documented_with_examples(ours: Document) -> None:
    """OPS-D3: no operation is left with Litestar's generated summary (its handler's name in
    title case), an empty description, or no example of its body or of a success."""
    assert {tag["name"] for tag in ours["tags"]} >= {"Customers", "Events", "Admin", "Credits"}
    problems = []
    for where, operation in _operations(ours):
        summary = operation.get("summary", "")
        if not summary or re.fullmatch(r"[A-Z][A-Za-z]+", summary):
            problems.append(f"{where}: summary {summary!r}")
        if len(operation.get("description", "")) < 40:
            problems.append(f"{where}: no description")
        if not set(operation.get("tags", [])) - {"Client API"}:
            problems.append(f"{where}: tags {operation.get('tags')}")
        if "requestBody" in operation and not _examples(operation["requestBody"]):
            problems.append(f"{where}: no request example")
        successes = [c for c in operation["responses"] if c.startswith("2")]
        for code in successes:
            if not _examples(operation["responses"][code]):
                problems.append(f"{where}: no example of {code}")
    assert problems == []


def test_extension_examples_have_the_served_shape(ours: Document) -> None:
    """Examples written by hand name only properties the response schema has: they cannot
    teach a field that does not exist (checked one level down, in `data`)."""
    problems = []
    for where, operation in _operations(ours):
        for code, response in operation["responses"].items():
            example = _examples(response).get("example")
            schema = response.get("content", {}).get("application/json", {}).get("schema")
            if not isinstance(example, dict) or schema is None:
                continue
            node, _ = resolve(ours, schema)
            if "properties" in node and not set(example) <= set(node["properties"]):
                problems.append(f"{where} {code}: {set(example) - set(node['properties'])}")
    assert problems == []


def test_the_docs_page_loads_only_this_server_s_files(plain: TestClient[FastPath]) -> None:
    """OPS-D1: every script, stylesheet and icon of /schema/swagger is served here; files of
    the Swagger UI package other than those are not."""
    html = plain.get("/schema/swagger").text
    links = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", html)
    assert len(links) == 4 and all(link.startswith("/schema/swagger/assets/") for link in links)
    for link in links:
        response = plain.get(link)
        assert response.status_code == 200 and len(response.content) > 500, link
    assert plain.get("/schema/swagger/assets/index.html").status_code == 404
    assert plain.get("/schema/swagger/assets/..%2F__init__.py").status_code == 404
    files = distribution("swagger-ui-bundle-v2").files or []  # its licence ships with it
    assert any(str(f).endswith("licenses/LICENSE") for f in files)
