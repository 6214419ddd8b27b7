"""What `GET /metrics` exports, in the Prometheus text format (docs/observability.md lists it).

Nothing here runs on the hot path. The requests are counted as plain integers by
`http.observe`, the turns by the shards, the group commits by the journals, the checkpoints and
analytics snapshots by `runtime.upkeep`; the collector reads all of it when Prometheus scrapes,
and turns it into metric families with the official client (`prometheus_client`). Names follow
its conventions: an `allotment_` prefix, `_total` on counters, base units (`_seconds`,
`_bytes`) in the name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from allotment.histogram import DURATION_BUCKETS, Histogram
from allotment.http.observe import RequestStatistics
from allotment.runtime.system import ActorSystem, ShardStatistics
from allotment.runtime.upkeep import RESULTS, Upkeep
from allotment.webhooks.ports import EndpointStatistics, WebhookAdmin

__all__ = ("metrics_registry",)


def metrics_registry(
    system: ActorSystem, requests: RequestStatistics, webhooks: WebhookAdmin | None = None
) -> CollectorRegistry:
    """A registry of its own per app (tests build many apps in one process), holding allotment's
    collector and the client's standard process, platform and garbage-collector ones."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(system, requests, webhooks))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


class _Collector(Collector):
    def __init__(
        self, system: ActorSystem, requests: RequestStatistics, webhooks: WebhookAdmin | None
    ) -> None:
        self._system = system
        self._requests = requests
        self._webhooks = webhooks

    def describe(self) -> Iterable[Metric]:
        return ()  # no scrape at registration: the system may not be running yet

    def collect(self) -> Iterator[Metric]:
        yield from _request_metrics(self._requests)
        shards = self._system.statistics()
        yield from _shard_metrics(shards)
        upkeep = self._system.upkeep
        if upkeep is not None:
            environments = [s.environment for s in shards]
            yield from _journal_metrics(upkeep, environments)
            yield from _upkeep_metrics(upkeep, environments)
            yield from _recovery_metrics(upkeep)
        if self._webhooks is not None:
            yield from _webhook_metrics(self._webhooks.statistics())


def _webhook_metrics(endpoints: list[EndpointStatistics]) -> Iterator[Metric]:
    """Each endpoint's backlog against its cap, and its outcomes (WHK-D27, WHK-D28)."""
    labels = ["environment", "endpoint"]
    backlog = GaugeMetricFamily(
        "allotment_webhook_backlog", "Messages waiting for delivery, per endpoint", labels=labels
    )
    cap = GaugeMetricFamily(
        "allotment_webhook_backlog_max",
        "Backlog past which new messages fail at once (they stay in the pull feed)",
        labels=labels,
    )
    delivered = CounterMetricFamily(
        "allotment_webhook_delivered", "Messages delivered (a 2xx answer)", labels=labels
    )
    failed = CounterMetricFamily(
        "allotment_webhook_failed",
        "Messages failed after every retry, or over the backlog cap",
        labels=labels,
    )
    for row in endpoints:
        names = [row.environment, row.endpoint]
        backlog.add_metric(names, row.backlog)
        cap.add_metric(names, row.backlog_max)
        delivered.add_metric(names, row.delivered)
        failed.add_metric(names, row.failed)
    yield from (backlog, cap, delivered, failed)


def _add(family: HistogramMetricFamily, labels: list[str], histogram: Histogram) -> None:
    family.add_metric(labels, histogram.cumulative(), histogram.sum)


def _request_metrics(requests: RequestStatistics) -> Iterator[Metric]:
    total = CounterMetricFamily(
        "allotment_http_requests",
        "HTTP requests answered, by method, route template and status",
        labels=["method", "route", "status"],
    )
    merged: dict[tuple[str, str], Histogram] = {}  # the latency histogram is per route
    for (method, route, status), histogram in list(requests.histograms.items()):
        total.add_metric([method, route, str(status)], histogram.count)
        into = merged.get((method, route))
        if into is None:
            into = merged[(method, route)] = Histogram(histogram.bounds)
        into.counts = [a + b for a, b in zip(into.counts, histogram.counts, strict=True)]
        into.sum += histogram.sum
    yield total
    latency = HistogramMetricFamily(
        "allotment_http_request_duration_seconds",
        "Time from a request's arrival in the app to the end of its answer",
        labels=["method", "route"],
    )
    for (method, route), histogram in merged.items():
        _add(latency, [method, route], histogram)
    yield latency


def _gauge(name: str, documentation: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=["environment"])


def _counter(name: str, documentation: str) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, labels=["environment"])


