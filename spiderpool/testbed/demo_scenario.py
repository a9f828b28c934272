"""What the demo does once the control plane runs: CRDs, the controller, nodes with agents, a dual-stack pool pair
(admitted by the controller's webhooks; an overlapping pool refused), pods through macvlan, then the tables: each
pod's addresses read from inside its namespace, each pool's usage from its status; last, a pod whose CNI DEL is lost
and the controller releasing its addresses."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from spiderpool.core.specs import parse_ippool_spec
from spiderpool.devcluster.cluster import ControlPlane
from spiderpool.k8s.bodies import SpiderIPPool
from spiderpool.k8s.client import make_api_client
from spiderpool.k8s.crds import install_crds
from spiderpool.testbed.demo_controller import (
    show_leak_collection,
    show_mutation,
    show_refusal,
    start_controller,
    stop_controller,
)
from spiderpool.testbed.members import SimulatedPod
from spiderpool.testbed.netns_state import default_gateway, probe_tcp, read_interface
from spiderpool.testbed.testbed import Testbed

Say = Callable[[str], None]
STEPS: Final = 8


@dataclass(frozen=True, slots=True)
class DemoScenario:
    nodes: int = 2
    pods: int = 4
    namespace: str = "demo"
    pools: tuple[tuple[str, str, str, str], ...] = (
        # name, subnet, ips, gateway
        ("demo-v4", "10.250.100.0/24", "10.250.100.10-10.250.100.73", "10.250.100.1"),
        ("demo-v6", "fd00:250:100::/64", "fd00:250:100::10-fd00:250:100::4f", "fd00:250:100::1"),
    )


def _overlapping_pool(scenario: DemoScenario) -> SpiderIPPool:
    """A pool of the first pool's subnet whose range overlaps the first pool's: W04 refuses it."""
    _, subnet, ips, _ = scenario.pools[0]
    first = ips.split("-")[0]
    head, _, last_octet = first.rpartition(".")
    overlap = f"{head}.{int(last_octet) + 40}-{head}.{int(last_octet) + 89}"
    return {"metadata": {"name": "demo-v4-overlap"}, "spec": {"subnet": subnet, "ips": [overlap]}}


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = [headers, *rows]
    return "\n".join(
        "  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in lines
    )


async def _install_crds(plane: ControlPlane) -> None:
    api = await make_api_client(kubeconfig=plane.kubeconfig)
    try:
        await install_crds(api)
    finally:
        await api.close()


async def _create_pools(bed: Testbed, scenario: DemoScenario, say: Say) -> None:
    for name, subnet, ips, gateway in scenario.pools:
        body: SpiderIPPool = {"metadata": {"name": name}, "spec": {"subnet": subnet, "ips": [ips], "gateway": gateway}}
        await bed.stores.ippools.create(body)
        say(f"      SpiderIPPool {name}: subnet {subnet}, ips {ips}, gateway {gateway}")


async def _start_pods(bed: Testbed, scenario: DemoScenario, say: Say) -> list[SimulatedPod]:
    nodes = list(bed.nodes.values())
    v4, v6 = scenario.pools[0][0], scenario.pools[1][0]
    pods = []
    for index in range(scenario.pods):
        node = nodes[index % len(nodes)]
        pod = await bed.create_pod(node, name=f"demo-pod-{index + 1}", namespace=scenario.namespace)
        config = bed.macvlan(node, network="demo-macvlan", default_ipv4_ippool=[v4], default_ipv6_ippool=[v6])
        run = await bed.cni.add(pod, config)
        if not run.ok:
            raise RuntimeError(f"CNI ADD of {pod.key} failed: {run.describe()}\nagent log:\n{_agent_log(bed, pod)}")
        await bed.report_running(pod)
        got = ", ".join(str(address) for address in read_interface(pod.netns, "eth0").addresses)
        say(f"      {pod.name} on {node.name}: {got} ({run.seconds * 1000:.0f} ms)")
        pods.append(pod)
    return pods


def _agent_log(bed: Testbed, pod: SimulatedPod) -> str:
    return pod.node.agent.log_tail() if pod.node.agent else "(no agent)"


def _pod_rows(pods: Sequence[SimulatedPod]) -> list[list[str]]:
    rows = []
    for pod in pods:
        state = read_interface(pod.netns, "eth0")
        gateways = [str(default_gateway(pod.netns, version=v) or "-") for v in (4, 6)]
        v4 = ", ".join(str(a) for a in state.of_version(4)) or "-"
        v6 = ", ".join(str(a) for a in state.of_version(6)) or "-"
        rows.append([pod.name, pod.node.name, f"eth0 ({state.kind})", v4, v6, " / ".join(gateways)])
    return rows


async def _pool_rows(bed: Testbed, scenario: DemoScenario) -> list[list[str]]:
    rows = []
    for name, *_ in scenario.pools:
        pool = await bed.stores.ippools.get(name)
        status = pool.get("status", {})
        total = status.get("totalIPCount") or parse_ippool_spec(pool.get("spec")).total_ip_count
        rows.append([name, pool.get("spec", {}).get("subnet", ""), f"{status.get('allocatedIPCount', 0)} / {total}"])
    return rows


def _reachability(pods: Sequence[SimulatedPod]) -> str:
    """Pod 1 opens a TCP connection to the last pod (on another node when there are two): a refusal is an answer."""
    source, target = pods[0], pods[-1]
    address = read_interface(target.netns, "eth0").of_version(4)[0].ip
    answer = probe_tcp(source.netns, address)
    verdict = "reachable over the fabric" if answer == "answered" else f"NOT reachable ({answer})"
    return f"{source.name} ({source.node.name}) -> {target.name} {address} ({target.node.name}): {verdict}"


async def _wait_for_stop() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()


async def run_scenario(
    plane: ControlPlane, scenario: DemoScenario, *, say: Say, keep_until_signal: bool, ready_line: str, log_dir: Path
) -> None:
    await _install_crds(plane)
    say(f"[2/{STEPS}] CRDs: the six spiderpool.spidernet.io/v2beta1 kinds installed and served")
    say(f"[3/{STEPS}] controller: spiderpool-controller registers its admission webhooks, runs leak collection and")
    say("      serves the agents' record combiner (their contended pools' records)")
    controller = await start_controller(kubeconfig=plane.kubeconfig, log_dir=log_dir, say=say)
    try:
        async with Testbed(kubeconfig=plane.kubeconfig, agent_args=controller.combiner_args()) as bed:
            await _run_on_testbed(bed, scenario, say=say, keep_until_signal=keep_until_signal, ready_line=ready_line)
    finally:
        await stop_controller(controller, kubeconfig=plane.kubeconfig, say=say)


async def _run_on_testbed(
    bed: Testbed, scenario: DemoScenario, *, say: Say, keep_until_signal: bool, ready_line: str
) -> None:
    say(f"[4/{STEPS}] nodes: {scenario.nodes} network namespaces with masters ens192/ens224 on a shared L2 fabric,")
    started = time.monotonic()
    await asyncio.gather(*(bed.add_node(f"demo-node-{index + 1}") for index in range(scenario.nodes)))
    say(f"      a Node object and a spiderpool-agent each (ready in {time.monotonic() - started:.1f} s)")
    say(f"[5/{STEPS}] pools (one per family: together a dual-stack pair), through the admission webhooks:")
    await _create_pools(bed, scenario, say)
    await show_mutation(bed, scenario.pools[0][0], say)
    await show_refusal(bed, _overlapping_pool(scenario), say)
    say(f'[6/{STEPS}] pods: CNI ADD through Debian\'s macvlan with "ipam": {{"type": "spiderpool"}}:')
    await bed.core.create_namespace(scenario.namespace)
    pods = await _start_pods(bed, scenario, say)
    say(f"[7/{STEPS}] what the pods have (read with `ip` inside each pod's network namespace):\n")
    headers = ["POD", "NODE", "INTERFACE", "IPv4", "IPv6", "DEFAULT GW v4 / v6"]
    say(format_table(headers, _pod_rows(pods)))
    say("\n" + format_table(["POOL", "SUBNET", "ALLOCATED / TOTAL"], await _pool_rows(bed, scenario)))
    say("\n" + _reachability(pods) + "\n")
    say(f"[8/{STEPS}] a lost CNI DEL: {pods[-1].name} disappears without its DEL (a node's runtime died):")
    await show_leak_collection(bed, pods[-1], [name for name, *_ in scenario.pools], say=say)
    if keep_until_signal:
        say(ready_line)
        await _wait_for_stop()
    say("cleaning up: pods deleted (CNI DEL releases their addresses), agents stopped, namespaces removed")
