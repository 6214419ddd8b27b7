"""The catalog document lives at the edge: the domain's rules name fields in domain words, and
the document reports them in its own (issue 11, item 2)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import msgspec
import pytest
from litestar.testing import TestClient

from allotment.domain.catalog_rules import CatalogInvalid, CatalogProblem
from allotment.http import catalog_document
from allotment.http.catalog_document import WIRE_NAMES, ClientPriceTierDto, describe, reported
from allotment.http.fast_path import FastPath
from tests.http.helpers import A, Client, error, plan_doc

SRC = Path(__file__).resolve().parents[2] / "src" / "allotment"


def _path_names_in_rules() -> set[str]:
    """Every field name the rules put in a path: the first element of each 2-tuple of
    strings or (str, name) in domain/catalog_rules.py, and the names passed to `_at`."""
    tree = ast.parse((SRC / "domain" / "catalog_rules.py").read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Tuple) and len(node.elts) == 2:
            first = node.elts[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                names.add(first.value)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "_at":
            second = node.args[1]
            if isinstance(second, ast.Constant) and isinstance(second.value, str):
                names.add(second.value)
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "key":
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                names.add(first.value)
    return names


def test_every_field_the_rules_name_has_a_document_name() -> None:
    names = _path_names_in_rules()
    assert {"price_per_unit", "up_to", "credit_allocations", "features"} <= names
    assert names - set(WIRE_NAMES) == set()


def test_every_document_name_is_a_field_of_the_document() -> None:
    fields: set[str] = set()
    for name in dir(catalog_document):
        value = getattr(catalog_document, name)
        if isinstance(value, type) and issubclass(value, msgspec.Struct):
            fields |= set(value.__struct_fields__)
    fields |= set(ClientPriceTierDto.__struct_fields__)
    assert set(WIRE_NAMES.values()) - fields == set()


def test_problems_are_described_in_the_documents_words() -> None:
    problem = CatalogProblem(
        (("plans", "pro"), ("features", "gb"), ("tiers", 0), ("up_to", None)), "too small"
    )
    assert describe(problem) == "plans[pro].features[gb].tiers[0].upTo: too small"
    assert "up_to" in str(CatalogInvalid([problem]))  # the domain's own message, for logs
    assert reported(CatalogInvalid([problem])).errors == [describe(problem)]


def _code_words(path: Path) -> set[str]:
    """Identifiers and the words of string values in a module; docstrings and comments are
    left out (a comment may explain a mapping the edge does)."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    words: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            words.add(node.id)
        elif isinstance(node, ast.Attribute):
            words.add(node.attr)
        elif isinstance(node, ast.arg | ast.keyword):
            words.add(node.arg or "")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
        ):
            words.update(re.findall(r"\w+", node.value))
    return words


def test_the_domain_holds_no_wire_names() -> None:
    """Issue 11, item 2: no document (camelCase) name is an identifier or a string in
    domain/."""
    camel = {name for name in WIRE_NAMES.values() if name.lower() != name}
    found = {
        f"{path.name}: {word}"
        for path in sorted((SRC / "domain").rglob("*.py"))
        for word in _code_words(path) & camel
    }
    assert found == set()


@pytest.mark.parametrize("up_to", ["-inf", "nan"])
def test_an_up_to_that_is_neither_a_number_nor_inf_is_400(client: Client, up_to: str) -> None:
    """PLN-8, PLN-10: the spelling "inf" is the document's; other non-numbers are refused."""
    tiers = [{"upTo": up_to, "pricePerUnit": 1}, {"upTo": "inf", "pricePerUnit": 1}]
    plan = plan_doc("odd", features=[
        {"featureKey": "storage_gb", "pricingType": "graduated", "tiers": tiers}])  # fmt: skip
    message = error(client.put(f"{A}/catalog", json={"plans": [plan]}), 400)
    assert "plans[odd].features[storage_gb].tiers[0].upTo" in message


def test_openapi_documents_up_to_as_a_number_or_inf(app: FastPath) -> None:
    """PLN-8: the one tier definition is documented as the contract has it."""
    with TestClient(app, base_url="http://testserver.local") as plain:  # not an API envelope
        schemas = plain.get("/schema/openapi.json").json()["components"]["schemas"]
    up_to = schemas["ClientPriceTierDto"]["properties"]["upTo"]
    assert up_to["oneOf"] == [{"type": "number"}, {"type": "string", "enum": ["inf"]}]
    assert up_to["example"] == 100  # with the contract's words (OPS-D2)
    assert "TierDoc" not in schemas
