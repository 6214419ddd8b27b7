"""Instructions per event of the two batch ingest endpoints that `bench.bench_cloudevents`
races (issue 16): the Tanso batch (`POST /api/v1/client/events/batch`) and the CloudEvents
batch (`POST /api/v1/events`, application/cloudevents-batch+json), with the bench's own
bodies and set-up, through the served app in-process (ASGI messages, the file journal with
fsync, no granian or socket). Counted by callgrind over the measured batches alone (after
set-up and one warm-up batch), so the figures do not move with the machine's load;
`--profile` prints a cProfile of one side instead, to see where its cost goes (cProfile
weighs Python calls far above C work such as decoding and encoding: proportions only).

    PYTHONPATH=$PWD/src:$PWD .venv/bin/python -m bench.http.batch_instructions \
        [--batches 20] [--batch 100] [--customers 200] [--profile cloudevents]

Inner mode (what callgrind runs): `--inner SIDE N`.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import uvloop

from allotment.config import Settings
from allotment.http.body_deadline import BodyDeadline
from allotment.wiring import build_app
from bench.http.instructions import KEY, App, _lifespan, _request, _scope

SIDES = ("tanso_batch", "cloudevents")
_CE = [(b"content-type", b"application/cloudevents-batch+json")]


def _body(side: str, batch_no: int, size: int, customers: int) -> tuple[str, bytes]:
    """The request wrk's lua script sends for `side` (bench/http/lua/*.lua)."""
    first = batch_no * size
    if side == "tanso_batch":
        items = [
            f'{{"eventName":"bench.api","featureKey":"bench_calls","customerReferenceId":'
            f'"c{n % customers}","eventIdempotencyKey":"n-{n}","usageUnits":1}}'
            for n in range(first, first + size)
        ]
        return "/api/v1/client/events/batch", f'{{"events":[{",".join(items)}]}}'.encode()
    items = [
        f'{{"specversion":"1.0","source":"bench","type":"bench.api","id":"n-{n}",'
        f'"subject":"s{n % customers}","data":{{"units":1}}}}'
        for n in range(first, first + size)
    ]
    return "/api/v1/events", f"[{','.join(items)}]".encode()


async def _call(app: App, method: str, path: str, payload: Any) -> Any:
    status, answer = await _request(app, _scope(method, path), json.dumps(payload).encode())
    assert status in (200, 201), (path, status, answer)
    return json.loads(answer) if answer else None


async def _prepare(app: App, customers: int) -> None:
    """What `bench.bench_cloudevents._prepare` sets up, through the same routes."""
    meter = {"slug": "bench_calls", "aggregation": "COUNT", "eventType": "bench.api"}
    await _call(app, "POST", "/api/v1/meters", meter)
    feature = {"key": "bench_calls", "name": "Calls", "meterSlug": "bench_calls"}
    await _call(app, "POST", "/api/v1/features", feature)
    link = {"featureKey": "bench_calls", "pricingType": "usage_based", "pricePerUnit": 0}
    plan = {"key": "bench_plan", "name": "Bench", "priceAmount": 0, "currency": "USD",
            "intervalMonths": 1, "billingTiming": "IN_ARREARS", "features": [link]}  # fmt: skip
    await _call(app, "PUT", "/api/v1/admin/catalog", {"plans": [plan]})
    _, answer = await _request(app, _scope("GET", "/api/v1/client/plans"), b"")
    plans = json.loads(answer)["data"]
    plan_id = next(p["plan"]["id"] for p in plans if p["plan"]["key"] == "bench_plan")
    for i in range(customers):
        body = {"name": f"c{i}", "key": f"c{i}", "usageAttribution": {"subjectKeys": [f"s{i}"]}}
        await _call(app, "POST", "/api/v1/customers", body)
        sub = {"customerReferenceId": f"c{i}", "planId": plan_id}
        await _call(app, "POST", "/api/v1/client/subscriptions", sub)


