"""Fuzz every route under /api/v1/client and /api/v1/admin (API-3..API-6, API-9..API-11, AUTH-7).

Routes come from the app's route table, so a new route is fuzzed without touching this file.
For every response: never 5xx, a JSON envelope with a boolean `success`, `error.message` on
failures, and no `null` anywhere. A rejected request (4xx) changes no state.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.di import Provide
from litestar.routes import HTTPRoute

from allotment.http.fast_path import FastPath
from tests.conftest import KEY
from tests.http.helpers import A, C, Client, event, paid_subscriber

PREFIXES = (C, A)
REF = "fuzz_customer"
# Fresh examples every run; these counts keep the three of them near 30 s of a slow CI machine.
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PATHS = settings(FUZZ, max_examples=40)
STATE = settings(FUZZ, max_examples=12)


# -- the route table -------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    method: str
    template: str  # e.g. /api/v1/client/customers/{externalClientCustomerId}
    params: tuple[str, ...]
    body_type: type[Any] | None  # what `documents_body` declares, when the route takes a body
    operation_id: str

    def url(self, values: dict[str, str]) -> str:
        return re.sub(r"\{([^}]+)\}", lambda m: values[m.group(1)], self.template)


def operations(app: FastPath) -> list[Operation]:
    found = []
    for route in app.litestar.routes:
        if not isinstance(route, HTTPRoute) or not route.path.startswith(PREFIXES):
            continue
        for handler in route.route_handlers:
            for method in sorted(handler.http_methods - {"OPTIONS", "HEAD"}):
                provide = (handler.dependencies or {}).get("request_body_schema")
                body_type = (
                    provide.dependency.__annotations__["data"]
                    if isinstance(provide, Provide)
                    else None
                )
                found.append(
                    Operation(
                        method=method, template=route.path_format,
                        params=tuple(route.path_parameters), body_type=body_type,
                        operation_id=str(handler.operation_id),
                    )
                )  # fmt: skip
    return found


def body_fields(body_type: type[Any] | None) -> list[str]:
    if body_type is None or not issubclass(body_type, msgspec.Struct):
        return []
    return [field.encode_name for field in msgspec.structs.fields(body_type)]


def _open(info: msgspec.inspect.Type, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    if isinstance(info, msgspec.inspect.Metadata):
        yield from _open(info.type, path)
    elif isinstance(info, msgspec.inspect.UnionType):
        for member in info.types:
            yield from _open(member, path)
    elif isinstance(info, msgspec.inspect.AnyType | msgspec.inspect.DictType):
        yield path
    elif isinstance(info, msgspec.inspect.StructType):
        for field in info.fields:
            yield from _open(field.type, (*path, field.encode_name))


def open_paths(body_type: type[Any] | None) -> list[tuple[str, ...]]:
    """Paths of body fields that take arbitrary JSON (`meta`, `track.meta`, ...): where deep
    nesting gets past the schema and into the decoder's recursion."""
    if not body_fields(body_type):
        return []
    return sorted(set(_open(msgspec.inspect.type_info(body_type), ())))


