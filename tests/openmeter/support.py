"""What the OpenMeter tests share: a real server driven by the official `openmeter` client
(unchanged, Bearer auth with an allotment key), raw httpx for the Tanso side, and helpers
that read a refused request's problem+json."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from corehttp.exceptions import HttpResponseError

from openmeter import Client
from openmeter import models as m
from tests.reliability.server import KEY, Server

__all__ = ("A", "C", "Problem", "om_client", "refused", "running_server", "tanso")

C = "/api/v1/client"
A = "/api/v1/admin"
HEADERS = {"Authorization": f"Bearer {KEY}"}


@contextmanager
def running_server(data_dir: Path, shards: int = 1) -> Iterator[Server]:
    server = Server(data_dir, shards=shards)
    try:
        yield server
    finally:
        server.kill()


def om_client(server: Server) -> Client:
    return Client(endpoint=server.url, token=KEY)


def tanso(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers=HEADERS, timeout=30)


class Problem:
    """A refused request as the client saw it."""

    def __init__(self, error: HttpResponseError) -> None:
        response: Any = error.response  # corehttp's HttpResponse: headers and json()
        assert response is not None
        self.status = response.status_code
        self.content_type = response.headers.get("content-type", "")
        self.body: dict[str, Any] = response.json()

    @property
    def fields(self) -> list[str]:
        errors = self.body.get("extensions", {}).get("validationErrors", [])
        return [e["field"] for e in errors]


def refused(call: Callable[[], Any]) -> Problem:
    """The problem `call` was refused with; fails when it succeeded."""
    try:
        call()
    except HttpResponseError as error:
        problem = Problem(error)
        assert problem.content_type == "application/problem+json", problem.content_type
        assert problem.body["status"] == problem.status
        assert {"type", "title", "detail", "instance"} <= set(problem.body)
        return problem
    raise AssertionError("the request was accepted")


def used(http: httpx.Client, customer: str, feature: str) -> float:
    response = http.get(f"{C}/entitlements/{customer}/{feature}")
    assert response.status_code == 200, response.text
    used: float = response.json()["data"]["usage"]["used"]
    return used


def metered_customer(om: Client, http: httpx.Client, name: str) -> None:
    """Meters `<name>_calls` (COUNT of type `<name>.api`) and `<name>_tokens` (SUM of
    `$.tokens` of type `<name>.llm`, grouped by model); features counting them, the tokens
    one for model `big` only; a plan linking both; customer `<name>` with subject
    `<name>-subject`, subscribed."""
    om.meters.create(m.MeterCreate(slug=f"{name}_calls", aggregation="COUNT",
                                   event_type=f"{name}.api"))  # fmt: skip
    om.meters.create(m.MeterCreate(slug=f"{name}_tokens", aggregation="SUM",
                                   event_type=f"{name}.llm", value_property="$.tokens",
                                   group_by={"model": "$.model"}))  # fmt: skip
    om.features.create(m.FeatureCreateInputs(key=f"{name}_calls", name="Calls",
                                             meter_slug=f"{name}_calls"))  # fmt: skip
    om.features.create(m.FeatureCreateInputs(key=f"{name}_tokens", name="Tokens",
                                             meter_slug=f"{name}_tokens",
                                             meter_group_by_filters={"model": "big"}))  # fmt: skip
    links = [{"featureKey": f"{name}_{f}", "pricingType": "usage_based", "pricePerUnit": 0,
              "maxUsage": 1_000_000} for f in ("calls", "tokens")]  # fmt: skip
    plan = {"key": f"{name}_plan", "name": "Plan", "priceAmount": 0, "currency": "USD",
            "intervalMonths": 1, "billingTiming": "IN_ARREARS", "features": links}  # fmt: skip
    assert http.put(f"{A}/catalog", json={"plans": [plan]}).status_code == 200
    om.customers.create(m.CustomerCreate(name=name, key=name, usage_attribution=m.CustomerUsageAttribution(subject_keys=[f"{name}-subject"])))  # fmt: skip
    plans = http.get(f"{C}/plans").json()["data"]
    plan_id = next(p["plan"]["id"] for p in plans if p["plan"]["key"] == f"{name}_plan")
    body = {"customerReferenceId": name, "planId": plan_id}
    assert http.post(f"{C}/subscriptions", json=body).status_code == 201
