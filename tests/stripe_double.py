"""A Stripe test double: an HTTP server on 127.0.0.1 implementing only what allotment calls
(customers create, checkout sessions create/retrieve/expire), with Stripe's form-encoded
requests, JSON shapes, error envelope and idempotency keys. The real `stripe` SDK is pointed at
it, so request building, auth headers, idempotency headers and error parsing are all real.

Test-only routes: `POST /_test/sessions/{id}/complete`, `.../complete_unpaid` (a delayed
method), `.../async_succeed`, `.../async_fail` and `.../expire` change a session and deliver a
correctly signed webhook (`checkout.session.completed`, `.async_payment_succeeded`,
`.async_payment_failed`, `.expired`);
`POST /_test/events/{id}/resend` delivers the same event again.

`hold_next(path, reaches=...)` holds the next request to `path` open, so a crash test can kill
the caller at a known point: before the request reached Stripe, or after Stripe acted on it
but before its answer left.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Callable
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import httpx

from tests.waiting import POLL_S

Deliver = Callable[[bytes, dict[str, str]], int]


def parse_form(body: str) -> dict[str, Any]:
    """Stripe's bracket notation (`line_items[0][price_data][currency]=usd`) to nested data."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = key.replace("]", "").split("[")
        node: Any = root
        for part, following in itertools.pairwise(parts):
            container: Any = [] if following.isdigit() else {}
            if isinstance(node, list):
                index = int(part)
                while len(node) <= index:
                    node.append(container)
                node = node[index]
            else:
                node = node.setdefault(part, container)
        last = parts[-1]
        if isinstance(node, list):
            node.append(value)
        else:
            node[last] = value
    return root


class Hold:
    """A request the double holds open (`hold_next`): `arrived` is set once it is in and, if
    it `reaches`, executed and kept for its idempotency key."""

    def __init__(self, reaches: bool, released: threading.Event) -> None:
        self.reaches = reaches
        self.arrived = threading.Event()
        self._released = released

    def wait(self) -> None:
        self.arrived.set()
        self._released.wait()


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    t = timestamp if timestamp is not None else int(time.time())
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


