"""Helpers of the agent's integration tests: a simulated node, pools, pods, an in-process agent, CNI requests.

Pods are real Pod objects bound to a Node object the test creates; nothing runs them (no kubelet, no scheduler), so
a pod stays Pending (alive) until the test deletes it, and a graceful delete leaves it terminating until the test
force-deletes it: the test plays the kubelet.  The fixtures built on these live in ``tests/integration/conftest.py``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import orjson
from cni_process import PluginRun, exec_plugin
from kubernetes_asyncio.client import (
    ApiClient,
    CoreV1Api,
    V1Container,
    V1Node,
    V1ObjectMeta,
    V1OwnerReference,
    V1Pod,
    V1PodSpec,
)

from spiderpool.agent.config import AgentConfig
from spiderpool.agent.daemon import Agent
from spiderpool.agent.install_cni import cni_executable_path
from spiderpool.cluster_config import ClusterSettings
from spiderpool.core.allocations import PoolIPAllocation, decode_allocated_ips
from spiderpool.core.cni import parse_request
from spiderpool.core.cni_types import CniRequest
from spiderpool.devcluster.cluster import ControlPlane
from spiderpool.k8s.bodies import SpiderEndpoint, SpiderIPPoolSpec
from spiderpool.k8s.store import NotFound, SpiderStores

NAMESPACE = "default"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def span(first: str, count: int) -> str:
    """``first-last`` of ``count`` consecutive addresses."""
    last = ipaddress.ip_address(first) + count - 1
    return f"{first}-{last}"


@dataclass
class Cluster:
    """The test's view of the API server: creating pools, nodes and pods, reading records and endpoints."""

    api: ApiClient
    stores: SpiderStores = field(init=False)
    core: CoreV1Api = field(init=False)
    pools_created: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.stores = SpiderStores(self.api)
        self.core = CoreV1Api(self.api)

    async def node(self, labels: Mapping[str, str] | None = None) -> str:
        name = unique("node")
        await self.core.create_node(V1Node(metadata=V1ObjectMeta(name=name, labels=dict(labels or {}))))
        return name

    async def pool(self, *, subnet: str, ips: list[str], gateway: str | None = None, name: str | None = None,
                   **spec: Any) -> str:
        name = name or unique("pool")
        body: SpiderIPPoolSpec = {"subnet": subnet, "ips": ips, **spec}  # type: ignore[typeddict-item]
        if gateway is not None:
            body["gateway"] = gateway
        await self.stores.ippools.create({"metadata": {"name": name}, "spec": body})
        self.pools_created.append(name)
        return name

    async def delete_pools(self) -> None:
        """Delete the pools this test created: agents refuse addresses that an older overlapping pool owns, so a pool
        left behind would take its range away from a later test's pool (the session shares one API server)."""
        for name in self.pools_created:
            await self.stores.ippools.delete(name)  # False when the test deleted it itself

    async def pod(self, node: str, *, name: str | None = None, annotations: Mapping[str, str] | None = None,
                  labels: Mapping[str, str] | None = None, owners: list[V1OwnerReference] | None = None) -> V1Pod:
        meta = V1ObjectMeta(name=name or unique("pod"), annotations=dict(annotations or {}),
                            labels=dict(labels or {}), owner_references=owners)
        spec = V1PodSpec(node_name=node, containers=[V1Container(name="c", image="registry.invalid/pause:1")])
        created: V1Pod = await self.core.create_namespaced_pod(NAMESPACE, V1Pod(metadata=meta, spec=spec))
        return created

    async def terminate(self, name: str) -> None:
        """A graceful delete: the pod stays, terminating, as a kubelet would see it before running CNI DEL."""
        await self.core.delete_namespaced_pod(name, NAMESPACE, grace_period_seconds=30)

    async def force_delete(self, name: str) -> None:
        await self.core.delete_namespaced_pod(name, NAMESPACE, grace_period_seconds=0)

    async def records(self, pool: str) -> dict[str, PoolIPAllocation]:
        obj = await self.stores.ippools.get(pool)
        status = obj.get("status", {})
        records = decode_allocated_ips(status.get("allocatedIPs"))
        assert status.get("allocatedIPCount", 0) == len(records)
        return records

    async def endpoint(self, pod: str) -> SpiderEndpoint | None:
        try:
            return await self.stores.endpoints.get(pod, namespace=NAMESPACE)
        except NotFound:
            return None


