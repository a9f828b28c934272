"""The agent's default, ``enableStatelessSpiderEndpoint: false``: pool records only, endpoints for pods that need them.

A lean pod (not a StatefulSet or kubevirt pod, not an ``ippools`` pod) gets no SpiderEndpoint: repeated ADD returns
the same address from its records, DEL releases every record of its UID (twice is harmless), DEL of an alive pod
keeps it, and CNI GC releases it once the pod will not run again.  StatefulSet and ``ippools`` pods still get one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from agent_support import NAMESPACE, Cluster, cni_request, eventually, running_agent, span, unique
from kubernetes_asyncio.client import ApiClient, AppsV1Api, V1OwnerReference

from spiderpool.agent.daemon import Agent
from spiderpool.agent.endpoints import FINALIZER
from spiderpool.core.allocations import decode_allocated_ips
from spiderpool.core.cni_types import Attachment
from spiderpool.devcluster.cluster import ControlPlane
from spiderpool.k8s.core_objects import CoreObjects
from spiderpool.k8s.crd_schema import ENDPOINT, IPPOOL
from spiderpool.k8s.watch_cache import WatchCache, WatchEvent, custom_object_source
from spiderpool.testbed.request_counting import parse_request_counts

pytestmark = pytest.mark.integration

LeanAgent = Callable[..., AbstractAsyncContextManager[Agent]]


@pytest.fixture
def lean_agent(control_plane: ControlPlane, socket_dir: Path) -> LeanAgent:
    """``async with lean_agent(node, *pools) as agent``: a node's agent with the default settings (lean endpoints)."""

    def launch(node: str, *pools: str) -> AbstractAsyncContextManager[Agent]:
        return running_agent(control_plane, node, socket_dir / "lean.sock", pools=pools)

    return launch


async def _statefulset_owner(cluster: Cluster, name: str) -> V1OwnerReference:
    labels = {"app": name}
    body: Any = {"metadata": {"name": name},
                 "spec": {"replicas": 1, "serviceName": name, "selector": {"matchLabels": labels},
                          "template": {"metadata": {"labels": labels}, "spec": {
                              "containers": [{"name": "c", "image": "registry.invalid/pause:1"}]}}}}
    created = await AppsV1Api(cluster.api).create_namespaced_stateful_set(NAMESPACE, body)
    return V1OwnerReference(api_version="apps/v1", kind="StatefulSet", name=name, uid=created.metadata.uid,
                            controller=True)


async def test_lean_add_writes_the_record_only_and_is_idempotent(cluster: Cluster, lean_agent: LeanAgent) -> None:
    """LE01: Lean ADD writes the record only and is idempotent."""
    node = await cluster.node()
    pool = await cluster.pool(subnet="10.186.0.0/24", ips=[span("10.186.0.2", 4)], gateway="10.186.0.1")
    pod = await cluster.pod(node)
    async with lean_agent(node, pool) as agent:
        first = await agent.service.add(cni_request("ADD", pod, default_ipv4_ippool=[pool]))
        again = await agent.service.add(cni_request("ADD", pod, container_id="new-sandbox",
                                                    default_ipv4_ippool=[pool]))
        previous = {"cniVersion": "1.0.0", "ips": [{"address": "10.186.0.2/24", "gateway": "10.186.0.1"}]}
        held = await agent.service.check(cni_request("CHECK", pod, extra={"prevResult": previous},
                                                     default_ipv4_ippool=[pool]))

    assert [str(ip.address) for ip in first.ips] == ["10.186.0.2/24"]
    assert again == first
    assert [ip.address for ip in held.ips] == [ip.address for ip in first.ips], "CHECK answers from the records"
    records = await cluster.records(pool)
    assert {ip: (r.pod, r.pod_uid) for ip, r in records.items()} == {
        "10.186.0.2": (f"default/{pod.metadata.name}", pod.metadata.uid)}
    assert await cluster.endpoint(pod.metadata.name) is None
    await cluster.force_delete(pod.metadata.name)


