"""What the Flexprice tests share: a real server driven by the official `flexprice` client
(unchanged: `server_url` `http://HOST:PORT/v1`, allotment's key in its `x-api-key` header), raw
httpx for the Tanso side, and a helper reading a refusal as the client raised it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from flexprice.models import errors as flex_errors

from flexprice import Flexprice
from tests.reliability.server import KEY, Server

__all__ = ("C", "Refusal", "customer_with_invoice", "flex_client", "refused", "tanso")

C = "/api/v1/client"


def flex_client(server: Server) -> Flexprice:
    return Flexprice(api_key_auth=KEY, server_url=f"{server.url}/v1")


def tanso(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30)


def customer_with_invoice(http: httpx.Client, ref: str, *, paid: bool = False) -> str:
    """Customer `ref` on the default `pro_monthly` plan: its INITIAL invoice's id (DUE, or PAID
    through mark-paid)."""
    body = {"externalClientCustomerId": ref, "firstName": "Ada", "lastName": ref, "email": "a@b.co"}
    assert http.post(f"{C}/customers", json=body).status_code == 201
    plans = http.get(f"{C}/plans").json()["data"]
    pro = next(p["plan"]["id"] for p in plans if p["plan"]["key"] == "pro_monthly")
    sub = http.post(f"{C}/subscriptions", json={"customerReferenceId": ref, "planId": pro})
    assert sub.status_code == 201, sub.text
    invoice: str = sub.json()["data"]["invoice"]["id"]
    if paid:
        assert http.post(f"{C}/billing/invoices/{invoice}/mark-paid").status_code == 200
    return invoice


class Refusal:
    """A refused request as the official client raised it, and the body on the wire."""

    def __init__(self, response: httpx.Response) -> None:
        self.status = response.status_code
        self.body: dict[str, Any] = response.json()
        assert self.body["http_status_code"] == self.status
        self.code: str = self.body["code"]
        self.message: str = self.body["message"]

    @property
    def field(self) -> str | None:
        field: str | None = self.body.get("details", {}).get("field")
        return field


def refused(call: Callable[[], Any]) -> Refusal:
    """The error the client raised for `call`; fails on success. Where the operation lists
    the status, the client parsed Flexprice's `ErrorResponse` itself: it must agree."""
    try:
        call()
    except flex_errors.FlexpriceError as error:
        raised = error
    else:
        raise AssertionError("the request was accepted")
    refusal = Refusal(raised.raw_response)
    if isinstance(raised, flex_errors.ErrorResponse):
        assert (raised.data.code, raised.data.message) == (refusal.code, refusal.message)
    return refusal