def agent_config(control_plane: ControlPlane, node: str, socket: Path, **settings: Any) -> AgentConfig:
    return AgentConfig(node_name=node, socket_path=socket, kubeconfig=control_plane.kubeconfig, health_port=0,
                       metrics_port=0, cluster=ClusterSettings(**settings))


@asynccontextmanager
async def running_agent(control_plane: ControlPlane, node: str, socket: Path, *, pools: Iterable[str] = (),
                        writer_linger: float = 0.0, combiner: tuple[str, Path] | None = None, always: bool = True,
                        **settings: Any) -> AsyncIterator[Agent]:
    """The in-process agent of ``node`` on ``socket``, entered once its pool watch has delivered ``pools``;
    ``combiner``: the (URL, CA file) of a record combiner it sends its pool records through (``always``: every
    record, not only those of contended pools)."""
    config = agent_config(control_plane, node, socket, **settings)
    if combiner is not None:
        config = replace(config, combiner_url=combiner[0], combiner_ca_file=combiner[1], combiner_always=always)
    async with Agent(config, probe_interval=0.5, writer_linger=writer_linger) as agent:
        await wait_for_pools(agent, *pools)
        yield agent


class AgentLauncher(Protocol):
    """The ``node_agent`` fixture: ``running_agent`` on the test's control plane, its socket in ``socket_dir``."""

    def __call__(self, node: str, *pools: str, socket: str = "a.sock",
                 writer_linger: float = 0.0) -> AbstractAsyncContextManager[Agent]: ...


async def wait_for_pools(agent: Agent, *names: str) -> None:
    """Until the agent's pool watch has delivered every pool in ``names``."""
    async with asyncio.timeout(10):
        await agent.wait_for_pools(names)


async def eventually(predicate: Callable[[], bool], *, within: float = 10.0) -> None:
    """Until ``predicate()`` holds (the agent's watch caches catching up); AssertionError after ``within``."""
    steps = int(within / 0.02)
    for _ in range(steps):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not true within {within}s: {predicate}")


def cni_request(command: str, pod: V1Pod, *, ifname: str = "eth0", container_id: str | None = None,
                version: str = "1.0.0", extra: Mapping[str, Any] | None = None, **ipam: Any) -> CniRequest:
    """A validated CNI request for ``pod``, as the executable forwards it (``extra``: more top-level keys)."""
    name, uid = pod.metadata.name, pod.metadata.uid
    config = {"cniVersion": version, "name": "macvlan-test", "type": "macvlan",
              "ipam": {"type": "spiderpool", **ipam}, **(extra or {})}
    return parse_request(
        command=command,
        container_id=container_id or f"c-{uid}",
        netns=f"/var/run/netns/{name}",
        ifname=ifname,
        args=f"IgnoreUnknown=1;K8S_POD_NAMESPACE={NAMESPACE};K8S_POD_NAME={name};K8S_POD_UID={uid}",
        path="/opt/cni/bin",
        stdin=orjson.dumps(config),
    )


def netconf(socket: Path, *, version: str = "1.0.0", **ipam: Any) -> dict[str, Any]:
    """A macvlan network configuration delegating to spiderpool at ``socket``."""
    return {"cniVersion": version, "name": "macvlan-test", "type": "macvlan",
            "ipam": {"type": "spiderpool", "ipam_unix_socket_path": str(socket), **ipam}}


async def run_plugin(command: str, config: Mapping[str, Any], *, pod: V1Pod | None = None, ifname: str = "eth0",
                     container_id: str | None = None) -> PluginRun:
    """The real CNI executable, exec'd as macvlan would exec it (same environment and stdin)."""
    env = {"CNI_COMMAND": command, "CNI_PATH": "/opt/cni/bin"}
    if pod is not None:
        name, uid = pod.metadata.name, pod.metadata.uid
        env |= {"CNI_CONTAINERID": container_id or f"c-{uid}", "CNI_NETNS": f"/var/run/netns/{name}",
                "CNI_IFNAME": ifname,
                "CNI_ARGS": f"IgnoreUnknown=1;K8S_POD_NAMESPACE={NAMESPACE};K8S_POD_NAME={name};"
                            f"K8S_POD_INFRA_CONTAINER_ID={container_id or uid};K8S_POD_UID={uid}"}
    return await exec_plugin(cni_executable_path(), env, orjson.dumps(config))
