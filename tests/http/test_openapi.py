"""Our generated OpenAPI document against tanso-openapi.json for the 14 operations (API-20).

Paths, methods, operationIds, parameters, status codes, request bodies and the property names
of every response object are compared after resolving $refs in both documents. Where we differ
on purpose, the difference is listed here with the rule that allows it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.http.conftest import served_in_memory

# A copy of the contract (shared/spec/tanso-openapi.json beside the repository), kept in the
# repository so that a clean clone tests against it with nothing else checked out.
SPEC_PATH = Path(__file__).resolve().parents[1] / "contract" / "tanso-openapi.json"
C = "/api/v1/client"

# API-20, in the spec's order: operationId -> (method, path).
OPERATIONS: dict[str, tuple[str, str]] = {
    "createCustomer": ("post", f"{C}/customers"),
    "getCustomer": ("get", f"{C}/customers/{{externalClientCustomerId}}"),
    "createSubscription": ("post", f"{C}/subscriptions"),
    "cancelSubscription": ("post", f"{C}/subscriptions/cancellation/{{subscriptionId}}"),
    "revertScheduledCancellation": (
        "delete", f"{C}/subscriptions/cancellation/{{subscriptionId}}/scheduled"
    ),
    "changeSubscriptionPlan": ("post", f"{C}/subscriptions/{{subscriptionId}}/plan-change"),
    "cancelScheduledPlanChange": (
        "delete", f"{C}/subscriptions/{{subscriptionId}}/plan-change/scheduled"
    ),
    "listPlans": ("get", f"{C}/plans"),
    "checkEntitlement": ("get", f"{C}/entitlements/{{customerReferenceId}}/{{feature-key}}"),
    "evaluateEntitlement": ("post", f"{C}/entitlements"),
    "ingestEvent": ("post", f"{C}/events"),
    "listCustomerInvoices": ("get", f"{C}/billing/invoices/{{externalClientCustomerId}}"),
    "markInvoicePaid": ("post", f"{C}/billing/invoices/{{invoiceId}}/mark-paid"),
    "createStripeCheckoutSession": (
        "post", f"{C}/billing/invoices/{{invoiceId}}/stripe/checkout"
    ),
}  # fmt: skip

# Operations not served yet. A pending operation may be absent; once present it is checked in
# full like the others. cancelSubscription, revertScheduledCancellation, changeSubscriptionPlan
# and cancelScheduledPlanChange were pending until the subscription-change routes landed;
# they are served now, so their absence is a failure.
PENDING: frozenset[str] = frozenset()

# Client operations we serve beyond the 14: listCreditPools (CRD-51, AMB-47) and the batch
# ingestion extension (issue 6).
EXTRA_CLIENT_OPERATIONS = {
    "listCreditPools": ("get", f"{C}/credits/{{externalClientCustomerId}}/pools"),
    "ingestEventsBatch": ("post", f"{C}/events/batch"),
    # docs/reservations.md (RSV-*)
    "createReservation": ("post", f"{C}/reservations"),
    "getReservation": ("get", f"{C}/reservations/{{reservationId}}"),
    "commitReservation": ("post", f"{C}/reservations/{{reservationId}}/commit"),
    "releaseReservation": ("post", f"{C}/reservations/{{reservationId}}/release"),
    "extendReservation": ("post", f"{C}/reservations/{{reservationId}}/extend"),
    "listCustomerReservations": ("get", f"{C}/customers/{{customerReferenceId}}/reservations"),
    "preflightEntitlements": ("post", f"{C}/entitlements/preflight"),  # RSV-30..RSV-39
}

# Error codes we may declare beyond the spec's (API-9, API-10): validation and state errors
# (400), lookups the spec leaves undeclared (404), duplicates (409).
ADDED_ERROR_CODES = frozenset({"400", "404", "409", "502"})  # 502: Stripe failed (issue 5)

# Documented extensions: properties we accept or return that the spec's schema lacks.
EXTENSIONS: dict[str, frozenset[str]] = {
    "CustomerRequest": frozenset({"customerReferenceId"}),  # CUS-2 alias
    "EventRequest": frozenset({"stripeCustomerId", "revenueAmount", "costInput"}),  # AMB-12
    # CRD-51 ?expand=; RSV-9: what open reservations hold, while they hold something
    "CreditPoolDto": frozenset({"grants", "transactions", "reserved", "available"}),
    "CreditDto": frozenset({"reserved", "available"}),  # RSV-9
    "UsageDto": frozenset({"reserved"}),  # RSV-8
    "EventIngestionResponse": frozenset({"costKnown"}),  # OPS-D5: `false` when unpriced
}
# Properties the spec requires that we accept as optional.
NOT_REQUIRED: dict[str, frozenset[str]] = {
    "EventRequest": frozenset({"eventIdempotencyKey", "occurredAt"}),  # EVT-2, EVT-3
}


# -- documents and $refs ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(SPEC_PATH.read_text())
    return document


@pytest.fixture(scope="module")
def ours(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The served document, read once: it is made from the routes alone. A plain client: the
    document is not an API envelope, and /schema is public."""
    with served_in_memory(tmp_path_factory.mktemp("openapi")) as client:
        response = client.get("/schema/openapi.json")
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def resolve(document: dict[str, Any], node: Any) -> tuple[Any, str | None]:
    """Follow `$ref`s to the node they name; also return the last component name seen."""
    name = None
    for _ in range(32):
        if not (isinstance(node, dict) and "$ref" in node):
            return node, name
        ref = node["$ref"]
        assert isinstance(ref, str) and ref.startswith("#/"), ref
        name = ref.rsplit("/", 1)[-1]
        node = document
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    raise AssertionError(f"$ref loop at {name}")