class StripeDouble:
    def __init__(self, api_key: str, webhook_secret: str) -> None:
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self.customers: dict[str, dict[str, Any]] = {}
        self.sessions: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}  # by id; each names its payment intent
        self.events: dict[str, bytes] = {}
        self.requests: list[
            tuple[str, str, dict[str, Any], str | None]
        ] = []  # method, path, params, key
        self.replays: list[tuple[str, str]] = []  # path, key: answered from the key's record
        self.deliver: Deliver | None = None  # set by tests: how webhooks reach allotment
        self.webhook_url: str | None = None  # ... or where to POST them
        self._idempotent: dict[tuple[str, str], tuple[str, int, bytes]] = {}
        self._faults: list[tuple[int, str, str, float]] = []
        self._holds: dict[str, Hold] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._released = threading.Event()  # set at exit: ends every `hang_next`
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        # `shutdown` returns only once the serve loop looks at its flag: at the default 0.5 s
        # a look, every test closing a double waited about that long for nothing.
        serve = partial(self._server.serve_forever, poll_interval=POLL_S)
        self._thread = threading.Thread(target=serve, daemon=True)

    def __enter__(self) -> StripeDouble:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()

    # -- fault injection ---------------------------------------------------------------------

    def fail_next(
        self,
        status: int = 500,
        message: str = "An unknown error occurred",
        type_: str = "api_error",
    ) -> None:
        self._faults.append((status, type_, message, 0.0))

    def delay_next(self, seconds: float) -> None:
        self._faults.append((0, "", "", seconds))

    def hang_next(self) -> None:
        """The next request gets no answer until the double exits: whatever the machine's
        speed, the client's timeout is what ends it."""
        self._faults.append((0, "", "", float("inf")))

    def hold_next(self, path: str, *, reaches: bool) -> Hold:
        """The next request to `path` is held open until the double exits. `reaches=False`:
        it never reached Stripe (not executed, not recorded, never answered). `reaches=True`:
        Stripe executed it and keeps its answer for the idempotency key; the answer waits."""
        hold = Hold(reaches, self._released)
        self._holds[path] = hold
        return hold

    def forget_keys(self) -> None:
        """Stripe prunes idempotency keys once at least 24 hours old: a key used again after
        that makes a new request."""
        with self._lock:
            self._idempotent.clear()

    # -- session lifecycle and webhooks --------------------------------------------------------

    def complete(self, session_id: str, payment_status: str = "paid") -> int:
        session = self.sessions[session_id]
        intent = f"pi_{next(self._ids):020d}"
        session.update(status="complete", payment_status=payment_status, payment_intent=intent)
        return self._emit("checkout.session.completed", session)

    def settle_refund(self, refund_id: str, status: str = "succeeded") -> int:
        """A pending refund settles: `charge.refunded`, the charge listing its refunds."""
        refund = self.refunds[refund_id]
        refund["status"] = status
        mine = [r for r in self.refunds.values() if r["payment_intent"] == refund["payment_intent"]]
        charge = {"id": f"ch_{refund['payment_intent'][3:]}", "object": "charge",
                  "payment_intent": refund["payment_intent"], "refunded": True,
                  "amount_refunded": sum(r["amount"] for r in mine),
                  "refunds": {"object": "list", "data": [dict(r) for r in mine]}}  # fmt: skip
        return self._emit("charge.refunded", charge)

    def settle(self, session_id: str, succeeded: bool = True) -> int:
        """A delayed payment method (bank debit) settles after `complete(..., "unpaid")`:
        `checkout.session.async_payment_succeeded` or `..._failed`."""
        session = self.sessions[session_id]
        session.update(payment_status="paid" if succeeded else "unpaid")
        outcome = "succeeded" if succeeded else "failed"
        return self._emit(f"checkout.session.async_payment_{outcome}", session)

    def pay_elsewhere(
        self,
        metadata: dict[str, Any],
        amount_total: int = 4900,
        currency: str = "usd",
        customer: str | None = None,
        livemode: bool = False,
    ) -> int:
        """A paid session allotment never created (a payment link, another integration, a
        hand-made session): its metadata is whatever its maker wrote."""
        session_id = f"cs_{'live' if livemode else 'test'}_{next(self._ids):020d}"
        session = {
            "id": session_id, "object": "checkout.session", "mode": "payment",
            "status": "complete", "payment_status": "paid", "customer": customer,
            "client_reference_id": None, "metadata": metadata, "amount_total": amount_total,
            "currency": currency, "url": None, "livemode": livemode,
        }  # fmt: skip
        self.sessions[session_id] = session
        return self._emit("checkout.session.completed", session, livemode=livemode)

    def expire(self, session_id: str) -> int:
        session = self.sessions[session_id]
        session.update(status="expired", url=None)
        return self._emit("checkout.session.expired", session)

    def resend(self, event_id: str) -> int:
        return self._send(self.events[event_id])

    def _emit(self, kind: str, obj: dict[str, Any], livemode: bool = False) -> int:
        event_id = f"evt_{next(self._ids):014d}"
        event = {
            "id": event_id, "object": "event", "api_version": "2025-01-27.acacia", "type": kind,
            "created": int(time.time()), "livemode": livemode, "pending_webhooks": 1,
            "data": {"object": dict(obj)}, "request": {"id": None, "idempotency_key": None},
        }  # fmt: skip
        payload = json.dumps(event).encode()
        self.events[event_id] = payload
        self.last_event_id = event_id
        return self._send(payload)

    def _send(self, payload: bytes) -> int:
        headers = {
            "Stripe-Signature": sign(payload, self.webhook_secret),
            "Content-Type": "application/json",
        }
        if self.deliver is not None:
            return self.deliver(payload, headers)
        assert self.webhook_url is not None, "set deliver or webhook_url"
        return httpx.post(
            self.webhook_url, content=payload, headers=headers, timeout=10
        ).status_code

    # -- the HTTP side -------------------------------------------------------------------------

    def _handle(
        self, method: str, path: str, body: str, headers: dict[str, str]
    ) -> tuple[int, Any, bool]:
        """Status, body, and whether Stripe would save the result for the idempotency key: it
        does for requests that started executing, not for failures before that (faults)."""
        if path.startswith("/_test/"):
            return (*self._test_route(path), False)
        if headers.get("authorization") != f"Bearer {self.api_key}":
            message = "Invalid API Key provided: " + headers.get("authorization", "")[-4:]
            return 401, _error("invalid_request_error", message), False
        params = parse_form(body) if method == "POST" else {}
        key = headers.get("idempotency-key")
        self.requests.append((method, path, params, key))
        if self._faults:
            status, type_, message, delay = self._faults.pop(0)
            if delay == float("inf"):
                self._released.wait()
            elif delay:
                time.sleep(delay)
            if status:
                return status, _error(type_, message), False
        return (*self._route(method, path, params), True)

    def _route(  # noqa: PLR0911 (one return per Stripe path)
        self, method: str, path: str, params: dict[str, Any]
    ) -> tuple[int, Any]:
        parts = path.strip("/").split("/")
        if method == "POST" and parts == ["v1", "customers"]:
            customer_id = f"cus_{next(self._ids):014d}"
            customer = {"id": customer_id, "object": "customer", "email": params.get("email"),
                        "name": params.get("name"), "metadata": params.get("metadata", {}),
                        "created": int(time.time()), "livemode": False}  # fmt: skip
            self.customers[customer_id] = customer
            return 200, customer
        if method == "POST" and parts == ["v1", "checkout", "sessions"]:
            return self._create_session(params)
        if method == "POST" and parts == ["v1", "refunds"]:
            return self._create_refund(params)
        if len(parts) >= 4 and parts[:3] == ["v1", "checkout", "sessions"]:
            session = self.sessions.get(parts[3])
            if session is None:
                return 404, _error(
                    "invalid_request_error",
                    f"No such checkout.session: '{parts[3]}'",
                    "resource_missing",
                )
            if method == "GET" and len(parts) == 4:
                return 200, session
            if method == "POST" and parts[4:] == ["expire"]:
                session.update(status="expired", url=None)
                return 200, session
        return 404, _error("invalid_request_error", f"Unrecognized request URL ({method}: {path}).")

    def _create_session(self, params: dict[str, Any]) -> tuple[int, Any]:
        if params.get("customer") not in self.customers:
            return 400, _error(
                "invalid_request_error",
                f"No such customer: '{params.get('customer')}'",
                "resource_missing",
            )
        items = params.get("line_items", [])
        amounts = [int(i["price_data"]["unit_amount"]) * int(i.get("quantity", 1)) for i in items]
        if any(a <= 0 for a in amounts):
            return 400, _error(
                "invalid_request_error", "Invalid non-negative integer", "parameter_invalid_integer"
            )
        session_id = f"cs_test_{next(self._ids):020d}"
        session = {
            "id": session_id, "object": "checkout.session", "mode": params.get("mode"),
            "status": "open", "payment_status": "unpaid", "customer": params["customer"],
            "client_reference_id": params.get("client_reference_id"),
            "metadata": params.get("metadata", {}), "amount_total": sum(amounts),
            "currency": items[0]["price_data"]["currency"] if items else None,
            "success_url": params.get("success_url"), "cancel_url": params.get("cancel_url"),
            "url": f"https://checkout.stripe.com/c/pay/{session_id}",
            "expires_at": int(time.time()) + 24 * 3600, "livemode": False,
            "line_items_received": items,
        }  # fmt: skip
        self.sessions[session_id] = session
        return 200, session

    def _create_refund(self, params: dict[str, Any]) -> tuple[int, Any]:
        """A refund stays `pending` until `settle_refund`, as a card refund does for days."""
        intent = params.get("payment_intent")
        paid = [s for s in self.sessions.values() if s.get("payment_intent") == intent]
        if not paid:
            return 400, _error("invalid_request_error", f"No such payment_intent: '{intent}'",
                               "resource_missing")  # fmt: skip
        amount = int(params.get("amount", paid[0]["amount_total"]))
        taken = sum(r["amount"] for r in self.refunds.values() if r["payment_intent"] == intent)
        if amount + taken > paid[0]["amount_total"]:
            return 400, _error("invalid_request_error", "Refund amount is greater than unrefunded amount",
                               "amount_too_large")  # fmt: skip
        refund_id = f"re_{next(self._ids):020d}"
        refund = {"id": refund_id, "object": "refund", "amount": amount, "status": "pending",
                  "currency": paid[0]["currency"], "payment_intent": intent,
                  "metadata": params.get("metadata", {}), "created": int(time.time())}  # fmt: skip
        self.refunds[refund_id] = refund
        return 200, refund

    def _test_route(self, path: str) -> tuple[int, Any]:
        parts = path.strip("/").split("/")
        if parts[1] == "sessions" and parts[3] == "complete":
            return 200, {"webhook_status": self.complete(parts[2])}
        if parts[1] == "sessions" and parts[3] in ("async_succeed", "async_fail"):
            succeeded = parts[3] == "async_succeed"
            return 200, {"webhook_status": self.settle(parts[2], succeeded)}
        if parts[1] == "sessions" and parts[3] == "complete_unpaid":
            return 200, {"webhook_status": self.complete(parts[2], "unpaid")}
        if parts[1] == "sessions" and parts[3] == "expire":
            return 200, {"webhook_status": self.expire(parts[2])}
        if parts[1] == "events" and parts[3] == "resend":
            return 200, {"webhook_status": self.resend(parts[2])}
        return 404, _error("invalid_request_error", "no such test route")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self, method: str) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                headers = {k.lower(): v for k, v in self.headers.items()}
                key = headers.get("idempotency-key")
                cache_key = (self.path, key) if key and method == "POST" else None
                path = self.path.split("?")[0]
                with double._lock:
                    cached = double._idempotent.get(cache_key) if cache_key else None
                    hold = double._holds.pop(path, None)
                if hold is not None and not hold.reaches:
                    hold.wait()  # the caller died meanwhile: nothing was done
                    return
                if cached is not None and cached[0] == body:
                    status, payload = cached[1], cached[2]
                    double.replays.append((path, key or ""))
                elif cached is not None:
                    status = 400
                    payload = json.dumps(
                        _error(
                            "idempotency_error",
                            "Keys for idempotent requests can only be used with the same parameters they were first used with.",
                        )
                    ).encode()
                else:
                    status, data, executed = double._handle(method, path, body, headers)
                    payload = json.dumps(data).encode()
                    if cache_key and executed:
                        with double._lock:
                            double._idempotent[cache_key] = (body, status, payload)
                if hold is not None:
                    hold.wait()  # done and kept for its key; the answer waits
                with contextlib.suppress(OSError):  # a caller killed meanwhile reads nothing
                    self._answer(status, key, payload)

            def _answer(self, status: int, key: str | None, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Request-Id", f"req_{next(double._ids)}")
                if key:
                    self.send_header("Idempotency-Key", key)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def log_message(self, *_: object) -> None:
                """Silence the per-request log line; tests read `double.requests` instead."""

        return Handler


def _error(type_: str, message: str, code: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"type": type_, "message": message}
    if code:
        error["code"] = code
    return {"error": error}
