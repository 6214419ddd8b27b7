"""The framework ceilings every HTTP figure is divided by, served like `allotment serve`.

- `raw`: a raw ASGI app that answers every GET with the bytes of an allotment entitlement
  check (customer `c0`) and every POST with the bytes of an accepted event (201). Nothing is
  parsed: this is what granian itself costs.
- `litestar`: a trivial Litestar app with the same paths as allotment. The GET route looks the
  customer up in a dict holding each customer's check bytes; the POST route decodes the event
  body with msgspec and answers 201 with the accepted-event bytes. This is what the framework
  costs with no work in the handler.

The response bytes come from a JSON file (see `Bodies`) that the suite writes after asking the
real server, so the ceilings send exactly what allotment sends.

    .venv/bin/python -m bench.http.ceilings raw|litestar --port 18081 --bodies bodies.json
"""

from __future__ import annotations

import argparse
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
from granian import Granian
from granian.constants import Interfaces
from litestar import Litestar, Request, Response, Router, get, post
from litestar.enums import MediaType

__all__ = ("BODIES_ENV", "Bodies", "litestar_app", "raw_app", "serve")

BODIES_ENV = "BENCH_CEILING_BODIES"


class Bodies(msgspec.Struct, kw_only=True):
    """What allotment answered, for the ceilings to answer the same."""

    check: str  # the body of GET /entitlements/c0/api_calls
    event: str  # the body of a 201 POST /events
    customers: int  # the Litestar route's dict holds c0 .. c<customers-1>


class CostInput(msgspec.Struct, kw_only=True):
    model: str
    modelProvider: str
    inputTokens: int
    outputTokens: int


class EventBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The event the benchmark sends; a small subset of allotment's EventRequest."""

    eventName: str
    customerReferenceId: str
    featureKey: str | None = None
    eventIdempotencyKey: str | None = None
    usageUnits: Decimal | None = None
    costInput: CostInput | None = None


def _bodies() -> Bodies:
    return msgspec.json.decode(Path(os.environ[BODIES_ENV]).read_bytes(), type=Bodies)


def _check_body(bodies: Bodies, ref: str) -> str:
    return bodies.check.replace('"referenceCustomerId":"c0"', f'"referenceCustomerId":"{ref}"', 1)


def raw_app() -> Any:
    """The raw ASGI ceiling (a factory, as granian calls it)."""
    bodies = _bodies()
    check, event = _check_body(bodies, "c0").encode(), bodies.event.encode()

    def headers(body: bytes) -> list[tuple[bytes, bytes]]:
        return [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]

    check_headers, event_headers = headers(check), headers(event)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["method"] == "POST":
            more = True
            while more:  # read the body, as any real handler must
                more = (await receive()).get("more_body", False)
            await send({"type": "http.response.start", "status": 201, "headers": event_headers})
            await send({"type": "http.response.body", "body": event})
            return
        await send({"type": "http.response.start", "status": 200, "headers": check_headers})
        await send({"type": "http.response.body", "body": check})

    return app


def litestar_app() -> Litestar:
    """The trivial Litestar ceiling (a factory, as granian calls it)."""
    bodies = _bodies()
    checks = {f"c{i}": _check_body(bodies, f"c{i}").encode() for i in range(bodies.customers)}
    fallback = _check_body(bodies, "c0").encode()
    event = bodies.event.encode()
    decoder = msgspec.json.Decoder(EventBody)

    @get("/entitlements/{customer:str}/{feature:str}")
    async def check_route(customer: str, feature: str) -> Response[bytes]:
        return Response(checks.get(customer, fallback), media_type=MediaType.JSON)

    @post("/events", status_code=201)
    async def event_route(request: Request[Any, Any, Any]) -> Response[bytes]:
        decoder.decode(await request.body())
        return Response(event, status_code=201, media_type=MediaType.JSON)

    router = Router("/api/v1/client", route_handlers=[check_route, event_route])
    return Litestar(route_handlers=[router], logging_config=None)


def serve(target: str, port: int) -> None:
    """Serve `target` exactly as `allotment serve` serves allotment (src/allotment/cli.py)."""
    Granian(
        target,
        factory=True,
        address="127.0.0.1",
        port=port,
        interface=Interfaces.ASGI,
        workers=1,
        log_access=False,
    ).serve()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("app", choices=("raw", "litestar"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bodies", type=Path, required=True)
    args = parser.parse_args()
    os.environ[BODIES_ENV] = str(args.bodies.resolve())
    serve(f"bench.http.ceilings:{args.app}_app", args.port)
