"""One run of the head-to-head: one system, one fresh API server, ``pods`` pods over ``nodes`` nodes, K in flight.

On a fresh :class:`~spiderpool.devcluster.cluster.ControlPlane` and :class:`~spiderpool.testbed.testbed.Testbed`:
deploy the system (``peer_systems``), create the Pod objects bound round-robin to the nodes, then

1. ADD phase: every node execs the system's IPAM executable for its pods, K at a time (``inflight.run_per_node``);
2. duplicates: addresses that successful ADDs handed to more than one pod;
3. every pod terminating (``kubectl delete``: untimed), then the DEL phase, the same way;
4. leaks: what the system's records still hold after every DEL (``Deployment.leftovers``).

Each phase reports wall time, p50/p99 of its calls, failed calls, API writes by request (``apiserver_request_total``:
every write verb, every code, 409s included) and CPU seconds of the node agents, of the executables (the driver's
reaped children: ``RUSAGE_CHILDREN``) and of kube-apiserver and etcd (``/proc``).
"""

from __future__ import annotations

import asyncio
import functools
import os
import resource
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from churn_parts import phase_writes
from inflight import Call, by_round_robin, cpu_seconds, latency_ms, run_per_node
from peer_systems import DEPLOYERS, Deployment, PoolRange, pool_range

from spiderpool.devcluster.cluster import ControlPlane
from spiderpool.testbed.cni_invocation import PluginRun, exec_plugin
from spiderpool.testbed.members import SimulatedPod
from spiderpool.testbed.request_counting import RequestCounts, difference, parse_request_counts
from spiderpool.testbed.testbed import Testbed

NAMESPACE: Final = "peers"
# Every kind a system under test writes: pools and endpoints (ours, upstream), whereabouts' pools, reservations and
# its leader Lease (kube-apiserver renews its own identity Lease too: ~6 writes a minute)
RESOURCES: Final = ("spiderippools", "spiderendpoints", "ippools", "overlappingrangeipreservations", "leases",
                    "pods", "events")
CALL_LIMIT: Final = 180.0  # seconds; past whereabouts' own 2-minute ADD deadline


@dataclass(frozen=True)
class RunSpec:
    system: str
    inflight: int
    pods: int
    nodes: int
    round: int


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def added_address(run: PluginRun) -> str | None:
    """The first address of a successful ADD's result (``"10.240.0.7/20"`` -> ``"10.240.0.7"``)."""
    if not run.ok:
        return None
    try:
        ips = run.json().get("ips") or []
    except ValueError:
        return None
    return str(ips[0]["address"]).split("/")[0] if ips else None


def duplicates(addresses: Sequence[str | None]) -> int:
    """Pods beyond the first that were handed the same address."""
    return sum(count - 1 for address, count in Counter(a for a in addresses if a).items() if count > 1)


async def _exec(deployment: Deployment, pod: SimulatedPod, command: str) -> PluginRun:
    call = pod.call(command, deployment.configs[pod.node.name], ifname="eth0", cni_path=deployment.cni_path,
                    extra_env=deployment.extra_env)
    started = time.perf_counter()
    try:
        return await exec_plugin(deployment.binary, call, time_limit=CALL_LIMIT)
    except TimeoutError:
        return PluginRun(-9, b"", f"killed after {CALL_LIMIT:.0f} s".encode(), time.perf_counter() - started)


class Probe:
    """Counters read before and after a phase: API writes, CPU of agents, executables, kube-apiserver, etcd."""

    def __init__(self, bed: Testbed, plane: ControlPlane, deployment: Deployment) -> None:
        self._bed, self._plane, self._deployment = bed, plane, deployment

    async def read(self) -> tuple[RequestCounts, dict[str, float]]:
        counts = parse_request_counts(await self._bed.core.read_metrics(), resources=RESOURCES)
        pids = self._plane.pids()
        cpu = {
            "agents": cpu_seconds(self._deployment.agent_pids()),
            "executables": children_cpu(),
            "apiserver": cpu_seconds([pids["kube-apiserver"]]),
            "etcd": cpu_seconds([pids["etcd"]]),
        }
        return counts, cpu