async def test_lean_del_keeps_an_alive_pod_then_releases_once_it_terminates(
    cluster: Cluster, lean_agent: LeanAgent
) -> None:
    """LE02: Lean DEL keeps an alive pod then releases once it terminates."""
    node = await cluster.node()
    pool = await cluster.pool(subnet="10.187.0.0/24", ips=[span("10.187.0.2", 4)])
    pod, neighbour = await cluster.pod(node), await cluster.pod(node)
    async with lean_agent(node, pool) as agent:
        await agent.service.add(cni_request("ADD", neighbour, default_ipv4_ippool=[pool]))
        first = await agent.service.add(cni_request("ADD", pod, default_ipv4_ippool=[pool]))
        await agent.service.delete(cni_request("DEL", pod, default_ipv4_ippool=[pool]))  # sandbox re-created
        assert {r.pod_uid for r in (await cluster.records(pool)).values()} == {
            pod.metadata.uid, neighbour.metadata.uid}
        assert await agent.service.add(cni_request("ADD", pod, default_ipv4_ippool=[pool])) == first

        await cluster.terminate(pod.metadata.name)
        for _ in range(2):
            await agent.service.delete(cni_request("DEL", pod, default_ipv4_ippool=[pool]))
        assert {r.pod_uid for r in (await cluster.records(pool)).values()} == {neighbour.metadata.uid}
    assert await cluster.endpoint(pod.metadata.name) is None
    await cluster.force_delete(pod.metadata.name)
    await cluster.force_delete(neighbour.metadata.name)


async def test_statefulset_and_ippools_pods_still_get_endpoints(cluster: Cluster, lean_agent: LeanAgent) -> None:
    """LE03: StatefulSet and IPPools pods still get endpoints."""
    node = await cluster.node()
    pool = await cluster.pool(subnet="10.188.0.0/24", ips=[span("10.188.0.2", 8)])
    second_pool = await cluster.pool(subnet="10.188.1.0/24", ips=[span("10.188.1.2", 4)])
    name = unique("db")
    owner = await _statefulset_owner(cluster, name)
    member = await cluster.pod(node, name=f"{name}-0", owners=[owner])
    ippools = [{"interface": "eth0", "ipv4": [pool]}, {"interface": "net1", "ipv4": [second_pool]}]
    multi = await cluster.pod(node, annotations={"ipam.spidernet.io/ippools": orjson.dumps(ippools).decode()})
    async with lean_agent(node, pool, second_pool) as agent:
        await agent.service.add(cni_request("ADD", member, default_ipv4_ippool=[pool]))
        await agent.service.add(cni_request("ADD", multi))
        writes = agent.writer.stats.writes
        net1 = await agent.service.add(cni_request("ADD", multi, ifname="net1"))
        assert agent.writer.stats.writes == writes  # the second NIC came from the endpoint

    assert [str(ip.address) for ip in net1.ips] == ["10.188.1.2/24"]
    stateful = await cluster.endpoint(member.metadata.name)
    assert stateful is not None
    assert stateful["status"]["ownerControllerType"] == "StatefulSet"
    assert stateful["metadata"]["finalizers"] == [FINALIZER], "it carries addresses across pods: guarded"
    endpoint = await cluster.endpoint(multi.metadata.name)
    assert endpoint is not None
    assert "finalizers" not in endpoint["metadata"]
    assert [e["interface"] for e in endpoint["status"]["current"]["ips"]] == ["eth0", "net1"]
    await cluster.force_delete(member.metadata.name)
    await cluster.force_delete(multi.metadata.name)


async def test_a_pod_with_an_endpoint_keeps_it_and_del_removes_it(
    cluster: Cluster, control_plane: ControlPlane, socket_dir: Path, lean_agent: LeanAgent
) -> None:
    """LE04: A pod with an endpoint keeps it and DEL removes it."""
    node = await cluster.node()
    pool = await cluster.pool(subnet="10.189.0.0/24", ips=[span("10.189.0.2", 4)])
    pod = await cluster.pod(node)
    async with running_agent(control_plane, node, socket_dir / "full.sock", pools=[pool],
                             enable_stateless_spider_endpoint=True) as agent:
        first = await agent.service.add(cni_request("ADD", pod, default_ipv4_ippool=[pool]))
    assert await cluster.endpoint(pod.metadata.name) is not None
    async with lean_agent(node, pool) as agent:
        assert await agent.service.add(cni_request("ADD", pod, default_ipv4_ippool=[pool])) == first
        await cluster.terminate(pod.metadata.name)
        await agent.service.delete(cni_request("DEL", pod, default_ipv4_ippool=[pool]))
    assert await cluster.records(pool) == {}
    assert await cluster.endpoint(pod.metadata.name) is None
    await cluster.force_delete(pod.metadata.name)


