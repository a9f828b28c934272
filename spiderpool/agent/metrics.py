"""The agent's Prometheus metrics, with upstream's documented names (snake_case, counters exported with ``_total``).

Allocation and release outcomes are counted where they happen; the status writer's counters and the per-pool usage
gauges are read from the writer and the pool book at scrape time, so they are never kept twice.  Everything lives
in the agent's own registry (several agents may run in one process in tests).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Final

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from spiderpool.agent.combining import CombinerStats
from spiderpool.k8s.status_writer import WriterStats

# Upstream's buckets, plus finer ones below 0.1 s: an allocation here takes milliseconds.
DURATION_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.3, 0.5, 1.0, 3.0, 5.0, 7.0, 10.0, 15.0)

# Failure reasons, as the suffix of the ``..._err_<reason>_counts_total`` counters.
INTERNAL: Final = "internal"
NO_AVAILABLE_POOL: Final = "no_available_pool"
RETRIES_EXHAUSTED: Final = "retries_exhausted"
IP_USED_OUT: Final = "ip_used_out"

_WRITER_COUNTERS: Final = (
    ("write_requests", "status updates sent (compare-and-swap)"),
    ("writes", "status updates that succeeded"),
    ("conflicts", "status updates that lost a compare-and-swap race"),
    ("fresh_reads", "pools read directly from the API server"),
    ("watch_catch_ups", "lost races re-planned on the watch's newer copy of the pool, without a read"),
    ("redecisions", "allocations re-decided because the chosen address was taken"),
    ("transient_errors", "status writes retried after a transient error"),
    ("intents_committed", "allocation and release records made durable"),
    ("intents_failed", "allocation and release records that failed"),
)

PoolUsage = Callable[[], Iterator[tuple[str, int, int]]]
PoolOverlaps = Callable[[], Iterator[tuple[str, str, int]]]
"""(pool, older overlapping pool, addresses of the pool that the older one owns)."""


def _no_overlaps() -> Iterator[tuple[str, str, int]]:
    return iter(())


class _LiveCollector(Collector):
    """Values read at scrape time from the status writer and the pool book."""

    def __init__(self, writer_stats: Callable[[], WriterStats], pool_usage: PoolUsage,
                 overlaps: PoolOverlaps) -> None:
        self._writer_stats = writer_stats
        self._pool_usage = pool_usage
        self._overlaps = overlaps

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        stats = self._writer_stats()
        yield CounterMetricFamily("spiderpool_ipam_allocation_update_ippool_conflict_counts",
                                  "IPPool status updates that lost a compare-and-swap race", value=stats.conflicts)
        for name, help_text in _WRITER_COUNTERS:
            yield CounterMetricFamily(f"spiderpool_status_writer_{name}", help_text, value=getattr(stats, name))
        yield GaugeMetricFamily("spiderpool_status_writer_largest_batch", "most intents carried by one status update",
                                value=stats.largest_batch)
        total = GaugeMetricFamily("spiderpool_ippool_total_ip_counts", "addresses of the pool (ips - excludeIPs)",
                                  labels=["pool"])
        allocated = GaugeMetricFamily("spiderpool_ippool_allocated_ip_counts", "allocation records of the pool",
                                      labels=["pool"])
        for pool, total_count, allocated_count in self._pool_usage():
            total.add_metric([pool], total_count)
            allocated.add_metric([pool], allocated_count)
        yield total
        yield allocated
        overlap = GaugeMetricFamily("spiderpool_ippool_overlap_addresses",
                                    "addresses of the pool that an older overlapping pool owns (not handed out here)",
                                    labels=["pool", "owner"])
        for pool, owner, count in self._overlaps():
            overlap.add_metric([pool, owner], count)
        yield overlap


class _CombinerCollector(Collector):
    """The record combiner path's counters (``spiderpool.agent.combining``), read at scrape time."""

    def __init__(self, stats: Callable[[], CombinerStats]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[CounterMetricFamily]:
        stats = self._stats()
        for name, help_text in _COMBINER_COUNTERS:
            yield CounterMetricFamily(f"spiderpool_record_combiner_{name}", help_text, value=getattr(stats, name))


_COMBINER_COUNTERS = (
    ("combined", "pool records the controller's record combiner wrote for this agent"),
    ("fallbacks", "pool records written directly after the record combiner did not write them"),
    ("unreachable", "requests to the record combiner that got no answer (each pauses the combiner path)"),
)


class _Family:
    """One of upstream's two families (``allocation`` or ``release``): counts, failures by reason, durations."""

    def __init__(self, registry: CollectorRegistry, family: str, reasons: tuple[str, ...]) -> None:
        prefix = f"spiderpool_ipam_{family}"
        self.counts = Counter(f"{prefix}_counts", f"IPAM {family} requests", registry=registry)
        self.failures = Counter(f"{prefix}_failure_counts", f"failed IPAM {family} requests", registry=registry)
        self.errors = {
            reason: Counter(f"{prefix}_err_{reason}_counts", f"IPAM {family} failures: {reason}", registry=registry)
            for reason in reasons
        }
        self.duration = Histogram(f"{prefix}_duration_seconds", f"duration of IPAM {family} requests",
                                  buckets=DURATION_BUCKETS, registry=registry)

    def succeeded(self, seconds: float) -> None:
        self.counts.inc()
        self.duration.observe(seconds)

    def failed(self, seconds: float, reason: str) -> None:
        self.counts.inc()
        self.failures.inc()
        self.duration.observe(seconds)
        if reason in self.errors:
            self.errors[reason].inc()


class AgentMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.allocation = _Family(self.registry, "allocation",
                                  (INTERNAL, NO_AVAILABLE_POOL, RETRIES_EXHAUSTED, IP_USED_OUT))
        self.release = _Family(self.registry, "release", (INTERNAL, RETRIES_EXHAUSTED))
        self.ip_conflicts = Counter("spiderpool_ipam_ip_conflict_counts", "addresses skipped by IP conflict "
                                    "detection (another host answered for them)", ["pool"], registry=self.registry)
        self.gateway_unreachable = Counter("spiderpool_ipam_gateway_unreachable_counts", "ADDs failed by gateway "
                                           "detection (the gateway did not answer)", registry=self.registry)

    def watch(self, *, writer_stats: Callable[[], WriterStats], pool_usage: PoolUsage,
              overlaps: PoolOverlaps = _no_overlaps, combiner_stats: Callable[[], CombinerStats] | None = None
              ) -> None:
        """Export the writer's counters, the pools' usage and their overlaps (read at every scrape)."""
        self.registry.register(_LiveCollector(writer_stats, pool_usage, overlaps))
        if combiner_stats is not None:
            self.registry.register(_CombinerCollector(combiner_stats))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def make_metrics_app(metrics: AgentMetrics) -> web.Application:
    async def handle_metrics(_: web.Request) -> web.Response:
        return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", handle_metrics)
    return app
