"""Finding the pod of a CNI request: this node's pod watch cache first, a direct read when the watch lags.

A CNI ADD can arrive before the watch has delivered the pod (the runtime is faster than the apiserver's fan-out), so
an ADD waits briefly for the cache, then reads the pod once.  DEL never waits: a pod missing from the cache is
usually gone, and one read confirms it.
"""

from __future__ import annotations

import asyncio

from spiderpool.k8s.bodies import Pod
from spiderpool.k8s.watch_cache import WatchCache
from spiderpool.k8s.workloads import WorkloadReader


class PodLookup:
    def __init__(self, cache: WatchCache[Pod], reader: WorkloadReader, *, wait: float = 1.0) -> None:
        self._cache = cache
        self._reader = reader
        self._wait = wait

    def cached(self, namespace: str, name: str) -> Pod | None:
        return self._cache.get(name, namespace=namespace)

    def _matching(self, namespace: str, name: str, uid: str | None) -> Pod | None:
        pod = self._cache.get(name, namespace=namespace)
        if pod is None or (uid and pod["metadata"].get("uid") != uid):
            return None
        return pod

    async def for_add(self, namespace: str, name: str, uid: str | None) -> Pod | None:
        """The pod (of ``uid`` when given), waiting briefly for the watch, then one direct read."""
        found = self._matching(namespace, name, uid)
        if found is not None:
            return found
        try:
            async with asyncio.timeout(self._wait):
                await self._cache.wait_until(lambda _: self._matching(namespace, name, uid) is not None)
        except TimeoutError:
            return await self._reader.pod(namespace, name)
        return self._matching(namespace, name, uid)

    async def for_release(self, namespace: str, name: str) -> Pod | None:
        """The pod now: the cached one, else one direct read (None when it no longer exists)."""
        found = self._cache.get(name, namespace=namespace)
        if found is not None:
            return found
        return await self._reader.pod(namespace, name)