def set_path(body: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for name in path[:-1]:
        inner = body.get(name)
        body[name] = inner = dict(inner) if isinstance(inner, dict) else {}
        body = inner
    body[path[-1]] = value


# -- the invariants --------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-JSON constant {name}")


def nulls(value: Any, path: str = "$") -> Iterator[str]:
    if value is None:
        yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from nulls(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from nulls(item, f"{path}[{index}]")


def assert_envelope(status: int, content: bytes, what: str) -> dict[str, Any]:
    assert status < 500, f"{what} -> {status}: {content[:300]!r}"
    try:
        body = json.loads(content, parse_constant=_reject_constant)
    except ValueError as error:
        raise AssertionError(f"{what} -> {status}: body is not JSON: {content[:300]!r}") from error
    assert isinstance(body, dict), f"{what} -> {status}: {body!r}"
    assert isinstance(body.get("success"), bool), f"{what} -> {status}: {body!r}"
    found = list(nulls(body))
    assert not found, f"{what} -> {status}: null at {found}"
    if status >= 400:
        assert body["success"] is False, f"{what} -> {status}: {body!r}"
        assert "data" not in body, f"{what} -> {status}: {body!r}"
        failure = body.get("error")
        assert isinstance(failure, dict), f"{what} -> {status}: {body!r}"
        assert isinstance(failure.get("message"), str), f"{what} -> {status}: {body!r}"
        assert failure["message"].strip(), f"{what} -> {status}: {body!r}"
    else:
        assert body["success"] is True, f"{what} -> {status}: {body!r}"
        assert "error" not in body, f"{what} -> {status}: {body!r}"
    return body


@dataclass(frozen=True)
class Call:
    method: str
    url: str
    content: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()

    def send(self, client: Client) -> tuple[int, bytes]:
        headers = {b"content-type": b"application/json"}
        headers.update((name.lower().encode(), value) for name, value in self.headers)
        response = client.request(self.method, self.url, content=self.content, headers=headers)
        what = f"{self.method} {self.url[:200]} body={(self.content or b'')[:200]!r}"
        assert_envelope(response.status_code, response.content, what)
        return response.status_code, response.content


# -- the prepared customer -------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    subscription_id: str
    invoice_id: str
    plan_id: str
    catalog: dict[str, Any]


def prepare(client: Client) -> Prepared:
    data = paid_subscriber(client, REF, "pro_monthly")
    assert event(client, REF, "fuzz-e1", usageUnits=3).status_code == 201
    catalog = client.get(f"{A}/catalog").json()["data"]
    return Prepared(
        subscription_id=data["subscription"]["id"], invoice_id=data["invoice"]["id"],
        plan_id=data["subscription"]["plan"]["id"], catalog=catalog,
    )  # fmt: skip


def snapshot(client: Client) -> list[bytes]:
    """Everything a client or admin can read about the prepared customer, byte for byte."""
    urls = [
        f"{C}/customers/{REF}", f"{C}/billing/invoices/{REF}",
        f"{C}/credits/{REF}/pools?expand=grants,transactions",
        f"{C}/entitlements/{REF}/api_calls", f"{C}/entitlements/{REF}/ai_chat",
        f"{C}/entitlements/{REF}/seats", f"{A}/catalog", f"{A}/clock",
    ]  # fmt: skip
    pages = []
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, (url, response.text)
        pages.append(response.content)
    return pages


def base_body(op: Operation, prepared: Prepared) -> dict[str, Any]:
    """A plausible body for `op` against the prepared customer; {} for an unknown route."""
    bases: dict[str, dict[str, Any]] = {
        "createCustomer": {"externalClientCustomerId": REF, "firstName": "Jane",
                           "lastName": "Smith", "email": "jane@example.com"},
        "createSubscription": {"customerReferenceId": REF, "planId": prepared.plan_id},
        "evaluateEntitlement": {"customerReferenceId": REF, "featureKey": "api_calls",
                                "track": {"usageUnits": 1, "eventName": "api_calls"},
                                "context": {"flowId": "f1", "idempotencyKey": "i1"}},
        "ingestEvent": {"eventName": "api_calls", "customerReferenceId": REF,
                        "eventIdempotencyKey": "fuzz-e1", "usageUnits": 1, "meta": {"a": 1}},
        "grantCredits": {"customerReferenceId": REF, "denomination": "TOKENS", "amount": 10,
                         "source": "MANUAL"},
        "advanceClock": {"seconds": 0},
        "upsertCatalog": prepared.catalog,
    }  # fmt: skip
    return json.loads(json.dumps(bases.get(op.operation_id, {})))  # type: ignore[no-any-return]


# -- strategies ------------------------------------------------------------------------------


class RawJson(str):
    """Text spliced verbatim into a JSON document: numbers and escapes json.dumps never makes."""


def encoded(value: Any) -> bytes:
    """`dump` as bytes; a surrogate escape such as "\\udcff" becomes the invalid byte 0xFF."""
    return dump(value).encode("utf-8", "surrogateescape")


INVALID_UTF8 = RawJson('"\udcff\udcfe"')  # a JSON string holding the bytes FF FE


def dump(value: Any) -> str:
    if isinstance(value, RawJson):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dump(v) for v in value) + "]"
    return json.dumps(value)


HUGE = "x" * 120_000
DEEP_ARRAY = "[" * 10_000 + "]" * 10_000
DEEP_OBJECT = '{"a":' * 10_000 + "1" + "}" * 10_000


def nested(depth: int, leaf: str = "1") -> RawJson:
    return RawJson('{"a":' * depth + leaf + "}" * depth)


raw_numbers = st.builds(
    lambda sign, digits, frac, exp: RawJson(f"{sign}{digits}{frac}{exp}"),
    st.sampled_from(["", "-"]),
    st.from_regex(r"\A(0|[1-9][0-9]{0,40})\Z"),
    st.sampled_from(["", ".0", ".5", ".000001", ".12345678901234567890"]),
    st.one_of(st.just(""), st.integers(-(10**10), 10**10).map(lambda e: f"e{e}")),
)
odd_strings = st.sampled_from(
    ["", " ", "\t", "inf", "-inf", "NaN", "Infinity", "-1", "0", "1e400", "null", "true",
     "2025-13-45T00:00:00Z", "2025-01-15T00:00:00", "9999-12-31T23:59:59Z",
     "0001-01-01T00:00:00Z", "00000000-0000-0000-0000-000000000000", str(uuid.uuid4()),
     "\u0000", "é" * 300, "\U0001f600" * 200, "x" * 256, HUGE, "a@b", "PURCHASE", "MANUAL"]
)  # fmt: skip
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40), odd_strings,
    raw_numbers, st.sampled_from([RawJson('"\\ud800"'), RawJson('"\\udfff\\ud800"')]),
    st.sampled_from([INVALID_UTF8, RawJson('"caf\udcc3"')]),
)  # fmt: skip
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=12), children, max_size=4),
    ),
    max_leaves=12,
)
DEPTHS = (64, 500, 900, 999, 1_000, 1_001, 1_500, 10_000)
deep_values = st.one_of(
    st.sampled_from(DEPTHS).map(nested),
    st.sampled_from(DEPTHS).map(lambda d: RawJson("[" * d + "]" * d)),
)
junk_bodies = st.one_of(
    st.binary(max_size=200),
    st.sampled_from(
        [b"", b" ", b"null", b"{", b"}", b"[]", b"{}", b'{"a":1,}', b"\xff\xfe\x00{",
         b'{"eventName":"\xff\xfe"}', b"NaN", b"Infinity", b'{"a":NaN}', b"\x00" * 64,
         DEEP_ARRAY.encode(), DEEP_OBJECT.encode(), b"{" * 10_000, b'"' + HUGE.encode() + b'"',
         b"[" + b"1," * 60_000 + b"1]", b"x" * 1_100_000]
    ),
)  # fmt: skip


