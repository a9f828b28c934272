"""Upstream's ``GET /v1/coordinator/config`` on the agent's unix socket: what upstream's ``coordinator`` plugin reads.

The body (``{"podName", "podNamespace"}``) names the pod; the answer is ``models.CoordinatorConfig`` built from the
first SpiderCoordinator, which must be ``Synced``, with the pod's ``ipam.spidernet.io/default-route-nic``
annotation overriding ``podDefaultRouteNIC``. Failures are upstream's: HTTP 500 with a JSON string.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

from spiderpool.agent.pods import PodLookup
from spiderpool.core.coordinator_config import CoordinatorNotReady, coordinator_config, ready_coordinator
from spiderpool.core.coordinator_spec import SYNCED
from spiderpool.k8s.bodies import SpiderCoordinator
from spiderpool.k8s.store import CustomObjectStore, StoreError
from spiderpool.k8s.watch_cache import WatchCache


def _error(message: str) -> web.Response:
    return web.Response(status=500, body=orjson.dumps(message), content_type="application/json")


class CoordinatorApi:
    def __init__(self, coordinators: CustomObjectStore[SpiderCoordinator], pods: PodLookup,
                 cache: WatchCache[SpiderCoordinator] | None = None) -> None:
        self._coordinators = coordinators
        self._pods = pods
        self._cache = cache

    async def _ready(self) -> Mapping[str, Any]:
        """The first SpiderCoordinator, Synced: from the watch cache when it has a Synced one first (no round trip
        per CNI call), else read now (a cache that lags must not refuse a coordinator just made ready)."""
        if self._cache is not None:
            cached = sorted(self._cache.items(), key=lambda item: str(item["metadata"]["name"]))
            if cached and (cached[0].get("status") or {}).get("phase") == SYNCED:
                return cached[0]
        listed = await self._coordinators.list()
        return ready_coordinator([dict(item) for item in listed.items])

    async def lookup(self, namespace: str, name: str, *, with_pod: bool = True) -> dict[str, Any]:
        """The config for one pod; ``CoordinatorNotReady`` (upstream's message) or ``StoreError`` when none.
        ``with_pod=False`` skips the pod (its annotation changes nothing a DEL needs)."""
        coordinator = await self._ready()
        if not with_pod:
            return coordinator_config(coordinator, {})
        pod = await self._pods.for_release(namespace, name) if name else None
        if pod is None:
            raise CoordinatorNotReady(f"failed to get pod {namespace}/{name}")
        annotations = pod["metadata"].get("annotations") or {}
        return coordinator_config(coordinator, annotations)

    async def config(self, request: web.Request) -> web.Response:
        try:
            body: Any = orjson.loads(await request.read() or b"{}")
        except orjson.JSONDecodeError as error:
            return web.Response(status=400, body=orjson.dumps(f"request body is not valid JSON: {error}"),
                                content_type="application/json")
        body = body if isinstance(body, dict) else {}
        namespace, name = str(body.get("podNamespace") or ""), str(body.get("podName") or "")
        try:
            config = await self.lookup(namespace, name)
        except (StoreError, CoordinatorNotReady) as error:
            return _error(str(error))
        return web.Response(body=orjson.dumps(config), content_type="application/json")


def add_coordinator_route(app: web.Application, coordinators: CustomObjectStore[SpiderCoordinator],
                          pods: PodLookup, cache: WatchCache[SpiderCoordinator] | None = None) -> CoordinatorApi:
    api = CoordinatorApi(coordinators, pods, cache)
    app.router.add_get("/v1/coordinator/config", api.config)
    return api
