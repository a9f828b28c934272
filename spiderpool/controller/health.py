"""Probes ``/v1/runtime/{startup,readiness,liveness}`` (5720) and the Prometheus exposition (5721)."""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from spiderpool.controller.leader import LeaderElector
from spiderpool.controller.metrics import ControllerMetrics
from spiderpool.controller.supervision import WorkStates


@dataclass(slots=True)
class ControllerHealth:
    """Ready: serving webhooks, the API server reachable for the Lease, and, on the leader, every unit of the
    leader's work up (see ``supervision``); a stopped elector fails liveness too."""

    started: bool = False
    webhook_serving: bool = False
    stopping: bool = False
    elector: LeaderElector | None = None
    work: WorkStates = field(default_factory=WorkStates)
    failed: str | None = None

    def problem(self) -> str | None:
        if self.stopping:
            return "the controller is stopping"
        if self.failed is not None:
            return self.failed
        if not self.webhook_serving:
            return "the webhook server is not serving yet"
        if self.elector is not None and self.elector.problem is not None:
            return self.elector.problem
        return self.work.problem()

    def alive(self) -> bool:
        return not self.stopping and self.failed is None


def _answer(ok: bool, reason: str | None) -> web.Response:
    return web.Response(status=200 if ok else 500, body=orjson.dumps("ok" if ok else reason or "not ready"),
                        content_type="application/json")


def make_health_app(health: ControllerHealth) -> web.Application:
    async def startup(_: web.Request) -> web.Response:
        return _answer(health.started, "the controller is starting")

    async def readiness(_: web.Request) -> web.Response:
        problem = health.problem()
        return _answer(problem is None, problem)

    async def liveness(_: web.Request) -> web.Response:
        return _answer(health.alive(), health.failed or "the controller is stopping")

    app = web.Application()
    app.router.add_get("/v1/runtime/startup", startup)
    app.router.add_get("/v1/runtime/readiness", readiness)
    app.router.add_get("/v1/runtime/liveness", liveness)
    return app


def make_metrics_app(metrics: ControllerMetrics) -> web.Application:
    async def exposition(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", exposition)
    return app
