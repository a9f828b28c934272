"""Upstream's ``GET /v1/coordinator/config`` on the agent's unix socket: what upstream's ``coordinator`` plugin reads.

The body (``{"podName", "podNamespace"}``) names the pod; the answer is ``models.CoordinatorConfig`` built from the
first SpiderCoordinator, which must be ``Synced``, with the pod's ``ipam.spidernet.io/default-route-nic``
annotation overriding ``podDefaultRouteNIC``. Failures are upstream's: HTTP 500 with a JSON string.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from spiderpool.agent.pods import PodLookup
from spiderpool.core.coordinator_config import CoordinatorNotReady, coordinator_config, ready_coordinator
from spiderpool.k8s.bodies import SpiderCoordinator
from spiderpool.k8s.store import CustomObjectStore, StoreError


def _error(message: str) -> web.Response:
    return web.Response(status=500, body=orjson.dumps(message), content_type="application/json")


class CoordinatorApi:
    def __init__(self, coordinators: CustomObjectStore[SpiderCoordinator], pods: PodLookup) -> None:
        self._coordinators = coordinators
        self._pods = pods

    async def lookup(self, namespace: str, name: str, *, with_pod: bool = True) -> dict[str, Any]:
        """The config for one pod; ``CoordinatorNotReady`` (upstream's message) or ``StoreError`` when none.
        ``with_pod=False`` skips the pod (its annotation changes nothing a DEL needs)."""
        listed = await self._coordinators.list()
        coordinator = ready_coordinator([dict(item) for item in listed.items])
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
                          pods: PodLookup) -> CoordinatorApi:
    api = CoordinatorApi(coordinators, pods)
    app.router.add_get("/v1/coordinator/config", api.config)
    return api
