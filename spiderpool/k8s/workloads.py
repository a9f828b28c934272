"""Direct reads of core and workload objects: what the agent needs beyond its watch caches.

The agent watches its own node's pods, but resolving a pod's top controller needs its ReplicaSet or Job, deciding
whether a StatefulSet pod keeps its addresses needs the StatefulSet, and a pod that the watch has not delivered yet
is read once directly.  Objects come back as the plain JSON dicts the server sends (read-only), or None when the
object does not exist; any other failure raises :class:`~spiderpool.k8s.store.StoreError` with the HTTP status.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast

import aiohttp
import orjson
from kubernetes_asyncio.client import ApiClient, AppsV1Api, BatchV1Api, CoreV1Api, VersionApi

from spiderpool.k8s.bodies import Node, Pod
from spiderpool.k8s.store import StoreError
from spiderpool.k8s.watch_cache import ListWatchSource, list_watch_source

__all__ = ["WorkloadReader", "single_node_source"]


async def _read_json(response: aiohttp.ClientResponse, *, what: str) -> dict[str, Any] | None:
    """The body of a 200 response, None for 404; StoreError naming ``what`` otherwise."""
    try:
        body = await response.read()
    finally:
        response.close()
    if response.status == 404:
        return None
    if response.status != 200:
        try:
            message = str(orjson.loads(body).get("message", ""))
        except (orjson.JSONDecodeError, AttributeError):
            message = body[:300].decode(errors="replace")
        raise StoreError(f"get {what}: HTTP {response.status}: {message}", status=response.status)
    document = orjson.loads(body)
    return cast(dict[str, Any], document)


class WorkloadReader:
    """Uncached GETs of pods, ReplicaSets, Jobs and StatefulSets, and a cheap API server reachability probe."""

    def __init__(self, api: ApiClient, *, request_timeout: float = 10.0) -> None:
        self._core = CoreV1Api(api)
        self._apps = AppsV1Api(api)
        self._batch = BatchV1Api(api)
        self._version = VersionApi(api)
        self._timeout = request_timeout

    async def _get(self, method: Callable[..., Awaitable[Any]], namespace: str, name: str, *, what: str
                   ) -> dict[str, Any] | None:
        try:
            response = await method(name, namespace, _preload_content=False, _request_timeout=self._timeout)
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            raise StoreError(f"get {what} {namespace}/{name}: {error or type(error).__name__}") from error
        return await _read_json(response, what=f"{what} {namespace}/{name}")

    async def pod(self, namespace: str, name: str) -> Pod | None:
        return cast(Pod | None, await self._get(self._core.read_namespaced_pod, namespace, name, what="Pod"))

    async def replica_set(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._get(self._apps.read_namespaced_replica_set, namespace, name, what="ReplicaSet")

    async def job(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._get(self._batch.read_namespaced_job, namespace, name, what="Job")

    async def stateful_set(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._get(self._apps.read_namespaced_stateful_set, namespace, name, what="StatefulSet")

    async def reachable(self, *, probe_seconds: float = 3.0) -> bool:
        """True when the API server answers ``GET /version`` within ``probe_seconds``."""
        try:
            response = cast(aiohttp.ClientResponse, await self._version.get_code(
                _preload_content=False, _request_timeout=probe_seconds))
        except (aiohttp.ClientError, OSError, TimeoutError):
            return False
        try:
            await response.read()
        except (aiohttp.ClientError, OSError, TimeoutError):
            return False
        finally:
            response.close()
        return response.status == 200


def single_node_source(api: ApiClient, name: str) -> ListWatchSource[Node]:
    """The Node object ``name`` only (an agent reads its own node's labels, never the others')."""
    source = list_watch_source(CoreV1Api(api).list_node, what=f"node {name}", field_selector=f"metadata.name={name}")
    return cast(ListWatchSource[Node], source)