# Per environment, from `ActorSystem.statistics()`: (name, is a counter, help, value).
_SHARD_METRICS: tuple[tuple[str, bool, str, Callable[[ShardStatistics], float]], ...] = (
    ("allotment_turns", True, "Turns run (reads and changes); rate() gives turns per second",
     lambda s: s.turns),
    ("allotment_customers", False, "Customers in memory", lambda s: s.customers),
    ("allotment_event_keys", False, "Event idempotency keys remembered", lambda s: s.event_keys),
    ("allotment_timers", False, "Customers with a transition scheduled", lambda s: s.timers),
    ("allotment_shard_up", False, "1 while the shard serves, 0 while it waits for a rebuild",
     lambda s: int(s.failure is None)),
    ("allotment_shard_rebuilds", True, "Rebuilds of a failed shard from disk",
     lambda s: s.rebuilds),
    ("allotment_journal_position", False, "Last journal position handed out",
     lambda s: s.journal.position),
    ("allotment_journal_durable_position", False, "Last durable journal position",
     lambda s: s.journal.durable_position),
    ("allotment_journal_pending_bytes", False,
     "Bytes appended to the journal and not yet written: the queue to the disk",
     lambda s: s.journal.pending_bytes),
    ("allotment_journal_pending_bytes_max", False,
     "Pending bytes above which changes are refused with 503",
     lambda s: s.journal.pending_bytes_max),
    ("allotment_audit_buffer_records", False,
     "Check audit records waiting for the next analytics snapshot", lambda s: s.audits.size),
    ("allotment_audit_buffer_records_max", False, "The audit buffer's bound",
     lambda s: s.audits.size_max),
    ("allotment_audit_records", True, "Check audit records buffered", lambda s: s.audits.appended),
    ("allotment_audit_records_dropped", True,
     "Check audit records dropped because the buffer was full (ENT-33)",
     lambda s: s.audits.dropped),
)  # fmt: skip


def _shard_metrics(shards: list[ShardStatistics]) -> Iterator[Metric]:
    for name, counter, documentation, value in _SHARD_METRICS:
        family = (_counter if counter else _gauge)(name, documentation)
        for shard in shards:
            family.add_metric([shard.environment], value(shard))
        yield family


def _journal_metrics(upkeep: Upkeep, environments: list[str]) -> Iterator[Metric]:
    seconds = HistogramMetricFamily(
        "allotment_journal_commit_duration_seconds",
        "Duration of each group commit: one write and, with --durability fsync, one fsync",
        labels=["environment"],
    )
    records = HistogramMetricFamily(
        "allotment_journal_commit_records",
        "Records written per group commit (the batch size)",
        labels=["environment"],
    )
    for environment in environments:
        journal = upkeep.storage.journal(environment)
        _add(seconds, [environment], journal.commit_seconds)
        _add(records, [environment], journal.commit_records)
    yield seconds
    yield records


def _upkeep_metrics(upkeep: Upkeep, environments: list[str]) -> Iterator[Metric]:
    """Every result is exported from the start, at 0, so `increase()` sees its first one."""
    statistics = upkeep.statistics
    checkpoints = CounterMetricFamily(
        "allotment_checkpoints",
        "Checkpoints by result: written, skipped (nothing new since the last one), failed",
        labels=["environment", "result"],
    )
    seconds = HistogramMetricFamily(
        "allotment_checkpoint_duration_seconds",
        "Duration of each checkpoint written",
        labels=["environment"],
    )
    size = _gauge("allotment_checkpoint_size_bytes", "Size of the last snapshot written")
    for environment in environments:
        for result in RESULTS:
            count = statistics.checkpoints.get((environment, result), 0)
            checkpoints.add_metric([environment, result], count)
        histogram = statistics.checkpoint_seconds.get(environment)
        _add(seconds, [environment], histogram or Histogram(DURATION_BUCKETS))
        if environment in statistics.checkpoint_bytes:
            size.add_metric([environment], statistics.checkpoint_bytes[environment])
    yield from (checkpoints, seconds, size)
    runs = CounterMetricFamily(
        "allotment_analytics_runs",
        "Analytics snapshots by result: written, skipped (nothing new since the last one), failed",
        labels=["result"],
    )
    for result in RESULTS:
        runs.add_metric([result], statistics.analytics_runs.get(result, 0))
    yield runs
    analytics = HistogramMetricFamily(
        "allotment_analytics_duration_seconds", "Duration of each analytics snapshot written"
    )
    _add(analytics, [], statistics.analytics_seconds)
    yield analytics


def _recovery_metrics(upkeep: Upkeep) -> Iterator[Metric]:
    """The last recovery of each environment: at start, or a rebuild after a failure."""
    replayed = _gauge(
        "allotment_recovery_records_replayed", "Journal records replayed after the snapshot"
    )
    customers = _gauge("allotment_recovery_customers", "Customers recovered")
    seconds = _gauge("allotment_recovery_duration_seconds", "Duration of the recovery")
    position = _gauge(
        "allotment_recovery_snapshot_position", "Journal position of the snapshot recovered from"
    )
    last = {report.environment: report for report in upkeep.storage.recoveries}
    for environment, report in last.items():
        replayed.add_metric([environment], report.records_replayed)
        customers.add_metric([environment], report.customers)
        seconds.add_metric([environment], report.seconds)
        position.add_metric([environment], report.snapshot_position)
    yield from (replayed, customers, seconds, position)
