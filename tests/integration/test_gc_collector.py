"""Leak collection against the real API server: each trigger (G01..), and the races that must never free a live pod's
address (upstream #1187, #2442, #3778)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import pytest
from kubernetes_asyncio.client import ApiClient

from spiderpool.controller.context import ControllerContext
from spiderpool.controller.gc.collector import LeakCollector
from spiderpool.controller.gc.release import release_records
from spiderpool.controller.gc.scan import GcCaches
from spiderpool.controller.settings import GcSettings
from spiderpool.core.allocations import decode_allocated_ips
from spiderpool.k8s.bodies import Pod, SpiderEndpoint
from spiderpool.k8s.core_objects import CoreObjects
from spiderpool.k8s.status_plan import AllocateIntent
from spiderpool.k8s.status_writer import PoolStatusWriter
from spiderpool.k8s.store import NotFound, SpiderStores
from spiderpool.k8s.watch_cache import WatchEvent

pytestmark = pytest.mark.integration

FINALIZER = "spiderpool.spidernet.io"


def lease_time(text: str) -> float:
    """An API timestamp (``2026-01-02T03:04:05Z``) as epoch seconds."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z").timestamp()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Scene:
    """A namespace, a node, a pool, and helpers to give pods records and endpoints as an agent would."""

    def __init__(self, api: ApiClient) -> None:
        self.api, self.core, self.stores = api, CoreObjects(api), SpiderStores(api)
        self.namespace, self.node, self.pool = unique("gc"), unique("node"), unique("gcpool")
        self.writer = PoolStatusWriter(self.stores.ippools, redecide=lambda *_: None)
        self._next = 1

    async def setup(self) -> None:
        await self.core.create_namespace(self.namespace)
        await self.core.create_node(self.node)
        await self.stores.ippools.create({"metadata": {"name": self.pool},
                                          "spec": {"subnet": "10.77.0.0/16", "ips": ["10.77.0.1-10.77.3.250"]}})

    async def pod(self, name: str, *, owner: dict[str, Any] | None = None) -> Pod:
        meta: dict[str, Any] = {"name": name, "namespace": self.namespace}
        if owner is not None:
            meta["ownerReferences"] = [owner]
        body: Any = {"metadata": meta, "spec": {"nodeName": self.node, "terminationGracePeriodSeconds": 0,
                                                "containers": [{"name": "c", "image": "pause"}]}}
        return await self.core.create_pod(body)

    async def allocate(self, pod: Pod, *, ip: str | None = None, endpoint: bool = True,
                       statefulset: str | None = None, finalizer: bool = True) -> str:
        """The pod's record, and its endpoint in upstream's shape (with upstream's finalizer unless ``finalizer``
        is False: the agent's own endpoints have none)."""
        meta = pod["metadata"]
        if ip is None:
            ip = f"10.77.{self._next // 250}.{self._next % 250 + 1}"
            self._next += 1
        await self.writer.allocate(self.pool, AllocateIntent(f"{meta['namespace']}/{meta['name']}", meta["uid"], ip))
        if endpoint:
            status: Any = {"current": {"uid": meta["uid"], "node": self.node,
                                       "ips": [{"interface": "eth0", "ipv4": f"{ip}/16", "ipv4Pool": self.pool}]},
                           "ownerControllerType": "StatefulSet" if statefulset else "Pod",
                           "ownerControllerName": statefulset or meta["name"]}
            body: SpiderEndpoint = {"metadata": {"name": meta["name"], "namespace": meta["namespace"],
                                                 "finalizers": [FINALIZER] if finalizer else []}, "status": status}
            await self.stores.endpoints.create(body)
        return ip

    async def records(self) -> dict[str, str]:
        pool = await self.stores.ippools.get(self.pool)
        return {ip: r.pod_uid for ip, r in decode_allocated_ips(pool.get("status", {}).get("allocatedIPs")).items()}

    async def endpoint(self, name: str) -> SpiderEndpoint | None:
        try:
            return await self.stores.endpoints.get(name, namespace=self.namespace)
        except NotFound:
            return None

    async def teardown(self) -> None:
        await self.writer.close()
        await self.core.delete_namespace(self.namespace)


@pytest.fixture
async def scene(api: ApiClient) -> AsyncIterator[Scene]:
    built = Scene(api)
    await built.setup()
    try:
        yield built
    finally:
        await built.teardown()


