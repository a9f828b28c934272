"""MultusConfigController: every SpiderMultusConfig's NetworkAttachmentDefinition exists and matches its render.

Watches SpiderMultusConfigs and NADs. A SpiderMultusConfig that is created or changed, and a NAD that is changed or
deleted while its SpiderMultusConfig lives, queue the SpiderMultusConfig; reconciling it renders the NAD
(``spiderpool.core.multus_render``), reads the NAD from the API server and applies the decision of
``spiderpool.core.multus_sync``: create (ownerReference to the SpiderMultusConfig, so deleting it deletes the NAD),
overwrite on drift (compare-and-swap), or leave a NAD no SpiderMultusConfig owns alone with a Warning Event.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from typing import Any, Final

import orjson

from spiderpool.controller.context import ControllerContext
from spiderpool.core.multus_render import MultusRenderError, attachment_name, render_network_attachment
from spiderpool.core.multus_sync import plan_nad_sync, smc_owner
from spiderpool.k8s.crd_schema import MULTUS_CONFIG
from spiderpool.k8s.network_attachments import NetworkAttachments, network_attachment_source, record_event
from spiderpool.k8s.store import AlreadyExists, Conflict, StoreError
from spiderpool.k8s.watch_cache import WatchCache, WatchEvent, custom_object_source

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, SpiderMultusConfig name)
# The cluster network's SpiderMultusConfig (the chart's multus.multusCNI.defaultCniCRName), created once when missing
# as upstream's spiderpool-init does: a chart object would be refused by this webhook while no controller is ready.
DEFAULT_CONFIG_ENV: Final = "SPIDERPOOL_DEFAULT_MULTUS_CONFIG"
REFUSED_REASON: Final = "NetworkAttachmentDefinitionNotOwned"
INVALID_REASON: Final = "InvalidMultusConfig"


class MultusConfigController:
    name = "multus-configs"

    def __init__(self, ctx: ControllerContext, *, resync: float = 60.0, retry_delay: float = 1.0) -> None:
        self._ctx = ctx
        self._resync = resync
        self._retry_delay = retry_delay
        self._nads = NetworkAttachments(ctx.api)
        self._dirty: set[Key] = set()
        self._woken = asyncio.Event()
        self._warned: dict[Key, str] = {}  # the last Warning recorded per SpiderMultusConfig (no Event storms)
        self.configs: WatchCache[Any] | None = None
        default = os.environ.get(DEFAULT_CONFIG_ENV)
        self._to_create: dict[str, Any] | None = orjson.loads(default) if default else None

    def _queue(self, key: Key) -> None:
        self._dirty.add(key)
        self._woken.set()

    def _on_config(self, event: WatchEvent[Any]) -> None:
        meta = event.object["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        if event.type == "DELETED":
            self._warned.pop(key, None)
        else:
            self._queue(key)

    def _on_nad(self, event: WatchEvent[Any]) -> None:
        meta = event.object["metadata"]
        namespace = meta.get("namespace", "")
        owner = smc_owner(event.object)
        if owner is not None:
            self._queue((namespace, owner))
        if self.configs is not None:  # a NAD that takes (or frees) the name an SpiderMultusConfig wants
            for smc in self.configs.items():
                if smc["metadata"].get("namespace") == namespace and attachment_name(smc) == meta["name"]:
                    self._queue((namespace, smc["metadata"]["name"]))

    async def run(self) -> None:
        configs = self.configs = WatchCache(custom_object_source(self._ctx.api, MULTUS_CONFIG), name="multus-configs")
        nads: WatchCache[Any] = WatchCache(network_attachment_source(self._ctx.api), name="network-attachments")
        configs.add_handler(self._on_config)
        nads.add_handler(self._on_nad)
        try:
            await configs.start()
            while True:  # the NAD CRD may be installed after the controller starts: wait for it
                try:
                    await nads.start()
                    break
                except TimeoutError:
                    log.warning("NetworkAttachmentDefinitions are not listable yet (is the NAD CRD installed?)")
            await self._work(configs)
        finally:
            await nads.stop()
            await configs.stop()

    async def _create_default(self) -> None:
        if self._to_create is None:
            return
        meta = self._to_create["metadata"]
        try:
            await self._ctx.stores.multus_configs.create(self._to_create)  # type: ignore[arg-type]
            log.info("SpiderMultusConfig %s/%s created", meta["namespace"], meta["name"])
        except AlreadyExists:
            pass
        except (StoreError, OSError, TimeoutError) as error:
            log.warning("SpiderMultusConfig %s/%s: not created yet, retrying: %s", meta["namespace"], meta["name"],
                        error)
            asyncio.get_running_loop().call_later(self._retry_delay, self._woken.set)
            return
        self._to_create = None

    async def _work(self, configs: WatchCache[Any]) -> None:
        while True:
            await self._create_default()
            if not self._dirty:
                self._woken.clear()
                try:
                    async with asyncio.timeout(self._resync):
                        await self._woken.wait()
                except TimeoutError:
                    self._dirty |= {(c["metadata"].get("namespace", ""), c["metadata"]["name"])
                                    for c in configs.items()}
                continue
            key = self._dirty.pop()
            try:
                await self.reconcile(key)
            except (StoreError, OSError, TimeoutError) as error:
                log.warning("SpiderMultusConfig %s/%s: sync failed, retrying: %s", *key, error)
                asyncio.get_running_loop().call_later(self._retry_delay, self._queue, key)

    async def reconcile(self, key: Key) -> None:
        namespace, name = key
        smc = self.configs.get(name, namespace=namespace) if self.configs is not None else None
        if smc is None:
            smc = await self._read_config(namespace, name)
        if smc is None or smc["metadata"].get("deletionTimestamp"):
            return
        smc = {"apiVersion": "spiderpool.spidernet.io/v2beta1", "kind": MULTUS_CONFIG.kind, **smc}
        try:
            rendered = render_network_attachment(smc)
        except MultusRenderError as error:
            await self._warn(key, smc, INVALID_REASON, f"cannot render the NetworkAttachmentDefinition: {error}")
            return
        current = await self._nads.get(rendered.name, namespace=rendered.namespace)
        decision = plan_nad_sync(smc, rendered, current)
        if decision.action == "refuse":
            await self._warn(key, smc, REFUSED_REASON, decision.reason)
        elif decision.action == "wait":
            raise Conflict(decision.reason, stale_resource_version="")
        elif decision.body is not None:
            await self._write(decision.action, dict(decision.body))
            self._warned.pop(key, None)

    async def _read_config(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return dict(await self._ctx.stores.multus_configs.get(name, namespace=namespace))
        except StoreError:
            return None

    async def _write(self, action: str, body: dict[str, Any]) -> None:
        meta = body["metadata"]
        try:
            if action == "create":
                await self._nads.create(body)
            else:
                await self._nads.replace(body)
        except (AlreadyExists, Conflict) as race:  # the watch will queue it again; re-read then
            raise Conflict(str(race), stale_resource_version="") from race
        log.info("NAD %s/%s: %sd from its SpiderMultusConfig", meta["namespace"], meta["name"], action)

    async def _warn(self, key: Key, smc: Mapping[str, Any], reason: str, message: str) -> None:
        if self._warned.get(key) == message:
            return
        log.warning("SpiderMultusConfig %s/%s: %s", *key, message)
        await record_event(self._ctx.api, dict(smc), event_type="Warning", reason=reason, message=message)
        self._warned[key] = message