def schema(document: dict[str, Any], node: Any) -> tuple[dict[str, Any], str | None]:
    """A resolved schema with a `null` alternative removed (our optional fields are
    `oneOf: [X, {type: null}]`; the spec says `nullable: true` or nothing)."""
    node, name = resolve(document, node)
    assert isinstance(node, dict), node
    for key in ("oneOf", "anyOf"):
        options = [o for o in node.get(key, []) if resolve(document, o)[0] != {"type": "null"}]
        if key in node and len(options) == 1:
            inner, inner_name = schema(document, options[0])
            return inner, inner_name or name
    return node, name


def operation(document: dict[str, Any], method: str, path: str) -> dict[str, Any] | None:
    found = document.get("paths", {}).get(path, {}).get(method)
    return found if isinstance(found, dict) else None


def shape_differences(
    spec: dict[str, Any], spec_node: Any, ours: dict[str, Any], our_node: Any, where: str,
    *, request: bool = False, seen: set[tuple[str | None, str | None]] | None = None,
) -> Iterator[str]:  # fmt: skip
    """Where the object trees under two schemas differ in property names (and, for request
    bodies, in required properties), allowing the documented extensions."""
    seen = set() if seen is None else seen
    s, s_name = schema(spec, spec_node)
    o, o_name = schema(ours, our_node)
    if s_name is not None and (s_name, o_name) in seen:
        return
    seen.add((s_name, o_name))
    if s.get("type") == "array" or "items" in s:
        if "items" not in o:
            yield f"{where}: spec has an array, ours {o}"
            return
        yield from shape_differences(
            spec, s["items"], ours, o["items"], f"{where}[]", request=request, seen=seen
        )
        return
    if "properties" not in s:
        return  # a scalar, or a free-form object such as `meta`
    extended = EXTENSIONS.get(s_name or "", frozenset()) | EXTENSIONS.get(o_name or "", frozenset())
    wanted = set(s["properties"]) | extended  # the spec inlines some schemas: ours then names it
    have = set(o.get("properties", {}))
    if wanted != have:
        yield f"{where} ({s_name}/{o_name}): missing {wanted - have}, unexpected {have - wanted}"
    if request:
        required = set(s.get("required", [])) - NOT_REQUIRED.get(s_name or "", frozenset())
        if required != set(o.get("required", [])):
            yield f"{where} ({s_name}): required {sorted(o.get('required', []))}, want {sorted(required)}"
    for prop in sorted(set(s["properties"]) & have):
        yield from shape_differences(
            spec, s["properties"][prop], ours, o["properties"][prop], f"{where}.{prop}",
            request=request, seen=seen,
        )  # fmt: skip


def json_schema_of(document: dict[str, Any], response_or_body: Any) -> Any:
    node, _ = resolve(document, response_or_body)
    content = node.get("content", {})
    assert set(content) == {"application/json"}, content
    return content["application/json"]["schema"]


def parameters(document: dict[str, Any], op: dict[str, Any]) -> set[tuple[str, str, bool]]:
    found = set()
    for raw in op.get("parameters", []):
        param, _ = resolve(document, raw)
        found.add((param["name"], param["in"], bool(param.get("required", False))))
    return found


# -- tests -----------------------------------------------------------------------------------


def test_the_inventory_is_the_spec_s(spec: dict[str, Any]) -> None:
    """The table above is API-20 as the spec has it, `{feature-key}` included."""
    in_spec = {
        op["operationId"]: (method, path)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if isinstance(op, dict) and "operationId" in op
    }
    assert in_spec == OPERATIONS
    assert set(OPERATIONS) >= PENDING


def test_our_client_operations_are_the_14_and_documented_extras(ours: dict[str, Any]) -> None:
    served = {
        op["operationId"]: (method, path)
        for path, item in ours["paths"].items() if path.startswith(f"{C}/")
        for method, op in item.items() if isinstance(op, dict)
    }  # fmt: skip
    expected = {**OPERATIONS, **EXTRA_CLIENT_OPERATIONS}
    assert set(served) - set(expected) == set(), "undocumented client operations"
    missing = set(expected) - set(served) - PENDING
    assert missing == set(), f"operations missing from our document: {missing}"
    for operation_id, where in served.items():
        assert where == expected[operation_id], operation_id