async def test_gc_releases_a_lean_pod_that_will_not_run_again(cluster: Cluster, lean_agent: LeanAgent) -> None:
    """LE05: GC releases a lean pod that will not run again."""
    node = await cluster.node()
    pool = await cluster.pool(subnet="10.95.0.0/24", ips=[span("10.95.0.2", 4)])
    evicted, alive = await cluster.pod(node), await cluster.pod(node)
    async with lean_agent(node, pool) as agent:
        for pod in (evicted, alive):
            await agent.service.add(cni_request("ADD", pod, default_ipv4_ippool=[pool]))
        await cluster.core.patch_namespaced_pod_status(evicted.metadata.name, NAMESPACE,
                                                       {"status": {"phase": "Failed", "reason": "Evicted"}})
        await _until_evicted_seen(agent, evicted.metadata.name)
        gc = cni_request("GC", alive, version="1.1.0", default_ipv4_ippool=[pool],
                         extra={"cni.dev/valid-attachments": []})
        await agent.service.gc(gc, list[Attachment]())
    assert {r.pod_uid for r in (await cluster.records(pool)).values()} == {alive.metadata.uid}
    await cluster.force_delete(evicted.metadata.name)
    await cluster.force_delete(alive.metadata.name)


async def _until_evicted_seen(agent: Agent, name: str) -> None:
    def seen() -> bool:
        pod = agent.service.context.pods.cached(NAMESPACE, name)
        return pod is not None and pod.get("status", {}).get("reason") == "Evicted"

    await eventually(seen)


async def test_an_upstream_endpoint_with_its_finalizer_is_removed_by_del(
    cluster: Cluster, control_plane: ControlPlane, socket_dir: Path, lean_agent: LeanAgent
) -> None:
    """LE06: An endpoint upstream wrote (with its finalizer) is removed by the default agent's DEL, nothing stuck."""
    node = await cluster.node()
    pool = await cluster.pool(subnet="10.96.0.0/24", ips=[span("10.96.0.2", 4)])
    pod = await cluster.pod(node)
    async with running_agent(control_plane, node, socket_dir / "full.sock", pools=[pool],
                             enable_stateless_spider_endpoint=True) as agent:
        await agent.service.add(cni_request("ADD", pod, default_ipv4_ippool=[pool]))
    written = await cluster.endpoint(pod.metadata.name)
    assert written is not None
    assert "finalizers" not in written["metadata"]
    # What upstream's agent would have left: the same endpoint, with its finalizer.
    await cluster.stores.endpoints.replace({**written, "metadata": {**written["metadata"], "finalizers": [FINALIZER]}})
    async with lean_agent(node, pool) as agent:
        await cluster.terminate(pod.metadata.name)
        await agent.service.delete(cni_request("DEL", pod, default_ipv4_ippool=[pool]))
    assert await cluster.records(pool) == {}
    assert await cluster.endpoint(pod.metadata.name) is None, "the finalizer was dropped and the endpoint deleted"
    await cluster.force_delete(pod.metadata.name)


@asynccontextmanager
async def watched_writes(api: ApiClient) -> AsyncIterator[tuple[list[str], WatchCache[Any], WatchCache[Any]]]:
    """Every change of a SpiderIPPool or SpiderEndpoint from now on (``"ADDED endpoints/default/x"``): one per write."""
    seen: list[str] = []
    pools: WatchCache[Any] = WatchCache(custom_object_source(api, IPPOOL), name="ippools")
    endpoints: WatchCache[Any] = WatchCache(custom_object_source(api, ENDPOINT), name="endpoints")

    def record(kind: str) -> Callable[[WatchEvent[Any]], None]:
        def handle(event: WatchEvent[Any]) -> None:
            meta = event.object["metadata"]
            seen.append(f"{event.type} {kind}/{meta.get('namespace', '')}/{meta['name']}".replace("//", "/"))
        return handle

    async with pools, endpoints:
        pools.add_handler(record("pools"))
        endpoints.add_handler(record("endpoints"))
        yield seen, pools, endpoints


