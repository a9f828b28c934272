"""The spiderpool-controller process: webhooks on every replica, leader work on the Lease holder only.

The leader's work (webhook registration in ``leader`` mode, leak collection, pool lifecycle, subnets) runs
supervised (``supervision``): a unit that fails is restarted with backoff and readiness says so meanwhile; one that
stays down steps the elector down.  The elector itself is watched: if it ever stops, the process ends with an error.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from collections.abc import Callable
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from aiohttp import web

from spiderpool.cluster_config import load_cluster_settings
from spiderpool.controller.certificates import generate_serving_certificate
from spiderpool.controller.combiner import RecordCombiner
from spiderpool.controller.context import ClusterFlags, ControllerContext, LeaderComponent
from spiderpool.controller.coordinator import CoordinatorStatusController
from spiderpool.controller.gc.collector import LeakCollector
from spiderpool.controller.health import ControllerHealth, make_health_app, make_metrics_app
from spiderpool.controller.leader import LeaderElector
from spiderpool.controller.multus_configs import MultusConfigController
from spiderpool.controller.pool_lifecycle import PoolLifecycle
from spiderpool.controller.settings import gc_settings_from_env, leader_settings_from_env
from spiderpool.controller.subnets.controller import SubnetController
from spiderpool.controller.supervision import Backoff, Ready, Unit, run_supervised
from spiderpool.controller.webhook_registration import DEFAULT_NAME, WebhookRegistration
from spiderpool.controller.webhook_server import make_webhook_app, server_ssl_context, start_site
from spiderpool.controller.webhooks.deps import WebhookDeps
from spiderpool.controller.webhooks.ledger import AdmissionLedger
from spiderpool.k8s.access_reviews import CallerCache
from spiderpool.k8s.admission_registration import WebhookConfigurations
from spiderpool.k8s.client import make_api_client
from spiderpool.k8s.core_objects import CoreObjects
from spiderpool.k8s.leases import LeaseStore
from spiderpool.k8s.network_attachments import NetworkAttachments
from spiderpool.k8s.store import SpiderStores

log = logging.getLogger(__name__)

@dataclass(frozen=True, slots=True)
class ControllerOptions:
    kubeconfig: Path | None
    webhook_host: str = "127.0.0.1"
    webhook_port: int = 5722
    health_port: int = 5720
    metrics_port: int = 5721
    config_dir: Path | None = None
    # leader: the Lease holder points the shared configurations at itself; replica: each replica registers its own
    # (both are called for every request); none: the chart provides them.
    register_webhooks: str = "leader"
    # (certificate chain, key, CA) given by the chart or cert-manager; None: a self-signed one generated at start-up.
    tls_files: tuple[Path, Path, Path | None] | None = None


def cluster_flags(config_dir: Path | None) -> ClusterFlags:
    """The spiderpool-conf settings mounted at ``config_dir`` (defaults when absent), read as the agent reads them."""
    return load_cluster_settings(config_dir, os.environ)


def leader_units(ctx: ControllerContext, registration: WebhookRegistration | None) -> list[Unit]:
    """What runs on the Lease holder only: the webhook registration (``leader`` mode), leak collection, pool
    lifecycle, subnets and their auto pools, the NetworkAttachmentDefinitions of SpiderMultusConfigs and the
    SpiderCoordinator status.  Every (re)start of a component runs a fresh instance."""
    factories: list[tuple[str, Callable[[], LeaderComponent]]] = [
        (LeakCollector.name, lambda: LeakCollector(ctx)), (PoolLifecycle.name, lambda: PoolLifecycle(ctx)),
        (SubnetController.name, lambda: SubnetController(ctx)),
        (MultusConfigController.name, lambda: MultusConfigController(ctx)),
        (CoordinatorStatusController.name, lambda: CoordinatorStatusController(ctx))]
    units = [Unit(name, partial(_run_component, make)) for name, make in factories]
    if registration is not None:
        units.insert(0, Unit("webhook-registration", partial(_hold_registration, registration)))
    return units


async def _run_component(make: Callable[[], LeaderComponent], ready: Ready) -> None:
    component = make()
    ready()
    await component.run()


async def _hold_registration(registration: WebhookRegistration, ready: Ready) -> None:
    await registration.register()
    ready()
    await asyncio.Event().wait()


class ControllerFailed(RuntimeError):
    """The elector stopped: this replica can neither lead nor follow (the process exits 1)."""


class Controller:
    def __init__(self, options: ControllerOptions, *, backoff: Backoff | None = None) -> None:
        self.options = options
        self.health = ControllerHealth()
        self.backoff = backoff or Backoff()

    async def run(self, stop: asyncio.Event) -> None:
        async with AsyncExitStack() as stack:
            api = await make_api_client(kubeconfig=self.options.kubeconfig)
            stack.push_async_callback(api.close)
            ctx = ControllerContext(api=api, stores=SpiderStores(api), core=CoreObjects(api),
                                    gc=gc_settings_from_env(), cluster=cluster_flags(self.options.config_dir))
            settings = leader_settings_from_env()
            registration = await self._serve(stack, ctx, namespace=settings.namespace, identity=settings.identity)
            elector = self.health.elector = LeaderElector(
                LeaseStore(api, namespace=settings.namespace), settings,
                on_change=lambda leading: ctx.metrics.is_leader.set(int(leading)))
            self._watch_work(ctx)
            leader_registration = registration if self.options.register_webhooks == "leader" else None
            units = partial(leader_units, ctx, leader_registration)
            leading = asyncio.create_task(elector.run(
                lambda: run_supervised(units(), self.health.work, backoff=self.backoff,
                                       give_up_after=settings.renew_deadline)), name="elector")
            self.health.started = True  # the startup probe's answer (lost in a377308: kubelet restarted the pod)
            stopping = asyncio.create_task(stop.wait(), name="stop-signal")
            await asyncio.wait({leading, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            failure = await self._end_election(leading)
            if registration is not None:
                await registration.unregister()
            if failure is not None:
                raise ControllerFailed(self.health.failed) from failure

    async def _end_election(self, leading: asyncio.Task[None]) -> BaseException | None:
        """Stop the elector (releasing the Lease); what ended it when it stopped by itself, else None."""
        if not leading.done():
            self.health.stopping = True
            leading.cancel()
            with suppress(asyncio.CancelledError):
                await leading
            return None
        failure = leading.exception() or RuntimeError("the elector returned")
        self.health.failed = f"leader election stopped: {failure!r}"
        log.error("%s; exiting", self.health.failed)
        return failure

    def _watch_work(self, ctx: ControllerContext) -> None:
        work = self.health.work
        work.on_change = lambda name, up: ctx.metrics.component_up.labels(component=name).set(int(up))
        work.on_failure = lambda name: ctx.metrics.component_failures.labels(component=name).inc()

    async def _serve(self, stack: AsyncExitStack, ctx: ControllerContext, *, namespace: str, identity: str
                     ) -> WebhookRegistration | None:
        host = self.options.webhook_host
        cert_file, key_file, ca_pem = self._tls(stack, host)
        deps = WebhookDeps(stores=ctx.stores, ledger=AdmissionLedger(LeaseStore(ctx.api, namespace=namespace)),
                           cluster=ctx.cluster, nads=NetworkAttachments(ctx.api))
        app = make_webhook_app(deps, ctx.metrics)
        combiner = RecordCombiner(ctx.stores.ippools, CallerCache(ctx.api))
        combiner.add_route(app)
        ctx.metrics.watch_combiner(lambda: combiner.writer.stats)
        stack.push_async_callback(combiner.close)  # after the server stopped taking requests (the stack is LIFO)
        runner, port = await start_site(app, host=host, port=self.options.webhook_port,
                                        ssl_context=server_ssl_context(cert_file=cert_file, key_file=key_file))
        stack.push_async_callback(runner.cleanup)
        self.health.webhook_serving = True
        for app, port_option in ((make_health_app(self.health), self.options.health_port),
                                 (make_metrics_app(ctx.metrics), self.options.metrics_port)):
            if port_option:
                await self._start_plain(stack, app, port=port_option)
        mode = self.options.register_webhooks
        registration = None
        if mode != "none":
            name = DEFAULT_NAME if mode == "leader" else f"{DEFAULT_NAME}-{identity}"
            registration = WebhookRegistration(WebhookConfigurations(ctx.api), name=name,
                                               base_url=f"https://{host}:{port}", ca_pem=ca_pem)
        if registration is not None and mode == "replica":
            await registration.register()
        log.info("WEBHOOK https://%s:%d", host, port)  # serving (and, per replica, registered)
        return registration

    def _tls(self, stack: AsyncExitStack, host: str) -> tuple[Path, Path, bytes]:
        """The serving certificate files and the CA to register: provided ones, else a generated self-signed pair."""
        if self.options.tls_files is not None:
            cert_file, key_file, ca_file = self.options.tls_files
            return cert_file, key_file, ca_file.read_bytes() if ca_file is not None else b""
        certificate = generate_serving_certificate(hosts=(host,))
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="spiderpool-controller-")))
        cert_file, key_file = certificate.write(directory)
        return cert_file, key_file, certificate.ca_pem

    @staticmethod
    async def _start_plain(stack: AsyncExitStack, app: web.Application, *, port: int) -> None:
        runner, _ = await start_site(app, host="0.0.0.0", port=port)
        stack.push_async_callback(runner.cleanup)
