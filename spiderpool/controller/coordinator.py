"""CoordinatorStatusController: keeps the ``default`` SpiderCoordinator's status as upstream does.

On every change of the SpiderCoordinator, and every ``resync`` seconds (the cluster facts it depends on change
rarely and have no watch here), the facts are read and ``spiderpool.core.coordinator_status`` decides the status;
it is written (compare-and-swap on the status subresource) only when it differs.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any, Final

import orjson

from spiderpool.controller.context import ControllerContext
from spiderpool.core.coordinator_spec import SPIDER_FINALIZER
from spiderpool.core.coordinator_status import ClusterFacts, kubeadm_cidrs, plan_coordinator_status, static_pod_cidrs
from spiderpool.k8s.cluster_facts import ClusterObjects
from spiderpool.k8s.crd_schema import COORDINATOR
from spiderpool.k8s.store import AlreadyExists, NotFound, StoreError
from spiderpool.k8s.watch_cache import WatchCache, WatchEvent, custom_object_source

log = logging.getLogger(__name__)

DEFAULT_NAME: Final = "default"
CNI_CONF_DIR_ENV: Final = "SPIDERPOOL_CNI_CONFIG_DIR"
CILIUM_CONFIGMAP_ENV: Final = "SPIDERPOOL_CILIUM_CONFIGMAP_NAMESPACE_NAME"
RESYNC_ENV: Final = "SPIDERPOOL_COORDINATOR_RESYNC_SECONDS"
# The default SpiderCoordinator to create when missing (the chart's coordinator.* values), as upstream's
# spiderpool-init does after install; created by the controller because a chart template would be refused by this
# very webhook while no controller is ready yet.
DEFAULT_NAME_ENV: Final = "SPIDERPOOL_DEFAULT_COORDINATOR_NAME"
DEFAULT_SPEC_ENV: Final = "SPIDERPOOL_DEFAULT_COORDINATOR_SPEC"


def default_cni_name(directory: Path) -> str:
    """Upstream's ``GetDefaultCniName``: the network name of the first ``.conf``/``.conflist`` (Multus' skipped)."""
    if not directory.is_dir():
        return ""
    files = sorted(str(p) for p in directory.iterdir()
                   if p.suffix in (".conf", ".conflist") and "00-multus" not in p.name)
    if not files:
        return ""
    document = orjson.loads(Path(files[0]).read_bytes())
    return str(document.get("name", "")) if isinstance(document, dict) else ""


def _by_age(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    live = [item for item in items if not item["metadata"].get("deletionTimestamp")]
    return sorted(live, key=lambda item: item["metadata"].get("creationTimestamp", ""))


class CoordinatorStatusController:
    name = "coordinator-status"

    def __init__(self, ctx: ControllerContext, *, resync: float | None = None, coordinator: str | None = None,
                 cni_conf_dir: Path | None = None) -> None:
        self._ctx = ctx
        self._resync = resync if resync is not None else float(os.environ.get(RESYNC_ENV, "30"))
        self._name = coordinator or os.environ.get(DEFAULT_NAME_ENV) or DEFAULT_NAME
        spec = os.environ.get(DEFAULT_SPEC_ENV)
        self._to_create: dict[str, Any] | None = orjson.loads(spec) if spec else None
        self._objects = ClusterObjects(ctx.api)
        self._cni_dir = cni_conf_dir or Path(os.environ.get(CNI_CONF_DIR_ENV, "/etc/cni/net.d"))
        self._woken = asyncio.Event()

    def _on_event(self, event: WatchEvent[Any]) -> None:
        if event.object["metadata"]["name"] == self._name:
            self._woken.set()

    async def run(self) -> None:
        cache: WatchCache[Any] = WatchCache(custom_object_source(self._ctx.api, COORDINATOR), name="coordinators")
        cache.add_handler(self._on_event)
        try:
            await cache.start()
            while True:
                try:
                    await self._create_default()
                    await self.reconcile()
                except (StoreError, OSError, ValueError) as error:
                    log.warning("SpiderCoordinator %s: status sync failed: %s", self._name, error)
                self._woken.clear()
                try:
                    async with asyncio.timeout(self._resync):
                        await self._woken.wait()
                except TimeoutError:
                    pass
        finally:
            await cache.stop()

    async def _create_default(self) -> None:
        """Create the default SpiderCoordinator once (a user may delete it later); retried until it is stored."""
        if self._to_create is None:
            return
        body: Any = {"metadata": {"name": self._name}, "spec": self._to_create}
        try:
            await self._ctx.stores.coordinators.create(body)
            log.info("SpiderCoordinator %s created", self._name)
        except AlreadyExists:
            pass
        self._to_create = None

    async def reconcile(self) -> None:
        store: Any = self._ctx.stores.coordinators  # plain JSON dicts go in and out
        try:
            coordinator: Any = await store.get(self._name)
        except NotFound:
            return
        meta = coordinator["metadata"]
        if meta.get("deletionTimestamp"):
            # nothing waits on a coordinator's deletion (upstream leaves this to its uninstall hook): let it go
            kept = [f for f in meta.get("finalizers") or () if f != SPIDER_FINALIZER]
            if kept != list(meta.get("finalizers") or ()):
                await store.replace({**coordinator, "metadata": {**meta, "finalizers": kept}})
            return
        spec = coordinator.get("spec") or {}
        status = coordinator.get("status") or {}
        wanted = plan_coordinator_status(spec, status, await self.facts(spec))
        if {key: status.get(key) for key in wanted} != wanted:
            await store.swap_status({**coordinator, "status": {**status, **wanted}})
            log.info("SpiderCoordinator %s: status %s %s", self._name, wanted["phase"], wanted.get("reason", ""))

    async def facts(self, spec: dict[str, Any]) -> ClusterFacts:
        kubeadm = await self._objects.config_map("kube-system", "kubeadm-config")
        pods_error = ""
        try:
            managers = await self._objects.pods_labelled("component=kube-controller-manager")
            apiservers = await self._objects.pods_labelled("component=kube-apiserver")
        except StoreError as error:
            managers, apiservers, pods_error = [], [], str(error)
        default_cni, cni_error = "", ""
        if (spec.get("podCIDRType") or "auto") == "auto":
            try:
                default_cni = default_cni_name(self._cni_dir)
            except (OSError, ValueError) as error:
                cni_error = f"failed to read the default CNI in {self._cni_dir}: {error}"
        return ClusterFacts(
            kubeadm=kubeadm_cidrs(kubeadm) if kubeadm is not None else None,
            controller_manager=static_pod_cidrs(managers[0]) if managers else None,
            apiserver_service_cidrs=static_pod_cidrs(apiservers[0])[1] if apiservers else [],
            pods_error=pods_error, default_cni=default_cni, default_cni_error=cni_error,
            service_cidr_objects=await self._service_cidrs(),
            **await self._overlay_facts(spec, default_cni))

    async def _service_cidrs(self) -> list[str] | None:
        objects = await self._objects.service_cidrs()
        if objects is None:
            return None
        return [cidr for item in _by_age(objects) for cidr in (item.get("spec") or {}).get("cidrs") or []]

    async def _overlay_facts(self, spec: dict[str, Any], default_cni: str) -> dict[str, Any]:
        kind = spec.get("podCIDRType") or "auto"
        facts: dict[str, Any] = {}
        if kind == "calico" or (kind == "auto" and default_cni in ("calico", "k8s-pod-network")):
            pools = await self._objects.calico_ippools()
            facts["calico_pools"] = None if pools is None else [
                p["spec"]["cidr"] for p in _by_age(pools) if not p.get("spec", {}).get("disabled")]
            facts["calico_error"] = "" if pools is not None else "failed to get calico ippools (is Calico installed?)"
        if kind == "cilium" or (kind == "auto" and default_cni == "cilium"):
            namespace, _, name = os.environ.get(CILIUM_CONFIGMAP_ENV, "kube-system/cilium-config").partition("/")
            facts["cilium_config"] = await self._objects.config_map(namespace, name)
            pools = await self._objects.cilium_pod_ippools()
            facts["cilium_pools"] = None if pools is None else [
                cidr for p in _by_age(pools) for family in ("ipv4", "ipv6")
                for cidr in ((p.get("spec") or {}).get(family) or {}).get("cidrs") or []]
        return facts
