"""``Testbed``: simulated nodes and pods against a real API server, wired with real CNI plugins.

    async with Testbed(kubeconfig=plane.kubeconfig) as bed:
        node = await bed.add_node("node-1")
        pod = await bed.create_pod(node, name="web-0", annotations={...})
        run = await bed.cni.add(pod, bed.macvlan(node, network="net", default_ipv4_ippool=["v4"]))
        read_interface(pod.netns, "eth0").addresses

The testbed is the scheduler (pods are created bound to a node) and the kubelet plus container runtime (sandbox
namespace, CNI ADD/DEL with the CNI environment, status report, deletion with grace 0).  ``close`` undoes everything
it made even after failures, and a testbed that died unclosed is swept by the next one (see ``leftovers``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from spiderpool.agent.install_cni import COORDINATOR_NAME, install_cni
from spiderpool.k8s.client import make_api_client
from spiderpool.k8s.core_objects import ROUTES, CoreObjects
from spiderpool.k8s.store import AlreadyExists, SpiderStores, StoreError
from spiderpool.testbed.agent_process import AgentOptions, AgentProcess
from spiderpool.testbed.cni_invocation import PluginRun
from spiderpool.testbed.cni_runtime import CniRuntime
from spiderpool.testbed.leftovers import PREFIX_LABEL, Claim, claim_prefix, live_prefixes, sweep_orphans
from spiderpool.testbed.members import NicAttachment, SimulatedNode, SimulatedPod, pod_body
from spiderpool.testbed.netconf import macvlan_config, spiderpool_ipam
from spiderpool.testbed.netns import add_netns, delete_netns, netns_path
from spiderpool.testbed.netns_state import read_interface
from spiderpool.testbed.prerequisites import DEBIAN_CNI_DIR
from spiderpool.testbed.topology import DEFAULT_MASTERS, Fabric, build_fabric, build_node_network

logger = logging.getLogger("spiderpool.testbed")

_API_PARALLELISM: Final = 32
NODE_ROUTE: Final = ROUTES[("v1", "Node")]


class Testbed:
    __test__ = False  # pytest: a class named Test* that is not a test class

    def __init__(
        self,
        *,
        kubeconfig: Path,
        masters: Sequence[str] = DEFAULT_MASTERS,
        plugin_dir: Path = DEBIAN_CNI_DIR,
        agent_args: Sequence[str] = (),
        log_dir: Path | None = None,
        conf_yml: str | None = None,
    ) -> None:
        """``log_dir``: where the agents' logs go, to outlive the testbed (default: its run directory, removed on
        close); ``conf_yml``: the agents' ``spiderpool-conf`` (``conf.yml`` text; default: none, the agent's
        defaults)."""
        self.kubeconfig = kubeconfig
        self._masters = tuple(masters)
        self._plugin_dir = plugin_dir
        self._agent_args = tuple(agent_args)
        self._log_dir = log_dir
        self._conf_yml = conf_yml
        self.nodes: dict[str, SimulatedNode] = {}
        self.pods: dict[str, SimulatedPod] = {}  # by "namespace/name"
        self._claim: Claim | None = None
        self._fabric: Fabric | None = None
        self._api: Any = None  # a kubernetes_asyncio ApiClient (this package may not import the client's types)
        self._objects: tuple[CoreObjects, SpiderStores] | None = None
        self._pod_counter = 0
        self._api_gate = asyncio.Semaphore(_API_PARALLELISM)

    # --- lifecycle ---------------------------------------------------------------------------------------------------

    async def start(self) -> None:
        swept = sweep_orphans()
        if swept:
            logger.warning("removed leftovers of dead testbeds: %s", swept)
        self._claim = claim_prefix()
        try:
            self.cni_bin_dir.mkdir()
            for plugin in sorted(self._plugin_dir.iterdir()):
                (self.cni_bin_dir / plugin.name).symlink_to(plugin)
            install_cni(self.cni_bin_dir)
            install_cni(self.cni_bin_dir, name=COORDINATOR_NAME)
            if self._conf_yml is not None:
                self.conf_dir.mkdir()
                (self.conf_dir / "conf.yml").write_text(self._conf_yml)
            self._fabric = build_fabric(prefix=self.prefix, masters=self._masters)
            self._api = await make_api_client(kubeconfig=self.kubeconfig)
            self._objects = (CoreObjects(self._api), SpiderStores(self._api))
            await self._sweep_api_objects()
        except BaseException:
            await self.close()
            raise

    async def _sweep_api_objects(self) -> None:
        """Delete the Pods and Nodes that dead testbeds created in this API server (found by their prefix label)."""
        alive = live_prefixes()
        for pod in await self.core.list_pods(label_selector=PREFIX_LABEL):
            meta = pod["metadata"]
            if meta.get("labels", {}).get(PREFIX_LABEL) not in alive:
                await self.core.delete_pod(meta["name"], namespace=meta["namespace"], uid=meta["uid"])
        for node in await self.core.list_objects(NODE_ROUTE, label_selector=PREFIX_LABEL):
            if node["metadata"].get("labels", {}).get(PREFIX_LABEL) not in alive:
                await self.core.delete_node(node["metadata"]["name"])

    async def close(self) -> None:
        """Remove pods (CNI DEL, Pod objects), stop agents, delete Node objects and every namespace; never raises
        before the namespaces and processes are gone."""
        agents = [node.agent for node in self.nodes.values() if node.agent is not None]
        try:
            await asyncio.gather(*(self._remove_quietly(pod) for pod in list(self.pods.values())))
            await asyncio.gather(*(asyncio.to_thread(agent.stop) for agent in agents))
            if self._objects is not None:
                for name in self.nodes:
                    with contextlib.suppress(StoreError, OSError):
                        await self.core.delete_node(name)
        finally:
            try:
                for agent in agents:
                    agent.kill()  # a no-op for the stopped ones; the rest are gone before their namespaces
                if self._claim is not None:
                    self._claim.release()
            finally:
                if self._api is not None:
                    await self._api.close()
                    self._api, self._objects = None, None

    async def __aenter__(self) -> Testbed:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def prefix(self) -> str:
        if self._claim is None:
            raise RuntimeError("the testbed has not been started")
        return self._claim.prefix

    @property
    def run_dir(self) -> Path:
        if self._claim is None:
            raise RuntimeError("the testbed has not been started")
        return self._claim.run_dir

    @property
    def fabric(self) -> Fabric:
        """The shared underlay (its namespace and bridges): where tests place other hosts of a segment."""
        if self._fabric is None:
            raise RuntimeError("the testbed has not been started")
        return self._fabric

    @property
    def conf_dir(self) -> Path:
        """The agents' ``--config-dir`` when the testbed was given a ``conf_yml``."""
        return self.run_dir / "conf"

    @property
    def core(self) -> CoreObjects:
        """Namespaces, Nodes, Pods and manifests on the testbed's API client."""
        if self._objects is None:
            raise RuntimeError("the testbed has not been started")
        return self._objects[0]

    @property
    def stores(self) -> SpiderStores:
        """The spiderpool kinds on the testbed's API client."""
        if self._objects is None:
            raise RuntimeError("the testbed has not been started")
        return self._objects[1]

    @property
    def cni_bin_dir(self) -> Path:
        """CNI_PATH: Debian's plugins (symlinked) and our ``spiderpool`` executable (installed as the chart does)."""
        return self.run_dir / "cni-bin"

    @property
    def cni(self) -> CniRuntime:
        """ADD/DEL/CHECK/GC/STATUS for the testbed's pods, with CNI_PATH = ``cni_bin_dir``."""
        return CniRuntime(cni_bin_dir=self.cni_bin_dir)

    # --- nodes -------------------------------------------------------------------------------------------------------

    async def add_node(
        self, name: str, *, labels: Mapping[str, str] | None = None, start_agent: bool = True
    ) -> SimulatedNode:
        """Namespace with master interfaces on the fabric, the Node object, and (unless told not to) its agent."""
        if self._fabric is None:
            raise RuntimeError("the testbed has not been started")
        if name in self.nodes:
            raise ValueError(f"node name: {name!r} exists already in this testbed")
        node = SimulatedNode(
            name=name,
            netns=f"{self.prefix}-node{len(self.nodes)}",
            socket_path=self.run_dir / f"agent-{len(self.nodes)}.sock",
            masters=self._fabric.masters,
        )
        self.nodes[name] = node
        build_node_network(self._fabric, netns=node.netns, index=len(self.nodes) - 1)
        with contextlib.suppress(AlreadyExists):
            await self.core.create_node(name, labels={**(labels or {}), PREFIX_LABEL: self.prefix})
        node.agent = AgentProcess(
            AgentOptions(
                node_name=name,
                kubeconfig=self.kubeconfig,
                socket_path=node.socket_path,
                log_path=(self._log_dir or self.run_dir) / f"agent-{name}.log",
                config_dir=self.conf_dir if self._conf_yml is not None else None,
                extra_args=self._agent_args,
                host_netns=netns_path(node.netns),
            )
        )
        if start_agent:
            await asyncio.to_thread(node.agent.start)
        return node

    def macvlan(
        self,
        node: SimulatedNode,
        *,
        network: str,
        master: str | None = None,
        cni_version: str = "1.0.0",
        default_ipv4_ippool: Sequence[str] = (),
        default_ipv6_ippool: Sequence[str] = (),
        clean_gateway: bool | None = None,
    ) -> dict[str, Any]:
        """The node's macvlan network configuration with ``"ipam": {"type": "spiderpool"}`` on its agent's socket."""
        ipam = spiderpool_ipam(
            socket_path=node.socket_path,
            default_ipv4_ippool=default_ipv4_ippool,
            default_ipv6_ippool=default_ipv6_ippool,
            clean_gateway=clean_gateway,
        )
        return macvlan_config(name=network, master=master or node.masters[0], ipam=ipam, cni_version=cni_version)

    # --- pods --------------------------------------------------------------------------------------------------------

    async def create_pod(
        self,
        node: SimulatedNode,
        *,
        name: str,
        namespace: str = "default",
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        owner_references: list[dict[str, Any]] | None = None,
        sandbox: bool = True,
    ) -> SimulatedPod:
        """The Pod object bound to ``node`` and its sandbox namespace (``sandbox=False``: no namespace is made, for
        pods only ever served by the IPAM executable directly, which does not enter it; CNI_NETNS still names it)."""
        body = pod_body(
            name=name,
            namespace=namespace,
            node_name=node.name,
            labels={**(labels or {}), PREFIX_LABEL: self.prefix},
            annotations=annotations,
            owner_references=owner_references,
        )
        async with self._api_gate:
            created = await self.core.create_pod(body)
        pod = self._register(created["metadata"], node)
        if sandbox:
            await asyncio.to_thread(add_netns, pod.netns)
        return pod

    async def adopt_pod(self, pod: Mapping[str, Any], node: SimulatedNode) -> SimulatedPod:
        """An existing unscheduled Pod (e.g. made by a ReplicaSet): bind it to ``node`` and give it a sandbox."""
        meta = pod["metadata"]
        async with self._api_gate:
            await self.core.bind_pod(meta["name"], namespace=meta["namespace"], node_name=node.name)
        adopted = self._register(meta, node)
        await asyncio.to_thread(add_netns, adopted.netns)
        return adopted

    def _register(self, meta: Mapping[str, Any], node: SimulatedNode) -> SimulatedPod:
        """Name the pod's namespace (in the event loop: the counter must not race) and remember the pod."""
        self._pod_counter += 1
        pod = SimulatedPod(
            name=meta["name"],
            namespace=meta["namespace"],
            uid=meta["uid"],
            node=node,
            netns=f"{self.prefix}-pod{self._pod_counter}",
        )
        self.pods[pod.key] = pod
        return pod

    async def terminate_pod(self, pod: SimulatedPod, *, grace_period_seconds: int = 30) -> None:
        """``kubectl delete pod``: the bound pod gets its deletionTimestamp and waits for its kubelet (us)."""
        async with self._api_gate:
            await self.core.delete_pod(
                pod.name, namespace=pod.namespace, grace_period_seconds=grace_period_seconds, uid=pod.uid
            )

    async def finish_pod(self, pod: SimulatedPod) -> None:
        """The kubelet's last acts once the sandbox is torn down: delete with grace 0, remove the namespace."""
        async with self._api_gate:
            await self.core.delete_pod(pod.name, namespace=pod.namespace, grace_period_seconds=0, uid=pod.uid)
        await asyncio.to_thread(delete_netns, pod.netns)
        self.pods.pop(pod.key, None)

    async def remove_pod(self, pod: SimulatedPod) -> list[PluginRun]:
        """A pod deletion end to end, in a kubelet's order: terminating, CNI DEL of every attachment (last first,
        so the agent sees a pod that will not run again and releases), then gone for good."""
        await self.terminate_pod(pod)
        runs = await self.cni.delete_all(pod)
        await self.finish_pod(pod)
        return runs

    async def _remove_quietly(self, pod: SimulatedPod) -> None:
        try:
            await self.remove_pod(pod)
        except Exception:
            logger.warning("could not remove pod %s cleanly", pod.key, exc_info=True)
            await asyncio.to_thread(delete_netns, pod.netns)

    async def replace_sandbox(self, pod: SimulatedPod, *, failed: Sequence[NicAttachment] = ()) -> None:
        """The kubelet after a failed sandbox: CNI DEL of what was attached and of what ``failed`` to attach, a new
        network namespace, a new container id.  (Debian's macvlan 1.1.1 leaves its interface behind when the IPAM
        ADD fails, so retrying in the old namespace would fail on the name; a kubelet never does that.)"""
        await self.cni.delete_all(pod)
        for attachment in failed:
            await self.cni.pod_command(
                pod,
                "DEL",
                attachment.config,
                ifname=attachment.ifname,
                direct_ipam=attachment.direct_ipam,
                extra_env=attachment.extra_env,
            )
        await asyncio.to_thread(delete_netns, pod.netns)
        await asyncio.to_thread(add_netns, pod.netns)
        pod.container_id = secrets.token_hex(32)

    async def report_running(self, pod: SimulatedPod, *, ifname: str = "eth0") -> None:
        """The kubelet's status report: Running, with the addresses ``ifname`` really has as ``podIPs``."""
        state = await asyncio.to_thread(read_interface, pod.netns, ifname)
        async with self._api_gate:
            current = await self.core.get_pod(pod.name, namespace=pod.namespace)
            await self.core.report_pod_running(current, pod_ips=[str(a.ip) for a in state.addresses])
