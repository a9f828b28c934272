"""The systems of the head-to-head (``perf/bench_peers.py``), each deployed on a fresh testbed the same way.

A deployment is what the driver needs to exec a system's IPAM executable for a pod of a node, as that node's
macvlan would: the executable, the node's network configuration, CNI_PATH and environment; plus the process ids of
its node agents (for their CPU) and a way to count what a finished DEL phase left behind.

- ``ours``: this project's agent per node (its defaults) and the ``spiderpool`` executable, one SpiderIPPool;
  ``ours-full`` (on request): the same with a SpiderEndpoint per pod (``enableStatelessSpiderEndpoint: true``);
- ``upstream``: upstream Spiderpool v1.2.2's ``spiderpool-agent`` per node and its ``spiderpool`` executable, upstream's
  CRDs, the pool filled as upstream's webhook would (``perf/upstream.py``);
- ``whereabouts``: whereabouts v0.9.2's executable with its defaults, its CRDs, no node agent
  (``perf/peer_whereabouts.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import peer_whereabouts
import upstream
from churn_parts import FULL_CONF, agent_pids

from spiderpool.devcluster.cluster import ControlPlane
from spiderpool.testbed.agent_process import AgentProcess
from spiderpool.testbed.controller_process import ControllerOptions, ControllerProcess
from spiderpool.testbed.members import SimulatedNode
from spiderpool.testbed.netconf import macvlan_config
from spiderpool.testbed.testbed import Testbed

NETWORK: Final = "peers"
POOL: Final = "peers-v4"
SYSTEMS: Final = ("ours", "upstream", "whereabouts")  # the default set; ``ours-full`` on request


@dataclass(frozen=True)
class PoolRange:
    """Exactly ``size`` IPv4 addresses from ``first`` of ``subnet`` (a /20: the same addresses for every system)."""

    subnet: str
    first: str
    last: str
    size: int


def pool_range(size: int, *, second_octet: int = 240) -> PoolRange:
    """``10.N.0.1`` onwards, ``size`` addresses (at most 4094: the /20)."""
    if not 0 < size <= 4094:
        raise ValueError(f"pool size {size}: 1 to 4094 addresses fit the /20")
    last = size  # offset of the last address from 10.N.0.0
    return PoolRange(f"10.{second_octet}.0.0/20", f"10.{second_octet}.0.1",
                     f"10.{second_octet}.{last // 256}.{last % 256}", size)


@dataclass
class Deployment:
    """A system ready to serve its nodes' CNI calls."""

    system: str
    binary: Path
    cni_path: Path
    configs: dict[str, dict[str, Any]]  # network configuration by node name
    nodes: list[SimulatedNode]
    agent_pids: Callable[[], list[int]]
    leftovers: Callable[[], Awaitable[dict[str, int]]]  # "records" (the leak count) and any other objects left
    extra_env: dict[str, str] = field(default_factory=dict)
    stop: Callable[[], None] = lambda: None
    sandboxes: bool = False  # the executable opens CNI_NETNS even when exec'd directly: pods need a namespace


Deployer = Callable[[Testbed, ControlPlane, Sequence[str], PoolRange], Awaitable[Deployment]]


async def _nodes(bed: Testbed, names: Sequence[str], *, agents: bool) -> list[SimulatedNode]:
    made = await asyncio.gather(*(bed.add_node(name, start_agent=agents) for name in names))
    return list(made)


async def _spider_leftovers(bed: Testbed) -> dict[str, int]:
    """Records left in every SpiderIPPool (the leak count) and SpiderEndpoints left in the cluster."""
    pools = (await bed.stores.ippools.list()).items
    records = sum(int((pool.get("status") or {}).get("allocatedIPCount") or 0) for pool in pools)
    endpoints = len((await bed.stores.endpoints.list()).items)
    return {"records": records, "endpoints": endpoints}


async def _deploy_ours(bed: Testbed, plane: ControlPlane, names: Sequence[str], pool: PoolRange, *, full: bool
                       ) -> Deployment:
    """Our agents and our controller, as the chart deploys them: the agents send pool records through the
    controller's record combiner. The controller's CPU is counted with the agents'."""
    await asyncio.to_thread(plane.sync_api().install_crds)
    spec: Any = {"subnet": pool.subnet, "ips": [f"{pool.first}-{pool.last}"]}
    await bed.stores.ippools.create({"metadata": {"name": POOL}, "spec": spec})
    options = ControllerOptions(kubeconfig=plane.kubeconfig, log_path=bed.run_dir / "controller.log",
                                tls_dir=bed.run_dir / "controller-tls")
    controller = ControllerProcess(options)
    await asyncio.to_thread(controller.start)
    conf_dir = bed.run_dir / "conf-full"
    if full:
        conf_dir.mkdir(exist_ok=True)
        (conf_dir / "conf.yml").write_text(FULL_CONF)
    nodes = await _nodes(bed, names, agents=False)
    for node in nodes:
        assert node.agent is not None
        given = node.agent.options
        node.agent = AgentProcess(replace(given, extra_args=(*given.extra_args, *controller.combiner_args()),
                                          config_dir=conf_dir if full else given.config_dir))
    try:
        await asyncio.gather(*(asyncio.to_thread(node.agent.start) for node in nodes if node.agent is not None))
    except BaseException:
        await asyncio.to_thread(controller.stop)  # the testbed stops the agents; the controller is ours to stop
        raise
    configs = {node.name: bed.macvlan(node, network=NETWORK, default_ipv4_ippool=[POOL]) for node in nodes}
    return Deployment("ours-full" if full else "ours", bed.cni.plugin("spiderpool"), bed.cni_bin_dir, configs, nodes,
                      lambda: agent_pids(nodes) + ([controller.pid] if controller.pid is not None else []),
                      lambda: _spider_leftovers(bed), stop=controller.stop)


