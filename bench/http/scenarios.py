"""What the HTTP suite measures: sizes, the closed-loop scenarios and the open-loop specs."""

from __future__ import annotations

import msgspec

__all__ = ("FULL", "QUICK", "ClosedLoop", "OpenLoop", "Sizes", "closed_loop", "open_loop")


class Sizes(msgspec.Struct, frozen=True, kw_only=True):
    customers: int  # customers in allotment's state (and in the Litestar ceiling's dict)
    duration_s: float  # each closed-loop run, and each open-loop run's measured window
    warmup_s: float  # open loop: sent before the measured window, not counted
    runs: int  # every figure is the median of this many runs
    threads: int  # wrk threads
    connections: int  # wrk connections, and the open-loop generator's connection pool
    rates: tuple[int, ...]  # open-loop offered rates for the check, requests/s
    ingest_rate: int  # open-loop offered rate for events, events/s
    hot_spread: int  # the hot-key comparison: 64 connections over this many customers
    batch_size: int  # events per batch request
    settle_s: float  # pause between runs


FULL = Sizes(
    customers=100_000, duration_s=10, warmup_s=1, runs=3, threads=2, connections=64,
    rates=(2000, 5000, 10000), ingest_rate=2000, hot_spread=10_000, batch_size=1000,
    settle_s=1,
)  # fmt: skip
QUICK = Sizes(
    customers=2_000, duration_s=2, warmup_s=0.5, runs=3, threads=2, connections=64,
    rates=(2000, 5000, 10000), ingest_rate=2000, hot_spread=1_000, batch_size=100,
    settle_s=0.2,
)  # fmt: skip

CHECK_PATH = "GET /api/v1/client/entitlements/c<i>/api_calls"
EVENT_PATH = "POST /api/v1/client/events (ai_chat, 1830 units, costInput; unique X-Idempotency-Key)"
EVALUATE_PATH = "POST /api/v1/client/entitlements (ai_chat, track.usageUnits 5000)"


class ClosedLoop(msgspec.Struct, frozen=True, kw_only=True):
    """One wrk scenario. `kind` says which ceilings it is divided by ("get" or "post")."""

    name: str
    server: str  # "raw_asgi", "litestar" or "allotment"
    script: str  # under bench/http/lua/
    request: str
    kind: str
    customers: int  # how many customers the requests rotate over
    mode: str = ""  # post.lua: "event" or "evaluate"


class OpenLoop(msgspec.Struct, frozen=True, kw_only=True):
    name: str  # "check" or "ingest"
    kind: str  # the generator's --kind: "check" or "event"
    rates: tuple[int, ...]


def closed_loop(sizes: Sizes) -> list[ClosedLoop]:
    n = sizes.customers
    get, post = "get", "post"
    return [
        ClosedLoop(name="raw_asgi_get", server="raw_asgi", script="check.lua",
                   request=CHECK_PATH, kind=get, customers=n),
        ClosedLoop(name="litestar_get", server="litestar", script="check.lua",
                   request=CHECK_PATH, kind=get, customers=n),
        ClosedLoop(name="check", server="allotment", script="check.lua",
                   request=CHECK_PATH, kind=get, customers=n),
        ClosedLoop(name="hot_key_one_customer", server="allotment", script="check.lua",
                   request=CHECK_PATH + " (always c0)", kind=get, customers=1),
        ClosedLoop(name="hot_key_spread", server="allotment", script="check.lua",
                   request=CHECK_PATH + f" (c0 .. c{sizes.hot_spread - 1})", kind=get,
                   customers=sizes.hot_spread),
        ClosedLoop(name="evaluate_simulate", server="allotment", script="post.lua",
                   request=EVALUATE_PATH, kind=post, customers=n, mode="evaluate"),
        ClosedLoop(name="raw_asgi_post", server="raw_asgi", script="post.lua",
                   request=EVENT_PATH, kind=post, customers=n, mode="event"),
        ClosedLoop(name="litestar_post", server="litestar", script="post.lua",
                   request=EVENT_PATH, kind=post, customers=n, mode="event"),
        ClosedLoop(name="ingest", server="allotment", script="post.lua",
                   request=EVENT_PATH, kind=post, customers=n, mode="event"),
    ]  # fmt: skip


def open_loop(sizes: Sizes) -> list[OpenLoop]:
    return [
        OpenLoop(name="check", kind="check", rates=sizes.rates),
        OpenLoop(name="ingest", kind="event", rates=(sizes.ingest_rate,)),
    ]