@st.composite
def bodies(draw: st.DrawFn, op: Operation, prepared: Prepared) -> bytes:
    """Random JSON, junk bytes, or the base body as is or with one field broken."""
    kinds = ["random", "junk", "field", "field", "field", "drop", "extra", "deep", "deep", "valid"]
    kind = draw(st.sampled_from(kinds))
    if kind == "random":
        return encoded(draw(st.one_of(json_values, deep_values)))
    if kind == "junk":
        return draw(junk_bodies)
    body = base_body(op, prepared)
    if "eventIdempotencyKey" in body:  # a fresh key reaches the domain; "fuzz-e1" is a duplicate
        body["eventIdempotencyKey"] = draw(st.just("fuzz-e1") | st.uuids().map(str))
    if kind == "valid":
        return encoded(body)
    fields = body_fields(op.body_type) or sorted(body) or ["field"]
    name = draw(st.sampled_from(fields))
    if kind == "deep":
        path = draw(st.sampled_from(open_paths(op.body_type) or [(name,)]))
        set_path(body, path, draw(deep_values))
    elif kind == "drop":
        body.pop(name, None)
    elif kind == "extra":
        body[draw(st.text(min_size=1, max_size=20))] = draw(json_values)
    else:
        value = draw(st.one_of(json_values, json_values, deep_values))
        if isinstance(body.get(name), dict) and draw(st.booleans()):
            inner = draw(st.sampled_from([*body[name], "unknownField"]))
            body[name] = {**body[name], inner: value}
        else:
            body[name] = value
    return encoded(body)