async def _inner(side: str, batches: int, size: int, customers: int, data_dir: Path,
                 profile: Path | None, gate: Path | None = None) -> None:  # fmt: skip
    settings = Settings(data_dir=data_dir, api_keys=[KEY], durability="fsync")
    app = BodyDeadline(build_app(settings), settings.body_read_timeout_s)
    stop = await _lifespan(app)
    await _prepare(app, customers)
    # One batch of warm-up: the first of each route builds caches a run pays for once.
    requests = [_body(side, n, size, customers) for n in range(batches + 1)]
    extra = _CE if side == "cloudevents" else []
    profiler = cProfile.Profile() if profile else None
    for n, (path, body) in enumerate(requests):
        if n == 1:
            if profiler is not None:
                profiler.enable()
            await _passed(gate, "ready", "go")
        status, answer = await _request(app, _scope("POST", path, extra), body)
        assert status in (200, 204), (status, answer[:300])
        assert b'"success":false' not in answer, answer[:300]
    await _passed(gate, "done", "stop")
    if profiler is not None and profile is not None:
        profiler.disable()
        profiler.dump_stats(profile)
    await stop()


async def _passed(gate: Path | None, reached: str, wanted: str) -> None:
    """Under callgrind: say `reached`, then wait for the outer process to switch the count on
    or off and say `wanted`, so that only the measured batches are counted."""
    if gate is None:
        return
    (gate / reached).touch()
    while not (gate / wanted).exists():  # noqa: ASYNC110 (another process says it, by a file)
        await anyio.sleep(0.05)


def _instructions(side: str, batches: int, size: int, customers: int, keep: Path | None) -> int:
    """Instructions of `batches` batches of `side` after set-up and warm-up: callgrind counts
    from the start nothing (`--instr-atstart=no`: start-up and set-up run ~4x slower instead of
    ~50x) and only the measured batches, switched on and off by `callgrind_control`."""
    with tempfile.TemporaryDirectory() as scratch:
        out, errors = Path(scratch) / "callgrind.out", Path(scratch) / "stderr"
        command = [
            "valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
            sys.executable, "-m", "bench.http.batch_instructions", "--inner", side,
            str(batches), "--batch", str(size), "--customers", str(customers), "--dir", scratch,
        ]  # fmt: skip
        environment = {**os.environ, "PYTHONHASHSEED": "0"}  # see bench.bench_instructions
        with errors.open("w") as sink:
            process = subprocess.Popen(command, stdout=sink, stderr=sink, env=environment)
            for reached, wanted, switch in (("ready", "go", "on"), ("done", "stop", "off")):
                while not (Path(scratch) / reached).exists():
                    assert process.poll() is None, errors.read_text()[-3000:]
                    time.sleep(0.2)
                subprocess.run(["callgrind_control", "-i", switch, str(process.pid)],
                               check=True, capture_output=True)  # fmt: skip
                (Path(scratch) / wanted).touch()
            assert process.wait() == 0, errors.read_text()[-3000:]
        if keep is not None:  # for callgrind_annotate: which C functions (decode, encode) cost
            shutil.copy(out, keep / f"callgrind.{side}.out")
        match = re.search(r"Collected : (\d+)", errors.read_text())
        assert match is not None, errors.read_text()[-3000:]
        return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--sides", nargs="+", choices=SIDES, default=list(SIDES))
    parser.add_argument("--profile", choices=SIDES, help="cProfile one side, no callgrind")
    parser.add_argument("--keep", type=Path, help="copy each callgrind.<side>.out there")
    parser.add_argument("--inner", nargs=2, metavar=("SIDE", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner or args.profile:
        side, batches = args.inner or (args.profile, args.batches)
        with tempfile.TemporaryDirectory() as scratch:
            data = (args.dir or Path(scratch)) / "data"
            stats = Path(scratch) / "profile" if args.profile else None
            gate = args.dir if args.inner else None
            uvloop.run(_inner(side, int(batches), args.batch, args.customers, data, stats, gate))
            if stats is not None:
                pstats.Stats(str(stats)).sort_stats("cumulative").print_stats(45)
                pstats.Stats(str(stats)).sort_stats("tottime").print_stats(30)
        return
    figures = {}
    for side in args.sides:
        total = _instructions(side, args.batches, args.batch, args.customers, args.keep)
        figures[side] = round(total / (args.batches * args.batch))
        print(f"{side}: {figures[side]:,} instructions per event", flush=True)
    ratio = figures["cloudevents"] / figures["tanso_batch"] if len(figures) == 2 else None
    print(json.dumps({"batches": args.batches, "batch": args.batch, "per_event": figures,
                      "cloudevents_to_tanso": ratio}))  # fmt: skip


if __name__ == "__main__":
    main()