@pytest.mark.parametrize("operation_id", list(OPERATIONS))
def test_operation_matches_the_spec(
    spec: dict[str, Any], ours: dict[str, Any], operation_id: str
) -> None:
    method, path = OPERATIONS[operation_id]
    theirs = operation(spec, method, path)
    assert theirs is not None and theirs["operationId"] == operation_id
    mine = operation(ours, method, path)
    if mine is None:
        assert operation_id in PENDING, f"{method.upper()} {path} is not in our document"
        return
    assert mine.get("operationId") == operation_id
    problems: list[str] = []

    if parameters(spec, theirs) != parameters(ours, mine):
        problems.append(f"parameters {parameters(ours, mine)} != {parameters(spec, theirs)}")

    spec_codes, our_codes = set(theirs["responses"]), set(mine["responses"])
    if not spec_codes <= our_codes:
        problems.append(f"undeclared status codes {spec_codes - our_codes}")
    if not our_codes - spec_codes <= ADDED_ERROR_CODES:
        problems.append(f"unexpected status codes {our_codes - spec_codes - ADDED_ERROR_CODES}")
    for code in sorted(our_codes):
        our_schema = json_schema_of(ours, mine["responses"][code])
        if code in spec_codes:
            spec_schema = json_schema_of(spec, theirs["responses"][code])
        else:  # an added error code: the spec's error envelope
            spec_schema = {"$ref": "#/components/schemas/ApiResponseError"}
        problems += shape_differences(spec, spec_schema, ours, our_schema, f"{code}")

    if ("requestBody" in theirs) != ("requestBody" in mine):
        problems.append(
            f"request body: spec {'requestBody' in theirs}, ours {'requestBody' in mine}"
        )
    elif "requestBody" in theirs:
        spec_body, _ = resolve(spec, theirs["requestBody"])
        our_body, _ = resolve(ours, mine["requestBody"])
        if bool(spec_body.get("required")) != bool(our_body.get("required")):
            problems.append("requestBody.required differs")
        problems += shape_differences(
            spec, json_schema_of(spec, spec_body), ours, json_schema_of(ours, our_body),
            "requestBody", request=True,
        )  # fmt: skip
    assert problems == [], f"{operation_id}: " + "; ".join(problems)


def test_every_error_response_is_the_error_envelope(ours: dict[str, Any]) -> None:
    """API-5 in the document: every 4xx of every route, ours and admin alike, is declared as
    `{success, error: {message, detail}}` and any example in it says `success: false`. The
    OpenMeter routes answer problem+json instead (OM-2, tests/openmeter), the Flexprice routes
    Flexprice's `ErrorResponse` (CN-41, tests/flexprice)."""
    problems = []
    for path, item in ours["paths"].items():
        for method, op in item.items():
            if not isinstance(op, dict) or {"OpenMeter", "Flexprice"} & set(op.get("tags", [])):
                continue
            for code, response in op.get("responses", {}).items():
                if not code.startswith("4"):
                    continue
                node, name = schema(ours, json_schema_of(ours, response))
                error, _ = schema(ours, node.get("properties", {}).get("error", {}))
                if set(node.get("properties", {})) != {"success", "error"} or set(
                    error.get("properties", {})
                ) != {"message", "detail"}:
                    problems.append(f"{method.upper()} {path} {code}: {name} {node}")
                for example in [*node.get("examples", []), node.get("example")]:
                    if example is not None and example.get("success") is not False:
                        problems.append(f"{method.upper()} {path} {code}: example {example}")
    assert problems == []


def test_security_schemes_match(spec: dict[str, Any], ours: dict[str, Any]) -> None:
    """AUTH-2: Bearer or X-API-Key, either alone."""
    keys = ("type", "scheme", "in", "name")
    for name in ("BearerAuth", "ApiKeyAuth"):
        theirs = spec["components"]["securitySchemes"][name]
        mine = ours["components"]["securitySchemes"][name]
        assert {k: mine.get(k) for k in keys} == {k: theirs.get(k) for k in keys}, name
    assert ours["security"] == spec["security"]


def test_the_comparison_catches_a_renamed_property(spec: dict[str, Any]) -> None:
    """The shape check can fail: a schema tree with one property renamed is reported."""
    broken = json.loads(json.dumps(spec))
    props = broken["components"]["schemas"]["EntitlementResponse"]["properties"]
    props["allowed"] = props.pop("isAllowed")
    ref = {"$ref": "#/components/schemas/ApiResponseEntitlementResponse"}
    found = list(shape_differences(spec, ref, broken, ref, "200"))
    assert len(found) == 1 and "200.data " in found[0] and "allowed" in found[0], found
    assert list(shape_differences(spec, ref, spec, ref, "200")) == []
