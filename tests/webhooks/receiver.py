"""A real HTTP receiver on 127.0.0.1 for webhook tests: it verifies every request with the
official `standardwebhooks` package (against any of the secrets it is told), records it, and
answers as the test says: a queue of status codes (200 once it is empty), or a gate that holds
every request until the test opens it (a slow endpoint). A request that does not verify is
answered as scripted all the same (a test of retries must see its own statuses), and kept in
`unverified`; `assert_verified` fails on any, and the `receiver` fixtures call it when the test
ends, so no test can pass with a delivery standardwebhooks refused (issue 15: it must verify
every delivery)."""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.waiting import POLL_S

__all__ = ("Delivery", "Receiver")


@dataclass(frozen=True)
class Delivery:
    id: str  # webhook-id
    signature: str
    body: dict[str, Any]
    verified_by: tuple[str, ...]  # the secrets whose signature matched
    status: int  # what the receiver answered
    headers: dict[str, str] = field(default_factory=dict)  # every header, lower-cased


class Receiver:
    def __init__(self) -> None:
        self.secrets: list[str] = []
        self.statuses: deque[int] = deque()  # answers for the next requests; then 200
        self.gate = threading.Event()
        self.gate.set()  # open: answer at once
        self.held = 0  # requests waiting at the closed gate
        self.deliveries: list[Delivery] = []
        self.unverified: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks"
        # `close` returns only once the serve loop looks at its flag: at the default 0.5 s a
        # look, every test closing a receiver waited about that long for nothing.
        serve = partial(self._server.serve_forever, poll_interval=POLL_S)
        threading.Thread(target=serve, daemon=True).start()

    def close(self) -> None:
        self.gate.set()
        self._server.shutdown()
        self._server.server_close()

    def assert_verified(self) -> None:
        """Every request so far verified under one of `secrets`.

        Raises:
            AssertionError: naming the webhook-ids that did not.
        """
        with self._lock:
            unverified = list(self.unverified)
        assert unverified == [], f"not verified by standardwebhooks: {unverified}"

    def accepted(self) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if 200 <= d.status < 300]

    def _receive(self, headers: dict[str, str], body: bytes) -> int:
        verified = [secret for secret in self.secrets if _verifies(secret, body, headers)]
        with self._lock:
            if not verified:
                self.unverified.append(headers.get("webhook-id", "?"))
            status = self.statuses.popleft() if self.statuses else 200
            self.held += 0 if self.gate.is_set() else 1
        self.gate.wait(timeout=120)
        with self._lock:
            self.deliveries.append(
                Delivery(
                    headers["webhook-id"], headers["webhook-signature"], json.loads(body),
                    tuple(verified), status, headers,
                )
            )  # fmt: skip
        return status

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status = receiver._receive(headers, body)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass  # quiet: the test reads `deliveries`

        return Handler


def _verifies(secret: str, body: bytes, headers: dict[str, str]) -> bool:
    """Whether the official verifier accepts this delivery under `secret` (WHK-D10..D12)."""
    try:
        Webhook(secret).verify(body, headers)
    except WebhookVerificationError:
        return False
    return True
