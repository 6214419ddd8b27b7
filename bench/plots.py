"""PNG plots of one results file: throughput bars, latency CDFs, and the check's cost versus
events per customer when the alternatives ran."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib as mpl

mpl.use("Agg")  # files only, no display; pyplot must be imported after choosing it
import matplotlib.pyplot as plt

__all__ = ("write_plots",)

_COLOURS = {"raw_asgi": "#9e9e9e", "litestar": "#5c8fd6", "allotment": "#e07b39"}
_BACKEND_COLOURS = {"postgres": "#336791", "redis": "#d82c20", "allotment": "#e07b39"}


def _throughput(http: dict[str, Any], path: Path) -> None:
    figures = http["closed_loop"]
    names = list(figures)
    values = [figures[n]["requests_per_s"] for n in names]
    fig, ax = plt.subplots(figsize=(10, 5))
    bars = ax.bar(names, values, color=[_COLOURS[figures[n]["server"]] for n in names])
    for bar, name in zip(bars, names, strict=True):
        figure = figures[name]
        ceiling = "post" if figure["kind"] == "post" else "get"
        ratio = figure.get(f"ratio_to_litestar_{ceiling}")
        ax.annotate(f"{figure['requests_per_s']:,}\n×{ratio:.2f} Litestar {ceiling.upper()}",
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center",
                    va="bottom", fontsize=7)  # fmt: skip
    sizes = http["sizes"]
    ax.set_title(f"Closed-loop throughput (wrk -t{sizes['threads']} -c{sizes['connections']}, "
                 f"{sizes['duration_s']} s, median of {sizes['runs']})")  # fmt: skip
    ax.set_ylabel("requests/s")
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    ax.margins(y=0.15)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _latency_cdfs(http: dict[str, Any], path: Path) -> None:
    panels = [(name, rate, by_server) for name, by_rate in http["open_loop"].items()
              for rate, by_server in by_rate.items()]  # fmt: skip
    rows = (len(panels) + 1) // 2
    fig, axes = plt.subplots(rows, 2, figsize=(11, 4.5 * rows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, (name, rate, by_server) in zip(axes.flat, panels, strict=False):
        for server in ("raw_asgi", "litestar", "allotment"):
            points = [(q, ms) for q, ms in by_server[server]["cdf_ms"] if q < 1.0]
            if not points:
                continue
            ax.plot([1 / (1 - q) for q, _ in points], [ms for _, ms in points], label=server,
                    color=_COLOURS[server])  # fmt: skip
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks([2, 10, 100, 1000, 10000])
        ax.set_xticklabels(["50", "90", "99", "99.9", "99.99"])
        ax.set_xlabel("percentile")
        ax.set_ylabel("latency ms (from scheduled send)")
        ax.set_title(f"{name} at {int(rate):,}/s offered")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _cost_vs_events(alternatives: dict[str, Any], path: Path) -> bool:
    results = alternatives.get("results")
    if not isinstance(results, dict) or not results:
        return False
    sizes = sorted(results, key=int)
    backends = list(results[sizes[0]])
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    for backend in backends:
        xs = [int(s) for s in sizes if backend in results[s]]
        colour = _BACKEND_COLOURS.get(backend)
        left.plot(xs, [results[str(x)][backend].get("rps") for x in xs], marker="o",
                  label=backend, color=colour)  # fmt: skip
        right.plot(xs, [results[str(x)][backend].get("p99_ms") for x in xs], marker="o",
                   label=backend, color=colour)  # fmt: skip
    for ax, label in ((left, "check requests/s"), (right, "check p99 ms")):
        ax.set_xscale("log")
        ax.set_xlabel("events per customer in the period")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    left.set_ylim(bottom=0)
    right.set_yscale("log")
    fig.suptitle("The check's cost versus usage (same front door, same load)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def write_plots(document: dict[str, Any], directory: Path) -> list[Path]:
    """Write the plots this results document has data for; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    parts = document.get("parts") or {}
    written: list[Path] = []
    http = parts.get("http") or {}
    if http.get("closed_loop"):
        _throughput(http, directory / "throughput.png")
        written.append(directory / "throughput.png")
    if http.get("open_loop"):
        _latency_cdfs(http, directory / "latency_cdf.png")
        written.append(directory / "latency_cdf.png")
    if _cost_vs_events(parts.get("alternatives") or {}, directory / "cost_vs_events.png"):
        written.append(directory / "cost_vs_events.png")
    return written
