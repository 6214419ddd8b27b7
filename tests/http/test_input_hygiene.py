"""Input hygiene at the edge (issue 13, item 8; docs/deploy.md OPS-K9..OPS-K11): bodies
must be JSON, new customers' reference ids obey one character set, and decimals are bounded
in both directions.

Before: JSON sent as text/plain, a form or XML was accepted; customers `a/b`, `.` and `..`
could be created but never fetched; an admin grant of `1E-999999999` was a grant of 0.
"""

from __future__ import annotations

import pytest

from tests.http.helpers import A, C, Client, create_customer, error, get_customer, ok

CUSTOMER = {"firstName": "A", "lastName": "B", "email": "a@b.co"}
JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
def test_a_body_that_is_not_json_is_415_on_every_json_route(
    client: Client, content_type: str | None
) -> None:
    """OPS-K9, on one route of each kind; nothing is created."""
    headers = {"content-type": content_type} if content_type else {}
    body = b'{"customerReferenceId":"ct","firstName":"A","lastName":"B","email":"a@b.co"}'
    sent = content_type or "no Content-Type"
    for path in (f"{C}/customers", f"{C}/entitlements", f"{C}/events/batch", f"{A}/catalog"):
        method = "PUT" if path.endswith("catalog") else "POST"
        response = client.request(method, path, content=body, headers=headers)
        message = error(response, 415)
        assert message == f"Unsupported media type: send the body as application/json (got {sent})."
    assert error(client.get(f"{C}/customers/ct"), 404)


def test_json_with_a_charset_is_json_and_an_empty_body_is_judged_by_the_route(
    client: Client,
) -> None:
    body = b'{"customerReferenceId":"cs","firstName":"A","lastName":"B","email":"a@b.co"}'
    headers = {"content-type": "application/json; charset=utf-8"}
    assert ok(client.post(f"{C}/customers", content=body, headers=headers), 201) is None
    assert error(client.post(f"{C}/customers"), 400) == "Request body is required."


@pytest.mark.parametrize(
    "ref", ["a/b", ".", "..", "a b", "ü", "a?b", "a#b", "a%2Fb", "x" * 256, ""]
)
def test_a_reference_id_outside_the_character_set_is_refused_at_creation(
    client: Client, ref: str
) -> None:
    """OPS-K11: on createCustomer (either field name) and on an event that would auto-create
    the customer, a 400 naming the field; no customer and no feature is created."""
    for field in ("externalClientCustomerId", "customerReferenceId"):
        message = error(client.post(f"{C}/customers", json={**CUSTOMER, field: ref}), 400)
        assert message.startswith(f"Invalid field '{field}': "), message
    event = {"eventName": "e", "eventIdempotencyKey": "k", "customerReferenceId": ref,
             "featureKey": "brand_new_feature"}  # fmt: skip
    message = error(client.post(f"{C}/events", json=event), 400)
    assert message.startswith("Invalid field 'customerReferenceId': "), message
    plans_features = str(ok(client.get(f"{A}/catalog"))["features"])
    assert "brand_new_feature" not in plans_features


def test_every_character_of_the_set_makes_a_fetchable_customer(client: Client) -> None:
    """OPS-K11: what is accepted can be read back by the same id in the URL path."""
    for ref in ("user_456", "Acme-Corp.eu:team@42", "...", ".a", "x" * 255):
        create_customer(client, ref)
        assert get_customer(client, ref)["externalClientCustomerId"] == ref


@pytest.mark.parametrize(
    ("number", "field"),
    [
        ("1E-999999999", "amount"),
        ("1E+999999999", "amount"),
        ("0.0000000000000000001", "amount"),
        ("1234567890123456789", "amount"),
    ],
)
def test_a_decimal_out_of_range_is_400_naming_the_field(
    client: Client, number: str, field: str
) -> None:
    """OPS-K10: at most 18 digits before and after the point, whatever the notation."""
    create_customer(client, "dec")
    body = ('{"customerReferenceId":"dec","denomination":"TOKENS","source":"PURCHASE",'
            f'"amount":{number}}}').encode()  # fmt: skip
    message = error(client.post(f"{A}/credits/grants", content=body, headers=JSON), 400)
    assert message == (
        f"Invalid field '{field}': at most 18 digits before and 18 after the decimal point."
    )


def test_decimals_are_bounded_in_nested_fields_and_in_range_exponents_pass(
    client: Client,
) -> None:
    """OPS-K10 on an event, an evaluation's `track` and a catalog plan; `1.5e3` and a value
    with trailing zeros are in range."""
    create_customer(client, "dec")
    event = (b'{"eventName":"api_calls","customerReferenceId":"dec","eventIdempotencyKey":"%s",'
             b'"usageUnits":%s}')  # fmt: skip
    assert "'usageUnits'" in error(client.post(f"{C}/events", content=event % (b"a", b"1e-30"),
                                               headers=JSON), 400)  # fmt: skip
    assert client.post(f"{C}/events", content=event % (b"b", b"1.5e3"), headers=JSON).is_success
    trailing = b"2.500000000000000000000000"
    assert client.post(f"{C}/events", content=event % (b"c", trailing), headers=JSON).is_success
    evaluation = (b'{"customerReferenceId":"dec","featureKey":"api_calls",'
                  b'"track":{"usageUnits":1E-20}}')  # fmt: skip
    message = error(client.post(f"{C}/entitlements", content=evaluation, headers=JSON), 400)
    assert message.startswith("Invalid field 'track.usageUnits': ")
    plan = (b'{"plans":[{"key":"p","name":"P","priceAmount":1E-50,"currency":"USD",'
            b'"intervalMonths":1,"billingTiming":"IN_ARREARS"}]}')  # fmt: skip
    message = error(client.put(f"{A}/catalog", content=plan, headers=JSON), 400)
    assert message.startswith("Invalid field 'plans[0].priceAmount': ")
