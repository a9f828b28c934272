"""The controller's Prometheus metrics (upstream's documented snake_case names; counters exported with ``_total``).

One registry per controller instance (tests run several in one process). Components receive this object through
``ControllerContext`` and count where things happen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from spiderpool.k8s.status_writer import WriterStats

# Reclaim latency: from the moment a record became a leak (grace period over, pod gone) to its durable release.
RECLAIM_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0)


class ControllerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.gc_counts = Counter("spiderpool_ip_gc_counts", "Addresses released by leak collection", ["reason"],
                                 registry=r)
        self.gc_failure_counts = Counter("spiderpool_ip_gc_failure_counts", "Leak releases that failed", ["reason"],
                                         registry=r)
        self.gc_reclaim_seconds = Histogram("spiderpool_ip_gc_reclaim_latency_seconds",
                                            "Time from a record becoming a leak to its durable release",
                                            buckets=RECLAIM_BUCKETS, registry=r)
        self.gc_backlog = Gauge("spiderpool_ip_gc_backlog", "Records observed as leaks and not yet released",
                                registry=r)
        self.gc_scan_seconds = Histogram("spiderpool_ip_gc_scan_duration_seconds", "Duration of a full scan",
                                         registry=r)
        self.total_ippool_counts = Gauge("spiderpool_total_ippool_counts", "SpiderIPPools in the cluster",
                                         registry=r)
        self.total_subnet_counts = Gauge("spiderpool_total_subnet_counts", "SpiderSubnets in the cluster",
                                         registry=r)
        self.webhook_requests = Counter("spiderpool_webhook_requests", "Admission requests answered",
                                        ["kind", "operation", "allowed"], registry=r)
        self.is_leader = Gauge("spiderpool_controller_is_leader", "1 while this replica holds the lease",
                               registry=r)
        self.component_up = Gauge("spiderpool_controller_component_up",
                                  "1 while a unit of the leader's work runs here; 0 while it is down, restarting or "
                                  "not running on this replica", ["component"], registry=r)
        self.component_failures = Counter("spiderpool_controller_component_failures",
                                          "Failures of a unit of the leader's work (each followed by a restart)",
                                          ["component"], registry=r)

    def watch_combiner(self, stats: Callable[[], WriterStats]) -> None:
        """Export the record combiner's writer counters (read at every scrape)."""
        self.registry.register(_CombinerCollector(stats))


_COMBINER_COUNTERS: Final = (
    ("write_requests", "pool status updates the record combiner sent (409s included)"),
    ("conflicts", "record combiner updates that lost a compare-and-swap race"),
    ("intents_committed", "agents' pool records the record combiner made durable"),
    ("intents_failed", "agents' pool records the record combiner could not write (the agent writes them itself)"),
)


class _CombinerCollector(Collector):
    def __init__(self, stats: Callable[[], WriterStats]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        stats = self._stats()
        for name, help_text in _COMBINER_COUNTERS:
            yield CounterMetricFamily(f"spiderpool_record_combiner_{name}", help_text, value=getattr(stats, name))
        yield GaugeMetricFamily("spiderpool_record_combiner_largest_batch",
                                "most agents' records carried by one pool status update", value=stats.largest_batch)