async def phase(probe: Probe, deployment: Deployment, pods: Sequence[SimulatedPod], command: str, *, inflight: int
                ) -> tuple[dict[str, Any], list[PluginRun]]:
    per_node: dict[str, list[Call[PluginRun]]] = {node.name: [] for node in deployment.nodes}
    for pod in pods:
        per_node[pod.node.name].append(functools.partial(_exec, deployment, pod, command))
    counts_before, cpu_before = await probe.read()
    started = time.perf_counter()
    runs = [run for node_runs in (await run_per_node(per_node, inflight=inflight)).values() for run in node_runs]
    seconds = time.perf_counter() - started
    counts_after, cpu_after = await probe.read()
    failed = [run.describe() for run in runs if not run.ok]
    report = {
        "seconds": round(seconds, 3),
        **latency_ms([run.seconds for run in runs]),
        "failed": len(failed),
        "failed_examples": failed[:3],
        **phase_writes(difference(counts_after, counts_before), len(pods)),
        "cpu_seconds": {key: round(cpu_after[key] - cpu_before[key], 3) for key in cpu_after},
        "latencies_ms": [round(run.seconds * 1000, 2) for run in runs],
        "ok": [run.ok for run in runs],
    }
    return report, runs


async def _pods(bed: Testbed, deployment: Deployment, count: int) -> list[SimulatedPod]:
    dealt = by_round_robin(list(range(count)), [node.name for node in deployment.nodes])
    by_name = {node.name: node for node in deployment.nodes}
    made = await asyncio.gather(*(
        bed.create_pod(by_name[node], name=f"peer-{index}", namespace=NAMESPACE, sandbox=deployment.sandboxes)
        for node, indexes in dealt.items() for index in indexes
    ))
    return list(made)


async def drive(bed: Testbed, plane: ControlPlane, spec: RunSpec, pool: PoolRange) -> dict[str, Any]:
    await bed.core.create_namespace(NAMESPACE)
    names = [f"{bed.prefix}-n{i}" for i in range(spec.nodes)]
    deployment = await DEPLOYERS[spec.system](bed, plane, names, pool)
    try:
        pods = await _pods(bed, deployment, spec.pods)
        probe = Probe(bed, plane, deployment)
        add, added = await phase(probe, deployment, pods, "ADD", inflight=spec.inflight)
        add["duplicates"] = duplicates([added_address(run) for run in added])
        await asyncio.gather(*(bed.terminate_pod(pod) for pod in pods))
        delete, _ = await phase(probe, deployment, pods, "DEL", inflight=spec.inflight)
        left = await deployment.leftovers()
        await asyncio.gather(*(bed.finish_pod(pod) for pod in pods))
    finally:
        await asyncio.to_thread(deployment.stop)
    return {"add": add, "del": delete, "leaked": left["records"], "left_after_del": left}


def run_once(spec: RunSpec) -> dict[str, Any]:
    """The run on its own control plane (started and stopped here); the machine's load when it started."""
    pool = pool_range(spec.pods)
    load = round(os.getloadavg()[0], 2)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as state, ControlPlane(state_dir=Path(state)) as plane:
        measured = asyncio.run(_run_on(plane, spec, pool))
    return {"system": spec.system, "inflight": spec.inflight, "round": spec.round, "pods": spec.pods,
            "nodes": spec.nodes, "pool_size": pool.size, "load_average_1m": load,
            "wall_seconds": round(time.perf_counter() - started, 1), **measured}


async def _run_on(plane: ControlPlane, spec: RunSpec, pool: PoolRange) -> dict[str, Any]:
    async with Testbed(kubeconfig=plane.kubeconfig) as bed:
        return await drive(bed, plane, spec, pool)