@asynccontextmanager
async def collector(api: ApiClient, **settings: Any) -> AsyncIterator[LeakCollector]:
    ctx = ControllerContext(api=api, stores=SpiderStores(api), core=CoreObjects(api),
                            gc=GcSettings(**{"trace_gap": 0.2, **settings}))
    gc = LeakCollector(ctx)
    task = asyncio.create_task(gc.run())
    try:
        await eventually(lambda: gc.scans >= 1, within=30)
        yield gc
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def eventually(predicate: Callable[[], bool], *, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def until_records(scene: Scene, predicate: Callable[[dict[str, str]], bool], *, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not predicate(await scene.records()):
        assert time.monotonic() < deadline, f"records now: {await scene.records()}"
        await asyncio.sleep(0.1)


async def test_g01_deleted_pod_released_and_live_pod_kept(api: ApiClient, scene: Scene) -> None:
    """G01: Deleted pod released and live pod kept."""
    live, doomed = await scene.pod("live"), await scene.pod("doomed")
    live_ip, doomed_ip = await scene.allocate(live), await scene.allocate(doomed)
    async with collector(api) as gc:
        await scene.core.delete_pod("doomed", namespace=scene.namespace)
        await until_records(scene, lambda records: doomed_ip not in records)
        await eventually(lambda: gc.caches is not None and gc.caches.endpoints.get(
            "doomed", namespace=scene.namespace) is None)
        assert (await scene.records())[live_ip] == live["metadata"]["uid"]
        assert await scene.endpoint("live") is not None
        assert await scene.endpoint("doomed") is None


async def test_g14_endpoint_without_finalizer_released_and_deleted(api: ApiClient, scene: Scene) -> None:
    """G14: The agent's endpoints have no finalizer: a gone pod's record is released and its endpoint deleted all the
    same, next to one with upstream's finalizer (dropped, then deleted)."""
    ours, upstreams = await scene.pod("ours"), await scene.pod("upstreams")
    ours_ip = await scene.allocate(ours, finalizer=False)
    upstreams_ip = await scene.allocate(upstreams)
    written = await scene.endpoint("ours")
    assert written is not None
    assert not written["metadata"].get("finalizers")
    async with collector(api):
        for name in ("ours", "upstreams"):
            await scene.core.delete_pod(name, namespace=scene.namespace)
        await until_records(scene, lambda records: not {ours_ip, upstreams_ip} & set(records))
        deadline = time.monotonic() + 10
        while await scene.endpoint("ours") is not None or await scene.endpoint("upstreams") is not None:
            assert time.monotonic() < deadline, "an endpoint of a gone pod was left behind"
            await asyncio.sleep(0.1)


async def test_g01_startup_scan_releases_what_leaked_while_no_leader(api: ApiClient, scene: Scene) -> None:
    """G01: Startup scan releases what leaked while no leader."""
    gone = await scene.pod("gone")
    ip = await scene.allocate(gone)
    await scene.core.delete_pod("gone", namespace=scene.namespace)
    async with collector(api) as gc:
        await until_records(scene, lambda records: ip not in records)
        # records first, endpoint last: the endpoint goes right after the records
        await eventually(lambda: gc.caches is not None and gc.caches.endpoints.get(
            "gone", namespace=scene.namespace) is None)
    assert await scene.endpoint("gone") is None


async def test_g02_terminating_pod_released_after_its_grace(api: ApiClient, scene: Scene) -> None:
    """G02: a terminating pod's record is kept while its grace runs and released after it: every look at the pool
    before the pod's ``deletionTimestamp`` (the end of its grace) still finds the record."""
    pod = await scene.pod("slow")
    ip = await scene.allocate(pod, endpoint=False)
    async with collector(api):
        await scene.core.delete_pod("slow", namespace=scene.namespace, grace_period_seconds=2)
        terminating = await scene.core.get_pod("slow", namespace=scene.namespace)
        grace_ends = lease_time(terminating["metadata"]["deletionTimestamp"])
        deadline = time.monotonic() + 30.0  # a safety net only
        while ip in await scene.records():
            assert time.monotonic() < deadline, "the record outlived its pod's grace by 30 s"
            await asyncio.sleep(0.05)
        seen_released = time.time()
        assert seen_released >= grace_ends, f"released {grace_ends - seen_released:.2f}s before the grace was over"


async def test_g07_recreated_pod_keeps_its_new_address(api: ApiClient, scene: Scene) -> None:
    """G07 (#1187): the name is deleted and re-created with a new UID while the GC acts on the old one: the old
    record goes, the new one stays through later full scans."""
    old = await scene.pod("same")
    old_ip = await scene.allocate(old, endpoint=False)
    async with collector(api, scan_interval=0.2) as gc:
        await scene.core.delete_pod("same", namespace=scene.namespace)
        new = await scene.pod("same")
        new_ip = await scene.allocate(new)
        await until_records(scene, lambda records: old_ip not in records)
        scans = gc.scans
        await eventually(lambda: gc.scans >= scans + 2, within=30)  # two full scans after the release: still kept
        assert (await scene.records())[new_ip] == new["metadata"]["uid"]
        endpoint = await scene.endpoint("same")
        assert endpoint is not None
        assert endpoint["status"]["current"]["uid"] == new["metadata"]["uid"]


async def test_g12_slow_informer_direct_read_prevents_release(api: ApiClient, scene: Scene) -> None:
    """G12: The collector's caches know nothing (never started: the slowest informer); the direct read keeps the pod."""
    pod = await scene.pod("alive")
    ip = await scene.allocate(pod)
    ctx = ControllerContext(api=api, stores=SpiderStores(api), core=CoreObjects(api))
    gc = LeakCollector(ctx)
    caches = GcCaches.of(api)
    pool = await scene.stores.ippools.get(scene.pool)
    gc.index.on_pool_event(WatchEvent("ADDED", pool, None))
    released = await gc.look(caches, scene.writer, (scene.namespace, "alive"))
    assert released == 0
    assert (await scene.records())[ip] == pod["metadata"]["uid"]
    assert await scene.endpoint("alive") is not None


async def test_g13_interrupted_release_is_finished_by_the_next_leader(api: ApiClient, scene: Scene) -> None:
    """G13: A leader died between the record write and the endpoint removal: the next one removes the endpoint only."""
    pod = await scene.pod("half")
    ip = await scene.allocate(pod)
    uid = pod["metadata"]["uid"]
    await scene.core.delete_pod("half", namespace=scene.namespace)
    await release_records(scene.writer, [(scene.pool, ip)], pod_uid=uid)  # the first half of a release
    other = await scene.pod("other")
    other_ip = await scene.allocate(other, ip=ip)  # the address is reused at once by another pod
    async with collector(api) as gc:
        await eventually(lambda: gc.caches is not None and gc.caches.endpoints.get(
            "half", namespace=scene.namespace) is None, within=15)
        assert (await scene.records())[other_ip] == other["metadata"]["uid"]
