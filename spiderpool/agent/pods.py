"""Finding the pod of a CNI request: this node's pod watch cache first, one direct read when the cache misses.

A CNI ADD can arrive before the watch has delivered the pod (the runtime is faster than the apiserver's fan-out).
Waiting for the watch would cost an ADD up to the watch's lag; one direct read costs a round trip and is at least as
fresh, so a miss reads the pod at once.  DEL never waits either: a pod missing from the cache is usually gone, and
one read confirms it.
"""

from __future__ import annotations

from dataclasses import dataclass

from spiderpool.k8s.bodies import Pod
from spiderpool.k8s.watch_cache import WatchCache
from spiderpool.k8s.workloads import WorkloadReader


@dataclass(slots=True)
class PodLookupStats:
    """How the lookups of ADDs were answered: from the watch cache, or by a direct read after a miss."""

    cache_hits: int = 0
    direct_reads: int = 0


class PodLookup:
    def __init__(self, cache: WatchCache[Pod], reader: WorkloadReader) -> None:
        self._cache = cache
        self._reader = reader
        self.stats = PodLookupStats()

    def cached(self, namespace: str, name: str) -> Pod | None:
        return self._cache.get(name, namespace=namespace)

    def _matching(self, namespace: str, name: str, uid: str | None) -> Pod | None:
        pod = self._cache.get(name, namespace=namespace)
        if pod is None or (uid and pod["metadata"].get("uid") != uid):
            return None
        return pod

    async def for_add(self, namespace: str, name: str, uid: str | None) -> Pod | None:
        """The pod (of ``uid`` when given) from the cache, else one direct read at once (None if it does not exist).

        The direct read may return a pod of another UID (the name was reused): the caller judges it.
        """
        found = self._matching(namespace, name, uid)
        if found is not None:
            self.stats.cache_hits += 1
            return found
        self.stats.direct_reads += 1
        return await self._reader.pod(namespace, name)

    async def for_release(self, namespace: str, name: str) -> Pod | None:
        """The pod now: the cached one, else one direct read (None when it no longer exists)."""
        found = self._cache.get(name, namespace=namespace)
        if found is not None:
            return found
        return await self._reader.pod(namespace, name)
