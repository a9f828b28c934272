"""Releasing leaked holders: confirmed against the API server, written so that only the leaked UID loses anything.

Before anything is written the pod, its endpoint, its node and its StatefulSet are read directly (never from a
cache), and the caller decides again on those.  Then every record goes through the pool status writer as a
``ReleaseIntent(ip, pod_uid)`` (removed only while it still names that UID), and the endpoint loses its finalizer and
is deleted only while ``status.current.uid`` is the leaked UID (delete preconditioned on the endpoint object's UID).
Records first, endpoint last: a crash in between leaves an endpoint whose records are gone, which the next look
releases again (every step is idempotent).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterable
from typing import Final

from spiderpool.controller.gc.scan import PodFacts, PodKey, node_name_of, statefulset_name
from spiderpool.controller.gc.views import endpoint_holdings, endpoint_uid
from spiderpool.k8s.bodies import SpiderEndpoint
from spiderpool.k8s.core_objects import ROUTES, CoreObjects
from spiderpool.k8s.status_plan import Released, ReleaseIntent
from spiderpool.k8s.status_writer import PoolStatusWriter
from spiderpool.k8s.store import Conflict, CustomObjectStore, NotFound
from spiderpool.k8s.workloads import WorkloadReader

log = logging.getLogger(__name__)

FINALIZER: Final = "spiderpool.spidernet.io"
_NODE: Final = ROUTES[("v1", "Node")]
_MAX_RACES: Final = 8


class FreshReads:
    """Direct reads of what one pod name's decisions depend on."""

    def __init__(self, *, reader: WorkloadReader, core: CoreObjects, endpoints: CustomObjectStore[SpiderEndpoint]
                 ) -> None:
        self._reader, self._core, self._endpoints = reader, core, endpoints

    async def facts(self, pod: PodKey) -> PodFacts:
        namespace, name = pod
        found, endpoint = await asyncio.gather(self._reader.pod(namespace, name), self._endpoint(namespace, name))
        # Node readiness only gates pods that still exist (terminating ones); a gone pod needs no node read.
        node_name = node_name_of(found, endpoint) if found is not None else ""
        sts = statefulset_name(found, endpoint)
        node, statefulset = await asyncio.gather(
            self._node(node_name), self._reader.stateful_set(namespace, sts) if sts else _nothing())
        return PodFacts(pod=found, node=node if node_name else {"status": {}}, endpoint=endpoint,
                        statefulset=statefulset)

    async def _endpoint(self, namespace: str, name: str) -> SpiderEndpoint | None:
        try:
            return await self._endpoints.get(name, namespace=namespace)
        except NotFound:
            return None

    async def _node(self, name: str) -> dict[str, object] | None:
        if not name:
            return None
        try:
            return await self._core.get(_NODE, name)
        except NotFound:
            return None


async def _nothing() -> None:
    return None


async def release_records(writer: PoolStatusWriter, holdings: Iterable[tuple[str, str]], *, pod_uid: str
                          ) -> list[Released]:
    """Release every (pool, ip) that still names ``pod_uid``; the outcomes say which writes removed a record."""
    by_pool: dict[str, list[str]] = defaultdict(list)
    for pool, ip in holdings:
        by_pool[pool].append(ip)
    futures = [writer.submit(pool, ReleaseIntent(ip, pod_uid)) for pool, ips in by_pool.items() for ip in ips]
    outcomes = await asyncio.gather(*futures)
    return [outcome for outcome in outcomes if isinstance(outcome, Released)]


async def remove_endpoint(endpoints: CustomObjectStore[SpiderEndpoint], endpoint: SpiderEndpoint, *, pod_uid: str
                          ) -> bool:
    """Drop our finalizer and delete the endpoint, only while it still names ``pod_uid``; True when it is gone."""
    meta = endpoint["metadata"]
    namespace, name, object_uid = meta["namespace"], meta["name"], meta.get("uid")
    current: SpiderEndpoint | None = endpoint
    for _ in range(_MAX_RACES):
        if current is None or current["metadata"].get("uid") != object_uid:
            return True  # gone, or replaced by another object of the same name: not ours to touch
        if endpoint_uid(current) != pod_uid:
            return False  # the endpoint now serves another incarnation of the pod: keep it
        finalizers = list(current["metadata"].get("finalizers") or ())
        try:
            if FINALIZER in finalizers:
                kept = [f for f in finalizers if f != FINALIZER]
                current = await endpoints.replace({**current, "metadata": {**current["metadata"], "finalizers": kept}})
            await endpoints.delete(name, namespace=namespace, uid=object_uid,
                                   resource_version=current["metadata"].get("resourceVersion"))
            return True
        except (Conflict, NotFound):
            try:
                current = await endpoints.get(name, namespace=namespace)
            except NotFound:
                current = None
    raise Conflict(f"SpiderEndpoint {namespace}/{name}: lost {_MAX_RACES} races removing it", stale_resource_version="")


def holdings_of_uid(records: Iterable[tuple[str, str, str]], endpoint: SpiderEndpoint | None, *, pod_uid: str
                    ) -> set[tuple[str, str]]:
    """(pool, ip) of every record naming ``pod_uid``, plus what its endpoint lists when it names that UID."""
    held = {(pool, ip) for pool, ip, uid in records if uid == pod_uid}
    if endpoint is not None and endpoint_uid(endpoint) == pod_uid:
        held |= endpoint_holdings(endpoint)
    return held
