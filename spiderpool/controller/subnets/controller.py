"""``SubnetController``: the leader component that keeps SpiderSubnets and their auto-pools in step with the cluster.

It watches the six application kinds, SpiderSubnets, SpiderIPPools and SpiderReservedIPs; any change wakes one
reconcile pass (``reconcile.reconcile_once``), and a periodic pass repairs whatever a failed one left. Passes never
overlap, and none starts before every cache has listed once: an unsynced application cache would make every
auto-pool look orphaned.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack, suppress
from typing import Any, Final

from spiderpool.controller.context import ControllerContext
from spiderpool.controller.subnets.reconcile import AppObject, PassOutcome, PassSettings, reconcile_once
from spiderpool.k8s.apps import app_sources
from spiderpool.k8s.store import IPPOOL, RESERVED_IP, SUBNET, StoreError
from spiderpool.k8s.watch_cache import WatchCache, WatchEvent, custom_object_source

log = logging.getLogger(__name__)

RESYNC_SECONDS: Final = 60.0
# Events arriving together (a Deployment scale touches the Deployment, its ReplicaSet, ...) share one pass.
DEBOUNCE_SECONDS: Final = 0.05


class SubnetController:
    name = "subnets"

    def __init__(self, ctx: ControllerContext, *, resync_seconds: float = RESYNC_SECONDS) -> None:
        self._ctx = ctx
        self._resync = resync_seconds
        self._wake = asyncio.Event()
        self._app_caches: list[tuple[str, str, WatchCache[Any]]] = []
        self._subnet_cache: WatchCache[Any] | None = None
        self.passes = 0
        self.last_outcome: PassOutcome | None = None

    def _settings(self) -> PassSettings:
        flags = self._ctx.cluster
        return PassSettings(default_flexible=flags.default_flexible_ip_number, enable_ipv4=flags.enable_ipv4,
                            enable_ipv6=flags.enable_ipv6)

    def _on_event(self, _: WatchEvent[Any]) -> None:
        self._wake.set()

    def _apps(self) -> list[AppObject]:
        return [AppObject(api_version, kind, body)
                for api_version, kind, cache in self._app_caches for body in cache.items()]

    async def run(self) -> None:
        flags = self._ctx.cluster
        if not (flags.enable_spider_subnet and flags.enable_auto_pool):
            log.info("SpiderSubnet auto-pools disabled (enableSpiderSubnet/enableAutoPoolForApplication); idle")
            await asyncio.Event().wait()
        async with AsyncExitStack() as stack:
            for source in app_sources(self._ctx.api):
                cache = WatchCache[Any](source.source, name=f"subnets-{source.kind}")
                cache.add_handler(self._on_event)
                await stack.enter_async_context(cache)
                self._app_caches.append((source.api_version, source.kind, cache))
            for kind in (SUBNET, IPPOOL, RESERVED_IP):
                cache = WatchCache[Any](custom_object_source(self._ctx.api, kind), name=f"subnets-{kind.plural}")
                cache.add_handler(self._on_event)
                await stack.enter_async_context(cache)
                if kind is SUBNET:
                    self._subnet_cache = cache
            await self._loop()

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                self.last_outcome = await reconcile_once(self._ctx.stores, self._apps(), settings=self._settings())
            except StoreError as error:
                log.warning("subnet reconcile pass failed, retried: %s", error)
            self.passes += 1
            if self._subnet_cache is not None:
                self._ctx.metrics.total_subnet_counts.set(len(self._subnet_cache))
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that arrives as the
            # event is set, and the component would then never stop.
            with suppress(TimeoutError):
                async with asyncio.timeout(self._resync):
                    await self._wake.wait()
            await asyncio.sleep(DEBOUNCE_SECONDS)