segments = st.one_of(
    st.text(max_size=30).map(lambda s: quote(s, safe="")),
    st.binary(min_size=1, max_size=30).map(lambda b: "".join(f"%{x:02X}" for x in b)),
    st.sampled_from(
        ["%", "%zz", "%ff", "%FF%FE", "%00", "%2F", "%2e%2e", "%C0%AF", "%ED%A0%80", "..", ".",
         "~", "not-a-uuid", str(uuid.uuid4()), "00000000-0000-0000-0000-000000000000",
         "x" * 256, "x" * 20_000, quote("é" * 300), REF, "api_calls"]
    ),
)  # fmt: skip
queries = st.one_of(
    st.just(""),
    st.dictionaries(
        st.sampled_from(["expand", "cancelMode", "limit", "", "x"]) | st.text(max_size=8),
        st.text(max_size=30) | st.sampled_from(["grants", "transactions,grants", "IMMEDIATE",
                                                 ",,,", "grants,bogus", "x" * 5000]),
        max_size=3,
    ).map(lambda q: "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in q.items())),
    st.sampled_from(["%", "%zz&%ff=%fe", "a=b=c", "&&&", "expand", "expand=%00"]),
)  # fmt: skip
header_values = st.one_of(
    st.text(max_size=40).map(lambda s: s.encode("utf-8")),
    st.binary(max_size=40),
    st.sampled_from([b"", b" ", b"\t", b"x" * 255, b"x" * 256, b"y" * 100_000, b"\xff\xfe",
                     b"fuzz-e1", "é".encode(), b"  fuzz-e1  "]),
).map(lambda b: bytes(c for c in b if c not in b"\r\n\x00"))  # fmt: skip
header_names = st.sampled_from(
    ["X-Idempotency-Key", "X-Idempotency-Key", "Content-Type", "Accept", "X-Custom"]
)


def path_values(op: Operation, prepared: Prepared) -> st.SearchStrategy[dict[str, str]]:
    known = st.sampled_from(
        [REF, prepared.invoice_id, prepared.subscription_id, "api_calls", "seats"]
    )
    return st.fixed_dictionaries({name: st.one_of(segments, known) for name in op.params})


@st.composite
def calls(draw: st.DrawFn, ops: list[Operation], prepared: Prepared) -> Call:
    op = draw(st.sampled_from(ops))
    method = draw(st.sampled_from([op.method] * 6 + ["GET", "POST", "PUT", "PATCH", "DELETE"]))
    url = op.url(draw(path_values(op, prepared)))
    query = draw(queries)
    if query:
        url = f"{url}?{query}"
    content = draw(bodies(op, prepared)) if method != "GET" else None
    headers = tuple(draw(st.lists(st.tuples(header_names, header_values), max_size=2)))
    headers = tuple((n, v) for n, v in headers if n != "Content-Type" or draw(st.booleans()))
    return Call(method=method, url=url, content=content, headers=headers)


# -- tests -----------------------------------------------------------------------------------


@pytest.fixture
def ops(app: FastPath) -> list[Operation]:
    return operations(app)


@pytest.fixture
def prepared(client: Client) -> Prepared:
    return prepare(client)


def test_route_table_covers_client_and_admin_routes(ops: list[Operation]) -> None:
    ids = {op.operation_id for op in ops}
    assert {"createCustomer", "getCustomer", "createSubscription", "listPlans",
            "checkEntitlement", "evaluateEntitlement", "ingestEvent", "listCustomerInvoices",
            "markInvoicePaid", "createStripeCheckoutSession", "upsertCatalog",
            "advanceClock"} <= ids  # fmt: skip
    assert all(op.template.startswith(PREFIXES) for op in ops)
    with_body = {op.operation_id for op in ops if body_fields(op.body_type)}
    assert {"createCustomer", "ingestEvent", "evaluateEntitlement", "upsertCatalog"} <= with_body


# The fuzzers run in memory only: on the durable path most of their time goes to the analytics
# worker processes that fuzzed POST /admin/snapshots start (about 1 s each). Every other HTTP
# test runs on the durable path and through the queued shard too.
MEMORY_ONLY = pytest.mark.parametrize("system", ["memory"], indirect=True)


@MEMORY_ONLY
@FUZZ
@given(data=st.data())
def test_fuzzed_bodies_get_the_envelope(
    client: Client, ops: list[Operation], prepared: Prepared, data: st.DataObject
) -> None:
    for op in ops:  # every route gets max_examples bodies
        if op.method == "GET":
            continue
        values = {name: data.draw(st.sampled_from([REF, prepared.invoice_id]))
                  for name in op.params}  # fmt: skip
        Call(op.method, op.url(values), data.draw(bodies(op, prepared))).send(client)


@MEMORY_ONLY
@PATHS
@given(data=st.data())
def test_fuzzed_paths_queries_and_headers_get_the_envelope(
    client: Client, ops: list[Operation], prepared: Prepared, data: st.DataObject
) -> None:
    for op in ops:
        data.draw(calls([op], prepared)).send(client)


@FUZZ
@given(data=st.data())
def test_unauthenticated_fuzz_is_always_401(
    client: Client, ops: list[Operation], prepared: Prepared, data: st.DataObject
) -> None:
    """AUTH-7: authentication comes before validation and lookup, whatever the request."""
    op = data.draw(st.sampled_from(ops))
    values = {name: data.draw(st.sampled_from([REF, prepared.invoice_id, "not-a-uuid"]))
              for name in op.params}  # fmt: skip
    content = data.draw(bodies(op, prepared)) if op.method != "GET" else None
    auth = data.draw(st.sampled_from([b"", b"Bearer", b"Bearer ", b"Basic " + KEY.encode(),
                                      b"Bearer sk_test_nope", b"Bearer " + KEY.encode() + b"x",
                                      b"bearer  " + KEY[:-1].encode(), b"\xff\xfe"]))  # fmt: skip
    call = Call(op.method, op.url(values), content, (("Authorization", auth),))
    status, _ = call.send(client)
    assert status == 401, call


@MEMORY_ONLY
@STATE
@given(data=st.data())
def test_rejected_requests_change_no_state(
    client: Client, ops: list[Operation], prepared: Prepared, data: st.DataObject
) -> None:
    """A batch of bad requests against the prepared customer, one per route in random order:
    every 4xx leaves what can be read about it (getCustomer, invoices, pools, usage, catalog,
    clock) byte-identical. A 2xx may change state; the next comparison starts from there."""
    batch = [data.draw(calls([op], prepared)) for op in data.draw(st.permutations(ops))]
    before = snapshot(client)
    for call in batch:
        status, _ = call.send(client)
        after = snapshot(client)
        if 400 <= status < 500:
            assert after == before, f"{call} -> {status} changed state"
        before = after


def test_a_batch_of_known_bad_requests_changes_nothing(client: Client, prepared: Prepared) -> None:
    """The deterministic companion of the property above: every request here must be 400."""
    ingest = {"eventName": "api_calls", "customerReferenceId": REF, "eventIdempotencyKey": "b1"}
    bad: list[tuple[str, str, Any]] = [
        ("POST", f"{C}/events", {**ingest, "usageUnits": -1}),
        ("POST", f"{C}/events", {**ingest, "usageUnits": "many"}),
        ("POST", f"{C}/events", {**ingest, "meta": {"k": "v" * 20_000}}),
        ("POST", f"{C}/events", {**ingest, "unknown": 1}),
        ("POST", f"{C}/events", {**ingest, "occurredAt": "yesterday"}),
        ("POST", f"{C}/events", {**ingest, "customerId": prepared.invoice_id}),
        ("POST", f"{C}/events", dump({**ingest, "meta": nested(2_000)})),
        ("POST", f"{C}/events", DEEP_OBJECT),
        ("POST", f"{C}/events", "{"),
        ("POST", f"{C}/entitlements", {"customerReferenceId": REF, "featureKey": "api_calls",
                                       "track": {"usageUnits": 0}}),
        ("POST", f"{C}/subscriptions", {"customerReferenceId": REF, "planId": "nope"}),
        ("POST", f"{C}/customers", {"externalClientCustomerId": REF, "firstName": "",
                                    "lastName": "S", "email": "x"}),
        ("POST", f"{C}/billing/invoices/not-a-uuid/mark-paid", None),
        ("POST", f"{A}/credits/grants", {"customerReferenceId": REF, "denomination": "TOKENS",
                                         "amount": -5, "source": "MANUAL"}),
        ("POST", f"{A}/credits/grants", {"customerReferenceId": REF, "denomination": "TOKENS",
                                         "amount": "1e400", "source": "MANUAL"}),
        ("POST", f"{A}/clock/advance", {"seconds": -1}),
        ("PUT", f"{A}/catalog", {**prepared.catalog, "plans": "none"}),
        ("GET", f"{C}/credits/{REF}/pools?expand=everything", None),
    ]  # fmt: skip
    before = snapshot(client)
    for method, url, body in bad:
        content = body.encode() if isinstance(body, str) else None
        response = client.request(
            method,
            url,
            content=content,
            json=body if not isinstance(body, str) else None,
            headers={"content-type": "application/json"},  # the JSON is what is malformed
        )
        assert_envelope(response.status_code, response.content, f"{method} {url} {body!r:.200}")
        assert response.status_code == 400, (method, url, response.text)
    assert snapshot(client) == before


def test_invalid_utf8_in_every_field(
    client: Client, ops: list[Operation], prepared: Prepared
) -> None:
    """A string of invalid UTF-8 in each top-level field of each body: 400, never 500."""
    sent = 0
    for op in ops:
        for name in body_fields(op.body_type):
            body = base_body(op, prepared)
            body[name] = INVALID_UTF8
            values = {param: REF for param in op.params}
            status, _ = Call(op.method, op.url(values), encoded(body)).send(client)
            assert status == 400, (op.operation_id, name, status)
            sent += 1
    assert sent >= 30


@pytest.mark.parametrize("depth", DEPTHS)
def test_deep_nesting_in_every_open_field(
    client: Client, ops: list[Operation], prepared: Prepared, depth: int
) -> None:
    """Every field that takes arbitrary JSON, on every route, nested `depth` levels deep."""
    targets = [(op, path) for op in ops for path in open_paths(op.body_type)]
    assert {(op.operation_id, path) for op, path in targets} >= {
        ("ingestEvent", ("meta",)),
        ("evaluateEntitlement", ("track", "meta")),
    }
    for op, path in targets:
        for leaf in (nested(depth), RawJson("[" * depth + "]" * depth)):
            body = base_body(op, prepared)
            set_path(body, path, leaf)
            values = {name: REF for name in op.params}
            Call(op.method, op.url(values), dump(body).encode()).send(client)


def _check(assertion: Callable[[], object]) -> bool:
    try:
        assertion()
    except AssertionError:
        return True
    return False


def test_the_envelope_check_rejects_what_it_should() -> None:
    """The oracle itself can fail: nulls, 5xx, non-JSON, missing messages are all caught."""
    assert _check(lambda: assert_envelope(500, b'{"success":false,"error":{"message":"x"}}', ""))
    assert _check(lambda: assert_envelope(200, b'{"success":true,"data":{"a":null}}', ""))
    assert _check(lambda: assert_envelope(404, b'{"success":false,"error":{"message":""}}', ""))
    assert _check(lambda: assert_envelope(400, b'{"success":true}', ""))
    assert _check(lambda: assert_envelope(200, b"not json", ""))
    assert _check(lambda: assert_envelope(200, b'{"success":"true"}', ""))
    assert _check(lambda: assert_envelope(200, b'{"success":true,"data":NaN}', ""))
    assert not _check(lambda: assert_envelope(201, b'{"success":true,"data":[]}', ""))
