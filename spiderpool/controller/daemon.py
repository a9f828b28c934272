"""The spiderpool-controller process: webhooks on every replica, leader components on the Lease holder only."""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from collections.abc import Sequence
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from spiderpool.cluster_config import load_cluster_settings
from spiderpool.controller.certificates import generate_serving_certificate
from spiderpool.controller.context import ClusterFlags, ControllerContext, LeaderComponent
from spiderpool.controller.coordinator import CoordinatorStatusController
from spiderpool.controller.gc.collector import LeakCollector
from spiderpool.controller.health import ControllerHealth, make_health_app, make_metrics_app
from spiderpool.controller.leader import LeaderElector
from spiderpool.controller.multus_configs import MultusConfigController
from spiderpool.controller.pool_lifecycle import PoolLifecycle
from spiderpool.controller.settings import gc_settings_from_env, leader_settings_from_env
from spiderpool.controller.subnets.controller import SubnetController
from spiderpool.controller.webhook_registration import DEFAULT_NAME, WebhookRegistration
from spiderpool.controller.webhook_server import make_webhook_app, server_ssl_context, start_site
from spiderpool.controller.webhooks.deps import WebhookDeps
from spiderpool.controller.webhooks.ledger import AdmissionLedger
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


def leader_components(ctx: ControllerContext) -> list[LeaderComponent]:
    """What runs on the Lease holder only: leak collection, pool lifecycle, subnets and their auto pools, the
    NetworkAttachmentDefinitions of SpiderMultusConfigs and the SpiderCoordinator status."""
    return [LeakCollector(ctx), PoolLifecycle(ctx), SubnetController(ctx), MultusConfigController(ctx),
            CoordinatorStatusController(ctx)]


async def run_components(components: Sequence[LeaderComponent]) -> None:
    """Run every component until cancelled; one that fails is logged and the others go on."""
    async with asyncio.TaskGroup() as group:
        for component in components:
            group.create_task(_guarded(component), name=f"leader-{component.name}")


async def _guarded(component: LeaderComponent) -> None:
    try:
        await component.run()
    except Exception:
        log.exception("leader component %s failed", component.name)


class Controller:
    def __init__(self, options: ControllerOptions) -> None:
        self.options = options
        self.health = ControllerHealth()

    async def run(self, stop: asyncio.Event) -> None:
        async with AsyncExitStack() as stack:
            api = make_api_client(kubeconfig=self.options.kubeconfig)
            stack.push_async_callback(api.close)
            ctx = ControllerContext(api=api, stores=SpiderStores(api), core=CoreObjects(api),
                                    gc=gc_settings_from_env(), cluster=cluster_flags(self.options.config_dir))
            settings = leader_settings_from_env()
            registration = await self._serve(stack, ctx, namespace=settings.namespace, identity=settings.identity)
            elector = LeaderElector(LeaseStore(api, namespace=settings.namespace), settings,
                                    on_change=lambda leading: ctx.metrics.is_leader.set(int(leading)))
            leading = asyncio.create_task(elector.run(lambda: self._lead(ctx, registration)), name="elector")
            self.health.started = True
            await stop.wait()
            self.health.stopping = True
            leading.cancel()
            with suppress(asyncio.CancelledError):
                await leading
            if registration is not None:
                await registration.unregister()

    async def _lead(self, ctx: ControllerContext, registration: WebhookRegistration | None) -> None:
        if registration is not None and self.options.register_webhooks == "leader":
            await registration.register()
        await run_components(leader_components(ctx))
        await asyncio.Event().wait()  # hold leadership even when no component is installed

    async def _serve(self, stack: AsyncExitStack, ctx: ControllerContext, *, namespace: str, identity: str
                     ) -> WebhookRegistration | None:
        host = self.options.webhook_host
        cert_file, key_file, ca_pem = self._tls(stack, host)
        deps = WebhookDeps(stores=ctx.stores, ledger=AdmissionLedger(LeaseStore(ctx.api, namespace=namespace)),
                           cluster=ctx.cluster, nads=NetworkAttachments(ctx.api))
        runner, port = await start_site(make_webhook_app(deps, ctx.metrics), host=host, port=self.options.webhook_port,
                                        ssl_context=server_ssl_context(cert_file=cert_file, key_file=key_file))
        stack.push_async_callback(runner.cleanup)
        self.health.webhook_serving = True
        for app, port_option in ((make_health_app(self.health), self.options.health_port),
                                 (make_metrics_app(ctx.metrics), self.options.metrics_port)):
            if port_option:
                await self._start_plain(stack, app, port=port_option)
        log.info("webhook server on https://%s:%d", host, port)
        print(f"WEBHOOK https://{host}:{port}", flush=True)
        mode = self.options.register_webhooks
        if mode == "none":
            return None
        name = DEFAULT_NAME if mode == "leader" else f"{DEFAULT_NAME}-{identity}"
        registration = WebhookRegistration(WebhookConfigurations(ctx.api), name=name,
                                           base_url=f"https://{host}:{port}", ca_pem=ca_pem)
        if mode == "replica":
            await registration.register()
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