async def _lifecycle(cluster: Cluster, agent: Agent, pool: str, node: str,
                     caches: tuple[list[str], WatchCache[Any], WatchCache[Any]]) -> list[str]:
    """ADD, terminate, DEL of one fresh pod: the pool and endpoint writes it took, once the watch has seen the end."""
    seen, pools, endpoints = caches
    pod = await cluster.pod(node)
    start = len(seen)
    await agent.service.add(cni_request("ADD", pod, default_ipv4_ippool=[pool]))
    await cluster.terminate(pod.metadata.name)
    await agent.service.delete(cni_request("DEL", pod, default_ipv4_ippool=[pool]))

    def released(cache: WatchCache[Any]) -> bool:
        return not decode_allocated_ips((cache.get(pool) or {}).get("status", {}).get("allocatedIPs"))

    async with asyncio.timeout(10):
        await pools.wait_until(released)
        await endpoints.wait_until(lambda cache: cache.get(pod.metadata.name, namespace=NAMESPACE) is None)
    await cluster.force_delete(pod.metadata.name)
    return [change for change in seen[start:] if pool in change or pod.metadata.name in change]


async def test_writes_per_pod_lifecycle_lean_and_full(
    cluster: Cluster, api: ApiClient, control_plane: ControlPlane, socket_dir: Path, lean_agent: LeanAgent
) -> None:
    """LE07: One pod's ADD and DEL cost 2 writes by default (its pool record in, out) and 4 in the full mode (the
    endpoint's create and delete; upstream's finalizer made it 5), counted as the watch's change events."""
    node = await cluster.node()
    pool = await cluster.pool(subnet="10.98.0.0/24", ips=[span("10.98.0.2", 4)])
    async with watched_writes(api) as caches:
        async with lean_agent(node, pool) as agent:
            lean = await _lifecycle(cluster, agent, pool, node, caches)
        async with running_agent(control_plane, node, socket_dir / "full.sock", pools=[pool],
                                 enable_stateless_spider_endpoint=True) as agent:
            full = await _lifecycle(cluster, agent, pool, node, caches)
    assert lean == [f"MODIFIED pools/{pool}"] * 2, lean
    kinds = sorted(change.split("/")[0] for change in full)
    assert kinds == ["ADDED endpoints", "DELETED endpoints", "MODIFIED pools", "MODIFIED pools"], full


async def _endpoint_reads(api: ApiClient) -> int:
    """Direct reads of single SpiderEndpoints the API server has answered so far (every code, 404 included)."""
    counts = parse_request_counts(await CoreObjects(api).read_metrics(), resources=("spiderendpoints",))
    return sum(value for kind, value in counts.items() if kind.verb == "GET")


async def _del_reads(cluster: Cluster, api: ApiClient, agent: Agent, pool: str, pod: Any) -> int:
    await agent.service.add(cni_request("ADD", pod, default_ipv4_ippool=[pool]))
    await cluster.terminate(pod.metadata.name)
    before = await _endpoint_reads(api)
    await agent.service.delete(cni_request("DEL", pod, default_ipv4_ippool=[pool]))
    return await _endpoint_reads(api) - before


async def test_le08_a_lean_del_reads_no_endpoint(cluster: Cluster, api: ApiClient, lean_agent: LeanAgent) -> None:
    """LE08: the DEL of a lean pod (no StatefulSet or kubevirt owner, no ``ippools`` annotation) reads no
    SpiderEndpoint from the API server (nobody writes one for it; before: one GET answered 404 per DEL), and still
    releases its record."""
    node = await cluster.node()
    pool = await cluster.pool(subnet="10.187.0.0/24", ips=[span("10.187.0.2", 4)])
    pod = await cluster.pod(node)
    async with lean_agent(node, pool) as agent:
        assert await _del_reads(cluster, api, agent, pool, pod) == 0
    assert await cluster.records(pool) == {}
    await cluster.force_delete(pod.metadata.name)
