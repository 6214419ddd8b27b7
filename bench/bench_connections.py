"""Idle and slow connections against a real server (issue 10, scenario 8).

    PYTHONPATH=src .venv/bin/python -m bench.bench_connections [--crowd 10000] [--save]
    ... --src /other/checkout/src   # the same load against another checkout (before/after)

Starts `allotment serve` on 127.0.0.1 (a temporary data dir, --api-key), then, for each crowd
shape (silent connections that never send a byte, request heads that never finish, bodies
that never finish), opens `--crowd` connections to 127.0.0.1 only and measures authenticated
entitlement checks, each on a new connection: success rate and latency, against a baseline
with no crowd. Then it waits for the server to close the crowd and reports how long that took.
Every loop is bounded; the server is stopped at the end whatever happens.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import platform
import resource
import select
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

KEY = "sk_test_" + "bench" * 8
C = "/api/v1/client"
CHECKS = 200
CHECK_TIMEOUT_S = 10.0
PHASE_BUDGET_S = 60.0  # checks stop after this long (the "before" server never answers)
CLOSE_WAIT_S = 120.0  # how long to watch the crowd being closed
SHAPES = {
    "silent": b"",
    "slow_head": b"GET /health HTTP/1.1\r\nhost: x\r\nx-slow: ",
    "slow_body": (
        f"POST {C}/events HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {KEY}\r\n"
        "content-type: application/json\r\ncontent-length: 1000\r\n\r\n{"
    ).encode(),
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def _server(src: Path, data_dir: Path, extra: list[str]) -> Iterator[tuple[int, int]]:
    port = _free_port()
    command = [sys.executable, "-m", "allotment", "serve", "--data-dir", str(data_dir),
               "--port", str(port), "--api-key", KEY, *extra]  # fmt: skip
    log = (data_dir.parent / "server.log").open("wb")
    env = {**os.environ, "PYTHONPATH": str(src)}
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                               start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while _request(port, "GET", "/health", None)[0] != 200:
            assert process.poll() is None, "server exited"
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        yield port, process.pid
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        log.close()


def _request(port: int, method: str, path: str, body: bytes | None) -> tuple[int, float]:
    """(status, seconds) of one request on a new connection; status 0 when it failed."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=CHECK_TIMEOUT_S)
    try:
        headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
        connection.request(method, path, body=body, headers=headers)
        status = connection.getresponse().status
    except OSError:
        status = 0
    finally:
        connection.close()
    return status, time.perf_counter() - started


def _checks(port: int) -> dict[str, Any]:
    latencies, ok, attempted = [], 0, 0
    budget = time.monotonic() + PHASE_BUDGET_S
    while attempted < CHECKS and time.monotonic() < budget:
        status, seconds = _request(port, "GET", f"{C}/entitlements/bench/api_calls", None)
        attempted += 1
        if status == 200:
            ok += 1
            latencies.append(seconds)
    latencies.sort()
    return {
        "attempted": attempted,
        "succeeded": ok,
        "success_rate": ok / CHECKS,
        "median_ms": round(statistics.median(latencies) * 1000, 2) if latencies else None,
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2) if latencies else None,
    }


def _open_crowd(port: int, n: int, payload: bytes) -> tuple[list[socket.socket], int]:
    """Up to `n` connections; gives up after 20 failures in a row (a server that stopped
    accepting: the kernel's backlog is full and every further connect times out)."""
    crowd: list[socket.socket] = []
    failed = in_a_row = 0
    while len(crowd) + failed < n and in_a_row < 20:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=2)
            if payload:
                sock.sendall(payload)
            crowd.append(sock)
            in_a_row = 0
        except OSError:
            failed += 1
            in_a_row += 1
    return crowd, failed


def _watch_closing(crowd: list[socket.socket], since: float) -> dict[str, Any]:
    """Seconds from `since` until half, and all, of the crowd was closed by the server."""
    open_socks = {sock.fileno(): sock for sock in crowd}
    poller = select.epoll()
    for fd in open_socks:
        poller.register(fd, select.EPOLLIN | select.EPOLLRDHUP)
    half_at = all_at = None
    deadline = since + CLOSE_WAIT_S
    while open_socks and time.monotonic() < deadline:
        for fd, _ in poller.poll(1.0):
            try:
                while open_socks[fd].recv(65536, socket.MSG_DONTWAIT):
                    pass  # a 408 answer; the close follows
            except BlockingIOError:
                continue  # nothing more to read yet: still open
            except OSError:
                pass  # reset by the server: closed too
            poller.unregister(fd)
            open_socks.pop(fd).close()
        closed = len(crowd) - len(open_socks)
        if half_at is None and closed * 2 >= len(crowd):
            half_at = time.monotonic() - since
    if not open_socks:
        all_at = time.monotonic() - since
    poller.close()
    for sock in open_socks.values():
        sock.close()
    return {
        "half_closed_after_s": None if half_at is None else round(half_at, 1),
        "all_closed_after_s": None if all_at is None else round(all_at, 1),
        "still_open_after_watch": len(open_socks),
        "watched_s": CLOSE_WAIT_S,
    }


def _rss_kib(pid: int) -> int:
    """VmRSS of the server's worker processes (children of the serve process)."""
    total = 0
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        status = Path(f"/proc/{child}/status").read_text()
        total += int(next(line.split()[1] for line in status.splitlines() if "VmRSS" in line))
    return total


def _shape(port: int, pid: int, shape: str, n: int) -> dict[str, Any]:
    started = time.monotonic()
    crowd, failed = _open_crowd(port, n, SHAPES[shape])
    result: dict[str, Any] = {
        "crowd_opened": len(crowd),
        "crowd_connect_failed": failed,
        "open_seconds": round(time.monotonic() - started, 1),
        "worker_rss_kib": _rss_kib(pid),
        "checks": _checks(port),
    }
    result["closing"] = _watch_closing(crowd, started)
    result["checks_after"] = _checks(port)
    return result


def run(src: Path, n: int, extra: list[str]) -> dict[str, Any]:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the crowd is ours to open
    with tempfile.TemporaryDirectory() as tmp, _server(src, Path(tmp) / "data", extra) as server:
        port, pid = server
        customer = {"customerReferenceId": "bench", "firstName": "B", "lastName": "B",
                    "email": "b@b.co"}  # fmt: skip
        assert _request(port, "POST", f"{C}/customers", msgspec.json.encode(customer))[0] == 201
        report: dict[str, Any] = {"baseline": _checks(port), "worker_rss_kib": _rss_kib(pid)}
        for shape in SHAPES:
            report[shape] = _shape(port, pid, shape, n)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--crowd", type=int, default=10_000)
    parser.add_argument("--src", type=Path, default=Path(__file__).resolve().parents[1] / "src")
    parser.add_argument("--serve-arg", action="append", default=[], help="passed to serve")
    parser.add_argument("--save", type=Path, default=None, help="write the JSON here")
    args = parser.parse_args()
    report = {
        "command": " ".join(sys.argv),
        "src": str(args.src),
        "crowd": args.crowd,
        "checks_per_phase": CHECKS,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "nofile_hard": resource.getrlimit(resource.RLIMIT_NOFILE)[1],
        },
        "results": run(args.src, args.crowd, args.serve_arg),
    }
    encoded = msgspec.json.format(msgspec.json.encode(report))
    print(encoded.decode())
    if args.save:
        args.save.write_bytes(encoded + b"\n")


if __name__ == "__main__":
    main()
