"""Readiness of the agent and its probe endpoints ``/v1/runtime/{startup,readiness,liveness}`` (upstream's paths).

Ready means: every watch cache has synced, the API server answered the last reachability probe, the agent is not
stopping, and its unix socket path is still the socket it bound (see ``socket_claim``); the readiness probe also
connects to that socket.  Readiness also gates CNI STATUS (code 50 when not ready) and upstream's
``GET /v1/ipam/healthy``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import orjson
from aiohttp import web

from spiderpool.agent.socket_claim import SocketClaim

_CONNECT_TIMEOUT = 2.0


@dataclass(slots=True)
class Readiness:
    started: bool = False
    synced: bool = False
    api_reachable: bool = True
    stopping: bool = False
    socket: SocketClaim | None = None

    def problem(self) -> str | None:
        """Why the agent is not ready for ADD, or None when it is."""
        if self.stopping:
            return "the agent is stopping"
        socket_problem = self.socket.problem() if self.socket is not None else None
        if socket_problem is not None:
            return socket_problem
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


async def _connect_problem(claim: SocketClaim) -> str | None:
    """A real connection to the CNI socket, as the CNI executable makes one; None when it is accepted."""
    try:
        async with asyncio.timeout(_CONNECT_TIMEOUT):
            _, writer = await asyncio.open_unix_connection(str(claim.socket_path))
    except (OSError, TimeoutError) as error:
        return f"the CNI socket {claim.socket_path} does not accept connections: {error}"
    writer.close()
    await writer.wait_closed()
    return None


def make_health_app(readiness: Readiness) -> web.Application:
    async def startup(_: web.Request) -> web.Response:
        return _answer(readiness.started, "the agent is starting")

    async def ready(_: web.Request) -> web.Response:
        problem = readiness.problem()
        if problem is None and readiness.socket is not None:
            problem = await _connect_problem(readiness.socket)
        return _answer(problem is None, problem)

    async def liveness(_: web.Request) -> web.Response:
        return _answer(not readiness.stopping, "the agent is stopping")

    app = web.Application()
    app.router.add_get("/v1/runtime/startup", startup)
    app.router.add_get("/v1/runtime/readiness", ready)
    app.router.add_get("/v1/runtime/liveness", liveness)
    return app
