"""``Agent``: one node's spiderpool agent, started and stopped on the running event loop.

Start order: the lock of the socket path (one agent per path, see ``socket_claim``), the unix socket (so the CNI
executable meets "not ready, try again" rather than "unreachable"), the health and metrics listeners, then the watch
caches; the agent is ready once every cache has synced.  Stop order: not ready, stop accepting and finish the
requests in flight, the socket path's lock, drain the status writer (every queued record is written or failed), then
the caches and the API client.  Tests run several agents in one process; ``__main__``
runs one until SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from spiderpool.agent.allocation import RecordAllocator
from spiderpool.agent.cni_endpoint import make_cni_app, start_unix_server
from spiderpool.agent.combining import CombinedWriter, CombinerClient
from spiderpool.agent.config import AgentConfig
from spiderpool.agent.context import IpamContext
from spiderpool.agent.coordinator_api import add_coordinator_route
from spiderpool.agent.coordinator_service import CoordinatorService, add_coordinator_cni_route
from spiderpool.agent.endpoints import EndpointBook
from spiderpool.agent.health import Readiness, make_health_app
from spiderpool.agent.ipam import IpamService
from spiderpool.agent.metrics import AgentMetrics, make_metrics_app
from spiderpool.agent.owners import OwnerResolver
from spiderpool.agent.pods import PodLookup
from spiderpool.agent.pool_book import PoolBook
from spiderpool.agent.socket_claim import SocketClaim
from spiderpool.agent.upstream_api import add_upstream_routes
from spiderpool.core.pool_overlap import Loss
from spiderpool.k8s.bodies import (
    Namespace,
    Node,
    Pod,
    SpiderCoordinator,
    SpiderEndpoint,
    SpiderIPPool,
    SpiderReservedIP,
)
from spiderpool.k8s.client import bearer_token, make_api_client
from spiderpool.k8s.events import EventRecorder
from spiderpool.k8s.status_writer import PoolStatusWriter
from spiderpool.k8s.store import COORDINATOR, ENDPOINT, IPPOOL, RESERVED_IP, CustomObjectStore, SpiderStores
from spiderpool.k8s.watch_cache import WatchCache, custom_object_source, namespace_source, pod_source
from spiderpool.k8s.workloads import WorkloadReader, single_node_source

log = logging.getLogger(__name__)

OVERLAP_REASON = "IPPoolOverlap"
CONFLICT_REASON = "IPConflict"


class Agent:
    """One node's agent; ``async with Agent(config):`` or ``await start()`` ... ``await stop()``."""

    def __init__(self, config: AgentConfig, *, sync_timeout: float = 60.0, probe_interval: float = 5.0,
                 bind_host: str = "0.0.0.0", writer_linger: float = 0.0) -> None:
        self.config = config
        self.readiness = Readiness()
        self.metrics = AgentMetrics()
        self._sync_timeout = sync_timeout
        self._probe_interval = probe_interval
        self._bind_host = bind_host
        self._writer_linger = writer_linger
        self._close_api: Callable[[], Awaitable[None]] | None = None
        self._caches: list[WatchCache[Any]] = []
        self._runners: list[web.AppRunner] = []
        self._socket_runner: web.AppRunner | None = None
        self._socket_claim: SocketClaim | None = None
        self._writer: PoolStatusWriter | None = None
        self._combined: CombinedWriter | None = None
        self._probe: asyncio.Task[None] | None = None
        self._service: IpamService | None = None
        self._pools: WatchCache[SpiderIPPool] | None = None
        self._coordinators: CustomObjectStore[SpiderCoordinator] | None = None
        self._coordinator_cache: WatchCache[SpiderCoordinator] | None = None
        self._events: EventRecorder | None = None
        self._notices: set[asyncio.Task[None]] = set()
        self.book = PoolBook(enable_ipv4=config.cluster.enable_ipv4, enable_ipv6=config.cluster.enable_ipv6,
                             on_overlap=self._overlap_noticed)

    @property
    def service(self) -> IpamService:
        if self._service is None:
            raise RuntimeError("the agent is not started")
        return self._service

    @property
    def writer(self) -> PoolStatusWriter:
        if self._writer is None:
            raise RuntimeError("the agent is not started")
        return self._writer

    @property
    def record_writer(self) -> CombinedWriter:
        """The writer the IPAM flows use: the record combiner when configured and reachable, else ``writer``."""
        if self._combined is None:
            raise RuntimeError("the agent is not started")
        return self._combined

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        api = await make_api_client(kubeconfig=self.config.kubeconfig)
        self._close_api = api.close
        reader = WorkloadReader(api)
        caches = self._assemble(api, reader)
        await self._serve()
        self.readiness.started = True
        self._caches = caches
        async with asyncio.TaskGroup() as group:
            for cache in caches:
                group.create_task(cache.start(sync_timeout=self._sync_timeout))
        self.readiness.synced = True
        self._probe = asyncio.create_task(self._probe_api(reader), name="api-server-probe")
        log.info("spiderpool agent of node %s ready on %s (%d pools)", self.config.node_name,
                 self.config.socket_path, len(self.book.views()))

    def _assemble(self, api: Any, reader: WorkloadReader) -> list[WatchCache[Any]]:
        """Wire the caches, the pool book, the status writer and the IPAM service; the caches still to start."""
        node = self.config.node_name
        stores = SpiderStores(api)
        pools: WatchCache[SpiderIPPool] = WatchCache(custom_object_source(api, IPPOOL), name="ippools")
        reserved: WatchCache[SpiderReservedIP] = WatchCache(custom_object_source(api, RESERVED_IP), name="reservedips")
        endpoints: WatchCache[SpiderEndpoint] = WatchCache(custom_object_source(api, ENDPOINT), name="endpoints")
        pods: WatchCache[Pod] = WatchCache(pod_source(api, node_name=node), name="pods")
        namespaces: WatchCache[Namespace] = WatchCache(namespace_source(api), name="namespaces")
        nodes: WatchCache[Node] = WatchCache(single_node_source(api, node), name="node")
        coordinators: WatchCache[SpiderCoordinator] = WatchCache(custom_object_source(api, COORDINATOR),
                                                                 name="coordinators")
        self._coordinator_cache = coordinators
        self._pools = pools
        self._events = EventRecorder(api, component="spiderpool-agent", host=node)
        pools.add_handler(self.book.on_pool_event)
        reserved.add_handler(self.book.on_reserved_event)
        writer = self._writer = PoolStatusWriter(stores.ippools, redecide=self.book.redecide,
                                                 linger=self._writer_linger, cached_pool=pools.get,
                                                 observe=self.book.observe, codecs=self.book.codecs)
        combined = self._combined = CombinedWriter(writer, self._combiner_client(api), candidates=self.book.candidates,
                                                   node=node, always=self.config.combiner_always)
        context = IpamContext(
            node_name=node, settings=self.config.cluster, book=self.book, records=RecordAllocator(self.book, combined),
            endpoints=EndpointBook(stores.endpoints, endpoints), pods=PodLookup(pods, reader),
            owners=OwnerResolver(reader), reader=reader, namespaces=namespaces, nodes=nodes,
            pool_store=stores.ippools, statefulset_hold=self.config.statefulset_hold,
        )
        self._service = IpamService(context, metrics=self.metrics, readiness=self.readiness,
                                    on_conflict=self._conflict_noticed)
        self._coordinators = stores.coordinators
        self.metrics.watch(writer_stats=lambda: writer.stats, pool_usage=self.book.usage, overlaps=self.book.overlaps,
                           combiner_stats=lambda: combined.stats)
        return [reserved, pools, endpoints, pods, namespaces, nodes, coordinators]

    def _combiner_client(self, api: Any) -> CombinerClient | None:
        if not self.config.combiner_url:
            return None
        return CombinerClient(self.config.combiner_url, token=partial(bearer_token, api),
                              ca_file=self.config.combiner_ca_file)

    def _overlap_noticed(self, pool: SpiderIPPool, losses: tuple[Loss, ...]) -> None:
        """A Warning Event on a pool that loses addresses to older pools (each agent writes the same one)."""
        if not losses or self._events is None:
            return
        message = (f"SpiderIPPool {pool['metadata']['name']} overlaps older pools: "
                   f"{'; '.join(loss.describe() for loss in losses)}; no agent hands those addresses out from it")
        task = asyncio.create_task(self._record_overlap(self._events, pool, message), name="overlap-event")
        self._notices.add(task)
        task.add_done_callback(self._notices.discard)

    @staticmethod
    async def _record_overlap(events: EventRecorder, pool: SpiderIPPool, message: str) -> None:
        try:
            await events.warn(pool, kind="SpiderIPPool", reason=OVERLAP_REASON, message=message)
        except Exception as error:  # an Event is a courtesy: the log line and the metric say the same
            log.warning("could not record the overlap of SpiderIPPool %s as an Event: %s",
                        pool["metadata"]["name"], error)

    def _conflict_noticed(self, pool_name: str, message: str) -> None:
        """A Warning Event on the pool of an address that IP conflict detection skipped."""
        pool = self._pools.get(pool_name) if self._pools is not None else None
        if pool is None or self._events is None:
            return
        task = asyncio.create_task(self._record(self._events, pool, CONFLICT_REASON, message), name="conflict-event")
        self._notices.add(task)
        task.add_done_callback(self._notices.discard)

    @staticmethod
    async def _record(events: EventRecorder, pool: SpiderIPPool, reason: str, message: str) -> None:
        try:
            await events.warn(pool, kind="SpiderIPPool", reason=reason, message=message)
        except Exception as error:  # an Event is a courtesy: the log line and the metric say the same
            log.warning("could not record %s on SpiderIPPool %s as an Event: %s", reason,
                        pool["metadata"]["name"], error)

    def watched_pool(self, name: str) -> SpiderIPPool | None:
        """The pool watch's copy of ``name`` (None before it is delivered, or when the agent is not started)."""
        return None if self._pools is None else self._pools.get(name)

    async def wait_for_pools(self, names: Iterable[str]) -> None:
        """Return once the pool watch has delivered every pool of ``names`` (bound it with a timeout)."""
        if self._pools is None:
            raise RuntimeError("the agent is not started")
        wanted = set(names)
        await self._pools.wait_until(lambda cache: all(cache.get(name) is not None for name in wanted))

    async def _serve(self) -> None:
        socket_app = make_cni_app(self.service)
        add_upstream_routes(socket_app, self.service)
        if self._coordinators is not None:
            api = add_coordinator_route(socket_app, self._coordinators, self.service.context.pods,
                                        self._coordinator_cache)
            add_coordinator_cni_route(socket_app, CoordinatorService(api, host_netns=self.config.host_netns))
        claim = self._socket_claim = SocketClaim.take(Path(self.config.socket_path))  # before the stale socket goes
        self._socket_runner = await start_unix_server(socket_app, socket_path=claim.socket_path)
        claim.bound()
        self.readiness.socket = claim
        for port, app in ((self.config.health_port, make_health_app(self.readiness)),
                          (self.config.metrics_port, make_metrics_app(self.metrics))):
            if port:
                runner = web.AppRunner(app, access_log=None)
                await runner.setup()
                self._runners.append(runner)
                await web.TCPSite(runner, self._bind_host, port).start()

    async def _probe_api(self, reader: WorkloadReader) -> None:
        """Keep ``readiness.api_reachable`` current; two failed probes in a row (not one slow answer) flip it."""
        failures = 0
        while True:
            await asyncio.sleep(self._probe_interval)
            failures = 0 if await reader.reachable() else failures + 1
            reachable = failures < 2
            if reachable != self.readiness.api_reachable:
                log.warning("the API server is %s", "reachable again" if reachable else "unreachable")
            self.readiness.api_reachable = reachable

    async def stop(self) -> None:
        """Graceful stop: requests in flight finish and every queued status write completes."""
        self.readiness.stopping = True
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
            self._probe = None
        if self._socket_runner is not None:
            await self._socket_runner.cleanup()
            self._socket_runner = None
        if self._socket_claim is not None:
            self._socket_claim.release()  # only now may another agent take the path
            self._socket_claim = None
        if self._combined is not None:
            await self._combined.close()  # the combiner's session, then every queued direct write
        elif self._writer is not None:
            await self._writer.close()
        for task in list(self._notices):
            task.cancel()
        await asyncio.gather(*self._notices, return_exceptions=True)
        for cache in self._caches:
            await cache.stop()
        self._caches = []
        for runner in self._runners:
            await runner.cleanup()
        self._runners = []
        if self._close_api is not None:
            await self._close_api()
            self._close_api = None

    async def __aenter__(self) -> Agent:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await self.stop()
