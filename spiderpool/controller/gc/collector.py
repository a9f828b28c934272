"""LeakCollector: the leader's leak collection (event-driven looks, a tracer for deadlines, periodic full scans).

Every trigger comes down to "look at pod name P": a pod event, a node event (the pods on it), a StatefulSet event
(its pods), a pool record appearing or vanishing, an endpoint event, a deadline reached, a full scan.  A look
decides on cached state (:mod:`spiderpool.core.gc_planning`); a holder found leaked is decided again on state read
directly from the API server and only then released (:mod:`spiderpool.controller.gc.release`).  A full scan runs
when ``run()`` starts (start-up and every leadership gain) and every ``scan_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from spiderpool.controller.context import ControllerContext
from spiderpool.controller.gc.release import FreshReads, holdings_of_uid, release_records, remove_endpoint
from spiderpool.controller.gc.scan import (
    GcCaches,
    PodFacts,
    PodKey,
    RecordIndex,
    cached_facts,
    decide,
    holders_of,
    statefulset_name,
)
from spiderpool.controller.gc.tracer import Tracer
from spiderpool.controller.gc.views import policy_of
from spiderpool.core.gc_planning import GcDecision, Holder, Verdict
from spiderpool.k8s.bodies import SpiderIPPool
from spiderpool.k8s.status_plan import AllocateIntent
from spiderpool.k8s.status_writer import PoolStatusWriter
from spiderpool.k8s.watch_cache import WatchEvent, object_key
from spiderpool.k8s.workloads import WorkloadReader

log = logging.getLogger(__name__)

CONFIRMATIONS_PER_WORKER = 8


def _never_allocates(pool: SpiderIPPool, taken: object, intent: AllocateIntent) -> str | None:
    raise RuntimeError("the leak collector never allocates")


class LeakCollector:
    name = "gc"

    def __init__(self, ctx: ControllerContext) -> None:
        self._ctx = ctx
        self._policy = policy_of(ctx.gc, enable_statefulset=ctx.cluster.enable_statefulset)
        self._fresh = FreshReads(reader=WorkloadReader(ctx.api), core=ctx.core, endpoints=ctx.stores.endpoints)
        self.tracer = Tracer(max_entries=ctx.gc.max_pod_entry_db_cap)
        self.index = RecordIndex(self.tracer.mark)
        self.caches: GcCaches | None = None
        self.scans = 0

    async def run(self) -> None:
        if not self._ctx.gc.enabled:
            await asyncio.Event().wait()  # disabled: idle until cancelled
        caches = self.caches = GcCaches.of(self._ctx.api)
        self._wire(caches)
        writer = PoolStatusWriter(self._ctx.stores.ippools, redecide=_never_allocates, cached_pool=caches.pools.get)
        try:
            await caches.start()
            async with asyncio.TaskGroup() as group:
                # Upstream's workers are goroutines blocked on API calls; ours are coroutines, so each configured
                # worker stands for CONFIRMATIONS_PER_WORKER concurrent confirmations (more intents per batched write).
                for number in range(max(1, self._ctx.gc.worker_num) * CONFIRMATIONS_PER_WORKER):
                    group.create_task(self._worker(caches, writer), name=f"gc-worker-{number}")
                group.create_task(self._trace_loop(), name="gc-tracer")
                group.create_task(self._scan_loop(caches), name="gc-scan")
        finally:
            await caches.stop()
            await writer.close()

    def _wire(self, caches: GcCaches) -> None:
        mark = self.tracer.mark
        caches.pools.add_handler(self.index.on_pool_event)
        caches.pods.add_handler(lambda event: mark(object_key(event.object)))
        caches.endpoints.add_handler(lambda event: mark(object_key(event.object)))
        caches.nodes.add_handler(lambda event: self._on_node(caches, event))
        caches.statefulsets.add_handler(lambda event: self._on_statefulset(caches, event))

    def _on_node(self, caches: GcCaches, event: WatchEvent[Any]) -> None:
        if event.type == "MODIFIED" and event.previous is not None \
                and event.previous.get("status") == event.object.get("status"):
            return
        node = event.object["metadata"]["name"]
        for pod in caches.pods.items():
            if pod.get("spec", {}).get("nodeName") == node:
                self.tracer.mark(object_key(pod))
        for endpoint in caches.endpoints.items():
            if endpoint.get("status", {}).get("current", {}).get("node") == node:
                self.tracer.mark(object_key(endpoint))

    def _on_statefulset(self, caches: GcCaches, event: WatchEvent[Any]) -> None:
        namespace, name = object_key(event.object)
        for pod in self.index.pods() + [object_key(e) for e in caches.endpoints.items()]:
            if pod[0] == namespace and pod[1].rpartition("-")[0] == name:
                self.tracer.mark(pod)

    # ------------------------------------------------------------------------------------------------ loops

    async def _trace_loop(self) -> None:
        gap = max(0.05, min(self._ctx.gc.trace_gap, 1.0))
        while True:
            self.tracer.mark_due(time.time())
            self._ctx.metrics.gc_backlog.set(self.tracer.backlog)
            await asyncio.sleep(gap)

    async def _scan_loop(self, caches: GcCaches) -> None:
        while True:
            self.full_scan(caches)
            await asyncio.sleep(self._ctx.gc.scan_interval)

    def full_scan(self, caches: GcCaches) -> int:
        """Decide on every record and endpoint from the caches; the leaks found are queued for confirmation."""
        started = time.perf_counter()
        now, suspects = time.time(), 0
        keys = set(self.index.pods()) | {object_key(endpoint) for endpoint in caches.endpoints.items()}
        for pod in keys:
            facts = cached_facts(caches, pod)
            decisions = self._judge(pod, facts, now)
            if any(decision.verdict is Verdict.RELEASE for _, decision in decisions):
                self.tracer.mark(pod)
                suspects += 1
        self._ctx.metrics.gc_scan_seconds.observe(time.perf_counter() - started)
        self._ctx.metrics.total_ippool_counts.set(len(caches.pools))
        self.scans += 1
        return suspects

    async def _worker(self, caches: GcCaches, writer: PoolStatusWriter) -> None:
        while True:
            pod = self.tracer.take()
            if pod is None:
                await self.tracer.woken.wait()
                continue
            try:
                await self.look(caches, writer, pod)
                self.tracer.succeeded(pod)
            except Exception as error:  # one pod's failure must not stop the collector
                attempts = self.tracer.failed(pod)
                self._ctx.metrics.gc_failure_counts.labels(reason=type(error).__name__).inc()
                log.warning("gc: pod %s/%s: attempt %d failed: %s", *pod, attempts, error)
                if attempts <= self._ctx.gc.pod_entry_max_retries:
                    self.tracer.schedule(pod, time.time() + min(2.0 ** attempts * 0.1, 10.0))

    # ------------------------------------------------------------------------------------------------ one pod

    def _judge(self, pod: PodKey, facts: PodFacts, now: float) -> list[tuple[Holder, GcDecision]]:
        judged = []
        for holder in holders_of(self.index.records_of(pod), pod, facts.endpoint):
            decision = decide(holder, facts, policy=self._policy, now=now, leak_since=self.tracer.known_since(holder))
            if decision.verdict is Verdict.KEEP:
                self.tracer.forget(holder)
            else:
                self.tracer.leak_since(holder, now)
                if decision.verdict is Verdict.TRACE and decision.until is not None:
                    self.tracer.schedule(pod, decision.until)
            judged.append((holder, decision))
        return judged

    async def look(self, caches: GcCaches, writer: PoolStatusWriter, pod: PodKey) -> int:
        """Decide on the holders of ``pod``; release those leaked (confirmed by direct reads); how many records."""
        now = time.time()
        cached = self._judge(pod, cached_facts(caches, pod), now)
        if not any(decision.verdict is Verdict.RELEASE for _, decision in cached):
            return 0
        fresh = await self._fresh.facts(pod)
        if statefulset_name(fresh.pod, fresh.endpoint) and fresh.statefulset is None:
            log.info("gc: pod %s/%s: its StatefulSet is gone", *pod)
        leaked: dict[str, str] = {}
        for holder, decision in self._judge(pod, fresh, time.time()):
            if decision.verdict is Verdict.RELEASE:
                leaked.setdefault(holder.pod_uid, decision.reason)
        released = 0
        for uid, reason in leaked.items():
            released += await self._release(writer, pod, uid, reason=reason, facts=fresh)
        return released

    async def _release(self, writer: PoolStatusWriter, pod: PodKey, uid: str, *, reason: str, facts: PodFacts) -> int:
        records = self.index.records_of(pod)
        holdings = holdings_of_uid(records, facts.endpoint, pod_uid=uid)
        outcomes = await release_records(writer, holdings, pod_uid=uid)
        removed = sum(1 for outcome in outcomes if outcome.removed)
        if facts.endpoint is not None:
            await remove_endpoint(self._ctx.stores.endpoints, facts.endpoint, pod_uid=uid)
        now = time.time()
        for _pool, ip, record_uid in records:
            holder = Holder(pod=f"{pod[0]}/{pod[1]}", pod_uid=record_uid, ip=ip)
            since = self.tracer.known_since(holder)
            if record_uid == uid and since is not None:
                self._ctx.metrics.gc_reclaim_seconds.observe(max(0.0, now - since))
            if record_uid == uid:
                self.tracer.forget(holder)
        self.tracer.forget(Holder(pod=f"{pod[0]}/{pod[1]}", pod_uid=uid))
        if removed:
            self._ctx.metrics.gc_counts.labels(reason=reason).inc(removed)
            log.info("gc: pod %s/%s (uid %s): released %d records (%s)", *pod, uid, removed, reason)
        return removed
