"""The watch cache against the real API server: events, core kinds, bookmarks, 410 relists, apiserver restarts."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import aclosing
from typing import Any

import pytest
from kubernetes_asyncio.client import (
    ApiClient,
    CoreV1Api,
    V1Container,
    V1Namespace,
    V1Node,
    V1ObjectMeta,
    V1Pod,
    V1PodSpec,
)

from spiderpool.devcluster.cluster import ControlPlane
from spiderpool.k8s.client import make_api_client
from spiderpool.k8s.store import IPPOOL, SpiderStores
from spiderpool.k8s.watch_cache import (
    ListWatchSource,
    RawEvent,
    WatchCache,
    WatchEvent,
    custom_object_source,
    namespace_source,
    node_source,
    pod_source,
)

pytestmark = pytest.mark.integration

Versions = dict[str, str]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def versions(objects: list[Any]) -> Versions:
    return {obj["metadata"]["name"]: obj["metadata"]["resourceVersion"] for obj in objects}


async def create_pool(api: ApiClient, name: str, label: str) -> None:
    body = {"metadata": {"name": name, "labels": {"test": label}}, "spec": {"subnet": "10.60.0.0/24"}}
    await SpiderStores(api).ippools.create(body)  # type: ignore[arg-type]


async def touch_pool(api: ApiClient, name: str) -> None:
    pools = SpiderStores(api).ippools
    current = await pools.get(name)
    count = current.get("status", {}).get("allocatedIPCount", 0) + 1
    await pools.replace_status({**current, "status": {"allocatedIPCount": count}})


async def converged(cache: WatchCache[Any], api: ApiClient, label: str, *, within: float = 30.0) -> Versions:
    """Wait until the cache holds exactly what the server lists; returns that state."""
    listed = versions((await SpiderStores(api).ippools.list(label_selector=f"test={label}")).items)
    async with asyncio.timeout(within):
        await cache.wait_until(lambda c: versions(c.items()) == listed)
    return listed


def recorder(events: list[tuple[str, str]]) -> Callable[[WatchEvent[Any]], None]:
    def record(event: WatchEvent[Any]) -> None:
        events.append((event.type, event.object["metadata"]["name"]))

    return record


async def test_lists_then_follows_changes_and_survives_a_failing_handler(api: ApiClient) -> None:
    """WC01: Lists then follows changes and survives a failing handler."""
    label = unique("follow")
    first, second = unique("a"), unique("b")
    await create_pool(api, first, label)
    events: list[tuple[str, str]] = []
    previous_versions: list[str | None] = []
    cache = WatchCache(custom_object_source(api, IPPOOL, label_selector=f"test={label}"), name="pools")

    def failing(event: WatchEvent[Any]) -> None:
        raise RuntimeError("a broken handler")

    cache.add_handler(failing)
    cache.add_handler(recorder(events))
    cache.add_handler(lambda e: previous_versions.append(e.previous and e.previous["metadata"]["resourceVersion"]))
    async with cache:
        before = cache.get(first)
        await create_pool(api, second, label)
        await touch_pool(api, first)
        await SpiderStores(api).ippools.delete(second)
        state = await converged(cache, api, label)

    assert list(state) == [first]
    assert events == [("ADDED", first), ("ADDED", second), ("MODIFIED", first), ("DELETED", second)]
    assert before is not None
    assert previous_versions[2] == before["metadata"]["resourceVersion"]
    assert cache.stats.handler_errors == 4
    assert cache.stats.lists == 1


async def test_pod_cache_holds_only_its_nodes_pods(api: ApiClient) -> None:
    """WC02: Pod cache holds only its nodes pods."""
    node = unique("node")
    core = CoreV1Api(api)
    names = {unique("here"): node, unique("there"): unique("other-node")}
    for name, node_name in names.items():
        container = V1Container(name="c", image="registry.invalid/pause:1")
        spec = V1PodSpec(node_name=node_name, containers=[container])
        await core.create_namespaced_pod("default", V1Pod(metadata=V1ObjectMeta(name=name), spec=spec))

    async with WatchCache(pod_source(api, node_name=node), name="pods") as cache:
        assert [key for key in cache.object_keys() if key[1] in names] == [("default", next(iter(names)))]
        assert all(pod.get("spec", {}).get("nodeName") == node for pod in cache.items())

    for name in names:
        await core.delete_namespaced_pod(name, "default", grace_period_seconds=0)


async def test_node_and_namespace_caches_see_new_objects(api: ApiClient) -> None:
    """WC03: Node and namespace caches see new objects."""
    core = CoreV1Api(api)
    node, namespace = unique("node"), unique("ns")
    async with (
        WatchCache(node_source(api), name="nodes") as nodes,
        WatchCache(namespace_source(api), name="namespaces") as namespaces,
    ):
        assert namespaces.get("default") is not None
        await core.create_node(V1Node(metadata=V1ObjectMeta(name=node)))
        await core.create_namespace(V1Namespace(metadata=V1ObjectMeta(name=namespace)))
        async with asyncio.timeout(20):
            await nodes.wait_until(lambda c: c.get(node) is not None)
            await namespaces.wait_until(lambda c: c.get(namespace) is not None)
        await core.delete_node(node)
        async with asyncio.timeout(20):
            await nodes.wait_until(lambda c: c.get(node) is None)
    await core.delete_namespace(namespace)


async def test_bookmarks_advance_the_resource_version(api: ApiClient) -> None:
    """WC04: Bookmarks advance the resource version."""
    label = unique("bookmark")
    source = custom_object_source(api, IPPOOL, label_selector=f"test={label}")
    # The server sends a bookmark shortly before a watch's timeout; a short timeout makes one come quickly.
    async with WatchCache(source, name="pools", watch_timeout_seconds=5) as cache:
        name = unique("p")
        await create_pool(api, name, label)
        # Generous: the server times bookmarks itself (~2 s before a watch's deadline) and a loaded 2-core CI machine
        # delays them; this test checks that bookmarks are handled, not how fast they come.
        async with asyncio.timeout(120):
            await cache.wait_until(lambda c: c.get(name) is not None)
            await cache.wait_until(lambda c: c.stats.bookmarks > 0)
        created = cache.get(name)
        assert created is not None
        assert int(cache.resource_version) >= int(created["metadata"]["resourceVersion"])
    await SpiderStores(api).ippools.delete(name)


class StaleResumption:
    """Wraps a source so that one resumption happens after changes were missed and from a compacted resourceVersion.

    The second watch call first changes the pools (while nobody watches), then asks the real API server to resume
    from resourceVersion 1, long gone from its history: the server answers 410 Gone, as it does after compaction.
    """

    def __init__(self, source: ListWatchSource[Any], missed_changes: Callable[[], Awaitable[None]]) -> None:
        self.inner = source
        self.missed_changes = missed_changes
        self.calls = 0
        self.source = ListWatchSource(list=source.list, watch=self.watch)

    async def watch(self, resource_version: str, timeout_seconds: int) -> AsyncGenerator[RawEvent, None]:
        self.calls += 1
        if self.calls == 2:
            await self.missed_changes()
            resource_version = "1"
        async with aclosing(self.inner.watch(resource_version, timeout_seconds)) as events:
            async for event in events:
                yield event


async def test_relists_on_410_and_reports_what_it_missed(api: ApiClient) -> None:
    """WC05: Relists on 410 and reports what it missed."""
    label = unique("gone")
    kept, dropped, added = unique("kept"), unique("dropped"), unique("added")
    for name in (kept, dropped):
        await create_pool(api, name, label)

    async def missed_changes() -> None:
        await create_pool(api, added, label)
        await touch_pool(api, kept)
        await SpiderStores(api).ippools.delete(dropped)

    stale = StaleResumption(custom_object_source(api, IPPOOL, label_selector=f"test={label}"), missed_changes)
    events: list[tuple[str, str]] = []
    cache = WatchCache(stale.source, name="pools", watch_timeout_seconds=1)  # the first watch ends after 1 s
    cache.add_handler(recorder(events))
    async with cache:
        async with asyncio.timeout(30):
            await cache.wait_until(lambda c: c.stats.lists >= 2)
        state = await converged(cache, api, label)
        assert cache.stats.relists_on_gone == 1

    assert sorted(state) == sorted([kept, added])
    assert sorted(events[:2]) == sorted([("ADDED", kept), ("ADDED", dropped)])
    assert sorted(events[2:]) == sorted([("ADDED", added), ("MODIFIED", kept), ("DELETED", dropped)])
    assert cache.stats.lists == 2


async def test_converges_after_an_apiserver_restart(control_plane: ControlPlane, api: ApiClient) -> None:
    """WC06: Converges after an API server restart."""
    label = unique("restart")
    before, after = unique("before"), unique("after")
    await create_pool(api, before, label)
    cache = WatchCache(custom_object_source(api, IPPOOL, label_selector=f"test={label}"), name="pools")
    async with cache:
        await asyncio.to_thread(control_plane.restart_apiserver)
        fresh = await make_api_client(kubeconfig=control_plane.kubeconfig)  # the old client's connections are dead
        try:
            await create_pool(fresh, after, label)
            await touch_pool(fresh, before)
            state = await converged(cache, fresh, label, within=60)
        finally:
            await fresh.close()
        assert cache.stats.reconnects >= 1

    assert sorted(state) == sorted([before, after])
    assert_same_objects(cache.items(), state)


def assert_same_objects(items: list[Mapping[str, Any]], state: Versions) -> None:
    assert {item["metadata"]["name"]: item["metadata"]["resourceVersion"] for item in items} == state


async def test_start_cancelled_before_the_first_list_leaves_no_task_behind(api: ApiClient) -> None:
    """WC07: A caller cancelled while ``start`` waits for the first list (a component losing leadership during start-up)
    must not leave the list+watch task, and its connection, running."""
    cache = WatchCache(custom_object_source(api, IPPOOL), name="cancelled")
    starting = asyncio.create_task(cache.start())
    started = False
    for _ in range(1000):  # until the list+watch task exists: the list is then on its way
        started = cache._task is not None
        if started:
            break
        await asyncio.sleep(0)
    assert started, "start() never started its list+watch task"
    assert not cache.synced, "the first list was already done: the cancellation would not hit the wait for it"
    starting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starting
    assert cache._task is None
    assert not [task for task in asyncio.all_tasks() if task.get_name() == "watch-cache-cancelled"]
