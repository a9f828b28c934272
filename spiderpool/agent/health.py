"""Readiness of the agent and its probe endpoints ``/v1/runtime/{startup,readiness,liveness}`` (upstream's paths).

Ready means: every watch cache has synced, the API server answered the last reachability probe, and the agent is
not stopping.  Readiness also gates CNI STATUS (code 50 when not ready) and upstream's ``GET /v1/ipam/healthy``.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from aiohttp import web


@dataclass(slots=True)
class Readiness:
    started: bool = False
    synced: bool = False
    api_reachable: bool = True
    stopping: bool = False

    def problem(self) -> str | None:
        """Why the agent is not ready for ADD, or None when it is."""
        if self.stopping:
            return "the agent is stopping"
        if not self.synced:
            return "the agent's caches of pools, endpoints and pods have not synced yet"
        if not self.api_reachable:
            return "the Kubernetes API server is unreachable"
        return None

    @property
    def ready(self) -> bool:
        return self.problem() is None


def _answer(ok: bool, reason: str | None) -> web.Response:
    body = orjson.dumps("ok" if ok else reason or "not ready")
    return web.Response(status=200 if ok else 500, body=body, content_type="application/json")


def make_health_app(readiness: Readiness) -> web.Application:
    async def startup(_: web.Request) -> web.Response:
        return _answer(readiness.started, "the agent is starting")

    async def ready(_: web.Request) -> web.Response:
        return _answer(readiness.ready, readiness.problem())

    async def liveness(_: web.Request) -> web.Response:
        return _answer(not readiness.stopping, "the agent is stopping")

    app = web.Application()
    app.router.add_get("/v1/runtime/startup", startup)
    app.router.add_get("/v1/runtime/readiness", ready)
    app.router.add_get("/v1/runtime/liveness", liveness)
    return app
