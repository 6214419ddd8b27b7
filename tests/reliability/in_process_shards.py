"""`allotment serve` with its customers over `--shards N` shards held in the server's own
process (a `ShardedSystem`, what the `system` fixture calls "shards3"), not Ray actors: the
real server the OpenMeter and Flexprice suites run against, over three shards too
(docs/scale-out.md SCL-22, SCL-60..SCL-66). Test-only: `serve` itself runs N > 1 on Ray
(SCL-39), which a suite of short-lived servers cannot afford to start each time."""

from __future__ import annotations

import sys

from allotment import cli
from allotment.config import Settings

# The one difference from `python -m allotment`: the shards are never Ray actors here.
Settings.on_ray = property(lambda _settings: False)  # type: ignore[method-assign, assignment]

if __name__ == "__main__":
    raise SystemExit(cli.main(sys.argv[1:]))
