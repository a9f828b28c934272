"""Direct reads of core and workload objects: what the agent needs beyond its watch caches.

The agent watches its own node's pods, but resolving a pod's top controller needs its ReplicaSet or Job, deciding
whether a StatefulSet pod keeps its addresses needs the StatefulSet, and a pod that the watch has not delivered yet
is read once directly.  Objects come back as the plain JSON dicts the server sends (read-only), or None when the
object does not exist; any other failure raises :class:`~spiderpool.k8s.store.StoreError` with the HTTP status.
"""

from __future__ import annotations

from typing import Any, Final, cast

from kubernetes_asyncio.client import ApiClient

from spiderpool.k8s.api_errors import NotFound, StoreError
from spiderpool.k8s.api_requests import request_bytes, request_json
from spiderpool.k8s.bodies import Node, Pod
from spiderpool.k8s.routes import ROUTES, ObjectRoute
from spiderpool.k8s.watch_cache import ListWatchSource, list_watch_source

__all__ = ["WorkloadReader", "single_node_source"]

_POD: Final = ROUTES[("v1", "Pod")]
_REPLICA_SET: Final = ROUTES[("apps/v1", "ReplicaSet")]
_JOB: Final = ROUTES[("batch/v1", "Job")]
_STATEFUL_SET: Final = ROUTES[("apps/v1", "StatefulSet")]
_NODE: Final = ROUTES[("v1", "Node")]


class WorkloadReader:
    """Uncached GETs of pods, ReplicaSets, Jobs and StatefulSets, and a cheap API server reachability probe."""

    def __init__(self, api: ApiClient, *, request_timeout: float = 10.0) -> None:
        self._api = api
        self._timeout = request_timeout

    async def _get(self, route: ObjectRoute, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return await request_json(self._api, "GET", route.item(name, namespace), timeout=self._timeout,
                                      what=f"get {route.kind} {namespace}/{name}")
        except NotFound:
            return None

    async def pod(self, namespace: str, name: str) -> Pod | None:
        return cast(Pod | None, await self._get(_POD, namespace, name))

    async def replica_set(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._get(_REPLICA_SET, namespace, name)

    async def job(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._get(_JOB, namespace, name)

    async def stateful_set(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._get(_STATEFUL_SET, namespace, name)

    async def reachable(self, *, probe_seconds: float = 3.0) -> bool:
        """True when the API server answers ``GET /version`` within ``probe_seconds``."""
        try:
            await request_bytes(self._api, "GET", "/version", what="get /version", timeout=probe_seconds)
        except StoreError:
            return False
        return True


def single_node_source(api: ApiClient, name: str) -> ListWatchSource[Node]:
    """The Node object ``name`` only (an agent reads its own node's labels, never the others')."""
    source = list_watch_source(api, _NODE, what=f"node {name}", field_selector=f"metadata.name={name}")
    return cast(ListWatchSource[Node], source)