async def deploy_ours(bed: Testbed, plane: ControlPlane, names: Sequence[str], pool: PoolRange) -> Deployment:
    """This project with the agents' defaults (lean endpoints)."""
    return await _deploy_ours(bed, plane, names, pool, full=False)


async def deploy_ours_full(bed: Testbed, plane: ControlPlane, names: Sequence[str], pool: PoolRange) -> Deployment:
    """This project in the full mode (``enableStatelessSpiderEndpoint: true``: a SpiderEndpoint per pod)."""
    return await _deploy_ours(bed, plane, names, pool, full=True)


async def deploy_whereabouts(bed: Testbed, plane: ControlPlane, names: Sequence[str], pool: PoolRange) -> Deployment:
    binary = await asyncio.to_thread(peer_whereabouts.ensure_whereabouts)
    crds = await asyncio.to_thread(peer_whereabouts.crds)
    await asyncio.to_thread(plane.sync_api().install_crds, crds=crds)
    nodes = await _nodes(bed, names, agents=False)
    flat = peer_whereabouts.write_flat_file(bed.run_dir / "whereabouts.conf", kubeconfig=plane.kubeconfig)
    configs = {
        node.name: peer_whereabouts.network_config(name=NETWORK, master=node.masters[0], flat_file=flat,
                                                   subnet=pool.subnet, first=pool.first, last=pool.last)
        for node in nodes
    }

    async def leftovers() -> dict[str, int]:
        space = peer_whereabouts.NAMESPACE
        pools = await bed.core.list_objects(peer_whereabouts.IPPOOLS, namespace=space)
        reservations = await bed.core.list_objects(peer_whereabouts.RESERVATIONS, namespace=space)
        return {"records": peer_whereabouts.allocations_of(pools), "reservations": len(reservations)}

    return Deployment("whereabouts", binary, bed.cni_bin_dir, configs, nodes, list, leftovers)


async def deploy_upstream(bed: Testbed, plane: ControlPlane, names: Sequence[str], pool: PoolRange) -> Deployment:
    """Upstream's CRDs, its agent per node (its chart's settings), the pool as its webhook would fill it."""
    binaries = await asyncio.to_thread(upstream.ensure_upstream_binaries)
    await asyncio.to_thread(upstream.install_upstream_crds, plane)
    body = {"apiVersion": "spiderpool.spidernet.io/v2beta1", "kind": "SpiderIPPool", "metadata": {"name": POOL},
            "spec": {"subnet": pool.subnet, "ips": [f"{pool.first}-{pool.last}"]}}
    await bed.core.create(upstream.webhook_filled_ippool(body))
    nodes = await _nodes(bed, names, agents=False)
    agents = [upstream.UpstreamAgent(binary=binaries["spiderpool-agent"], node_name=node.name,
                                     kubeconfig=plane.kubeconfig, socket_path=node.socket_path,
                                     work_dir=bed.run_dir / f"upstream-{node.name}") for node in nodes]

    def stop() -> None:
        for agent in agents:
            agent.stop()

    try:
        await asyncio.gather(*(asyncio.to_thread(agent.start) for agent in agents))
    except BaseException:
        await asyncio.to_thread(stop)
        raise
    cni_dir = await asyncio.to_thread(upstream.upstream_cni_bin_dir, bed.run_dir / "upstream-cni-bin")
    configs = {
        node.name: macvlan_config(name=NETWORK, master=node.masters[0], ipam=upstream.upstream_ipam(
            socket_path=node.socket_path, default_ipv4_ippool=[POOL], log_file=bed.run_dir / "upstream-cni.log"))
        for node in nodes
    }
    return Deployment("upstream", cni_dir / "spiderpool", cni_dir, configs, nodes,
                      lambda: [pid for agent in agents if (pid := agent.pid) is not None],
                      lambda: _spider_leftovers(bed), stop=stop, sandboxes=True)


DEPLOYERS: Final[dict[str, Deployer]] = {"ours": deploy_ours, "ours-full": deploy_ours_full,
                                         "upstream": deploy_upstream, "whereabouts": deploy_whereabouts}


def prepare(systems: Sequence[str], log: Callable[[str], None]) -> None:
    """Build (or find in the cache) every system's executables before anything is timed."""
    if "whereabouts" in systems:
        log(f"whereabouts: {peer_whereabouts.ensure_whereabouts()}")
    if "upstream" in systems:
        log(f"upstream: {', '.join(map(str, upstream.ensure_upstream_binaries().values()))}")
