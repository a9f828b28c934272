"""What the collector sees: watch caches of pools, endpoints, pods, nodes and StatefulSets, an index of the pool
records by pod, and the cached (not yet confirmed) decisions for one pod name.

The index follows the pool cache: each pool event is diffed against the records the index holds for that pool, and
the pods of new or removed records are reported to ``on_pod`` so the collector looks at them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from spiderpool.controller.gc.views import (
    endpoint_seen,
    endpoint_uid,
    node_state,
    pod_seen,
    statefulset_seen,
)
from spiderpool.core.allocations import AllocationsFormatError
from spiderpool.core.gc_planning import GcDecision, GcPolicy, Holder, Observation, plan
from spiderpool.core.record_text import DecodedRecords, RecordsCodecs, changed_addresses
from spiderpool.k8s.bodies import Node, Pod, SpiderEndpoint, SpiderIPPool
from spiderpool.k8s.client import ApiClient
from spiderpool.k8s.statefulsets import statefulset_source
from spiderpool.k8s.store import ENDPOINT, IPPOOL
from spiderpool.k8s.watch_cache import WatchCache, WatchEvent, custom_object_source, node_source, pod_source

PodKey = tuple[str, str]  # (namespace, name)
RecordKey = tuple[str, str, str]  # (pool, ip, pod uid)
_NO_RECORDS = DecodedRecords(None, {}, [])


def pod_key_of(pod: str) -> PodKey:
    namespace, _, name = pod.partition("/")
    return namespace, name


class RecordIndex:
    """Pool records by pod name, kept in step with the pool cache.

    Each pool's status is decoded incrementally and applied as its difference from the last event's: an event costs
    the collector Python work in proportion to the records that changed, not to the pool's size.
    """

    def __init__(self, on_pod: Callable[[PodKey], None]) -> None:
        self._by_pool: dict[str, DecodedRecords] = {}
        self._by_pod: dict[PodKey, set[RecordKey]] = {}
        self._codecs = RecordsCodecs()
        self._on_pod = on_pod
        self.malformed: set[str] = set()

    def on_pool_event(self, event: WatchEvent[SpiderIPPool]) -> None:
        name = event.object["metadata"]["name"]
        records = _NO_RECORDS
        if event.type == "DELETED":
            self._codecs.forget(name)
        else:
            try:
                records = self._codecs.of(name).decode(event.object.get("status", {}).get("allocatedIPs"))
            except AllocationsFormatError:
                self.malformed.add(name)  # never guess at a record we cannot read: leave the pool alone
                return
            self.malformed.discard(name)
        before = self._by_pool.get(name, _NO_RECORDS)
        gone, came = changed_addresses(before, records)
        for ip in (*gone, *(ip for ip in came if ip in before.records)):
            record = before.records[ip]
            pod = pod_key_of(record.pod)
            self._by_pod.get(pod, set()).discard((name, ip, record.pod_uid))
            self._on_pod(pod)
        for ip in came:
            record = records.records[ip]
            pod = pod_key_of(record.pod)
            self._by_pod.setdefault(pod, set()).add((name, ip, record.pod_uid))
            self._on_pod(pod)
        self._by_pool[name] = records

    def records_of(self, pod: PodKey) -> set[RecordKey]:
        return set(self._by_pod.get(pod, ()))

    def pods(self) -> list[PodKey]:
        return [pod for pod, records in self._by_pod.items() if records]

    def __len__(self) -> int:
        return sum(len(decoded.records) for decoded in self._by_pool.values())


@dataclass(slots=True)
class GcCaches:
    pools: WatchCache[SpiderIPPool]
    endpoints: WatchCache[SpiderEndpoint]
    pods: WatchCache[Pod]
    nodes: WatchCache[Node]
    statefulsets: WatchCache[dict[str, Any]]
    started: list[WatchCache[Any]] = field(default_factory=list)

    @classmethod
    def of(cls, api: ApiClient) -> GcCaches:
        return cls(
            pools=WatchCache(custom_object_source(api, IPPOOL), name="gc-ippools"),
            endpoints=WatchCache(custom_object_source(api, ENDPOINT), name="gc-endpoints"),
            pods=WatchCache(pod_source(api), name="gc-pods"),
            nodes=WatchCache(node_source(api), name="gc-nodes"),
            statefulsets=WatchCache(statefulset_source(api), name="gc-statefulsets"),
        )

    async def start(self) -> None:
        # Pods, nodes and StatefulSets first: a record must never be judged against a cache that has not listed yet.
        for cache in (self.pods, self.nodes, self.statefulsets, self.endpoints, self.pools):
            await cache.start()
            self.started.append(cache)

    async def stop(self) -> None:
        caches, self.started = self.started, []
        await asyncio.gather(*(cache.stop() for cache in caches), return_exceptions=True)


@dataclass(frozen=True, slots=True)
class PodFacts:
    """The raw objects one pod name's decisions are made on (from the caches or read directly)."""

    pod: Mapping[str, Any] | None
    node: Mapping[str, Any] | None
    endpoint: SpiderEndpoint | None
    statefulset: Mapping[str, Any] | None


def statefulset_name(facts_pod: Mapping[str, Any] | None, endpoint: SpiderEndpoint | None) -> str | None:
    if facts_pod is not None:
        seen = pod_seen(facts_pod).statefulset
        if seen:
            return seen
    return endpoint_seen(endpoint).statefulset if endpoint is not None else None


def node_name_of(pod: Mapping[str, Any] | None, endpoint: SpiderEndpoint | None) -> str:
    """The pod's node, else the node its endpoint was last allocated on."""
    if pod is not None and pod.get("spec", {}).get("nodeName"):
        return str(pod["spec"]["nodeName"])
    return str(endpoint.get("status", {}).get("current", {}).get("node") or "") if endpoint is not None else ""


def cached_facts(caches: GcCaches, pod: PodKey) -> PodFacts:
    namespace, name = pod
    found = caches.pods.get(name, namespace=namespace)
    endpoint = caches.endpoints.get(name, namespace=namespace)
    node_name = node_name_of(found, endpoint)
    node = caches.nodes.get(node_name) if node_name else None
    sts = statefulset_name(found, endpoint)
    statefulset = caches.statefulsets.get(sts, namespace=namespace) if sts else None
    return PodFacts(pod=found, node=node if node_name else {"status": {}}, endpoint=endpoint, statefulset=statefulset)


def holders_of(records: Iterable[RecordKey], pod: PodKey, endpoint: SpiderEndpoint | None) -> list[Holder]:
    """One holder per record, plus the endpoint's own (no address) when it names a UID."""
    text = f"{pod[0]}/{pod[1]}"
    holders = [Holder(pod=text, pod_uid=uid, ip=ip) for _, ip, uid in records]
    if endpoint is not None and endpoint_uid(endpoint):
        holders.append(Holder(pod=text, pod_uid=endpoint_uid(endpoint)))
    return holders


def decide(holder: Holder, facts: PodFacts, *, policy: GcPolicy, now: float, leak_since: float | None
           ) -> GcDecision:
    seen = Observation(
        pod=None if facts.pod is None else pod_seen(facts.pod),
        node=node_state(facts.node),
        endpoint=None if facts.endpoint is None else endpoint_seen(facts.endpoint),
        statefulset=statefulset_seen(facts.statefulset),
        now=now,
        leak_since=leak_since,
    )
    return plan(holder, seen, policy)
