"""`GET /metrics`: the Prometheus text format, for a key with the `metrics` scope (OPS-M1)."""

from __future__ import annotations

from litestar import Response, get
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder

from allotment.http.context import AnyRequest, errors

__all__ = ("metrics",)


@get(
    "/metrics",
    operation_id="metrics",
    opt={"scope": "metrics"},
    media_type=CONTENT_TYPE_PLAIN_0_0_4,
    responses=errors(401, 403),
    tags=["Operations"],
)
async def metrics(request: AnyRequest) -> Response[bytes]:
    """Counters, gauges and histograms of the whole server in the Prometheus text format: HTTP
    requests by route and status with their latency, turns, group commits, buffers, customers,
    checkpoints, analytics snapshots and recoveries (docs/observability.md lists each). The key
    needs the `metrics` scope; it sees every environment's counts, never a customer's data."""
    registry: CollectorRegistry = request.app.state["metrics"]
    # The client's own negotiation: the classic text format (0.0.4), which every Prometheus
    # reads, unless the scraper asks for OpenMetrics.
    encode, content_type = choose_encoder(request.headers.get("accept", ""))
    # Litestar appends the charset to a text/ media type itself.
    media_type = content_type.replace("; charset=utf-8", "")
    return Response(content=encode(registry), media_type=media_type)
