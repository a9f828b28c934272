"""Benchmark of the CNI path, side by side with Debian's host-local IPAM in one run, on a real control plane.

1. exec time: our ``spiderpool`` executable vs ``host-local`` answering VERSION (interleaved, exec to exit);
2. ADD+DEL latency p50/p99, each pod's ADD then (pod terminating, as when a kubelet tears it down) its DEL:
   a. at the IPAM executable, exec'd directly (ours with its node agent; host-local with its files);
   b. through Debian's macvlan in a pod namespace, which execs the IPAM executable;
3. churn: 1,000 pods over 10 simulated nodes (10 agent processes) on a pool of exactly 1,000 addresses, every ADD at
   once, or with ``--churn-inflight K`` each node working through its pods K at a time (straight to the executable:
   the IPAM cost, not the namespace plumbing): time until all are allocated, ADD p50/p99, failed calls, API-server
   writes per pod (``apiserver_request_total`` write verbs on spiderippools and spiderendpoints, status included,
   every code; 409s also apart) and the agents' CPU seconds per ADD (``/proc``), then every pod terminating and
   DEL'd: the same figures for the release.  Run twice, on fresh nodes, pool and pods: the full mode
   (``enableStatelessSpiderEndpoint: true`` in the agents' ``conf.yml``: a SpiderEndpoint per pod, as upstream) and
   the lean mode (``false``, the default: pool records only).  Steps 1-2 run the agents' defaults.  The K-in-flight
   driver and the CPU reading are ``perf/inflight.py`` (``perf/bench_peers.py`` drives every system with them).

    python perf/bench_cni.py [--json] [--samples 200] [--churn-pods 1000] [--churn-nodes 10] [--churn-inflight K]
                             [--parts exec,latency,churn,churn_lean]

Starts its own ControlPlane; writes perf/results/bench_cni.json; prints a table (to stderr with ``--json``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchkit import machine, percentile
from churn_parts import agent_pids, configured_nodes, phase_writes
from inflight import Call, cpu_seconds, latency_ms, run_per_node

from spiderpool.devcluster.cluster import ControlPlane
from spiderpool.k8s.client import make_api_client
from spiderpool.k8s.crds import install_crds
from spiderpool.testbed.cni_invocation import CniCall, PluginRun
from spiderpool.testbed.controller_process import ControllerOptions, ControllerProcess
from spiderpool.testbed.members import SimulatedNode, SimulatedPod
from spiderpool.testbed.netconf import host_local_ipam, macvlan_config
from spiderpool.testbed.pool_audit import audit_pools
from spiderpool.testbed.request_counting import RequestCounts, difference
from spiderpool.testbed.request_counting import parse_request_counts as parse_counts
from spiderpool.testbed.testbed import Testbed

RESULTS = Path(__file__).resolve().parent / "results" / "bench_cni.json"
TARGETS = {
    "exec_vs_host_local": ("<=", 2.0),
    "writes_per_pod_churn": ("<=", 0.3),
    "writes_per_pod_churn_lean": ("<=", 0.3),
}
NAMESPACE = "bench"
STEPS: tuple[tuple[str, str | None], ...] = (("ADD+DEL", None), ("  ADD", "add_only"), ("  DEL", "del_only"))
WARMUP = 5  # ADD+DEL pairs per path run before the measured samples
CniAction = Callable[..., Awaitable[PluginRun]]  # CniRuntime.add / .delete: (pod, config, *, direct_ipam)


# ------------------------------------------------------------------------------------------------------------ stats


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(list(seconds), 0.50) * 1000, 3),
        "p99_ms": round(percentile(list(seconds), 0.99) * 1000, 3),
        "mean_ms": round(statistics.fmean(seconds) * 1000, 3),
        "samples": len(seconds),
    }


def side_by_side(ours: Sequence[float], host_local: Sequence[float]) -> dict[str, Any]:
    mine, theirs = summary_ms(ours), summary_ms(host_local)
    return {"ours": mine, "host_local": theirs, "ratio_p50": round(mine["p50_ms"] / theirs["p50_ms"], 3)}


# ------------------------------------------------------------------------------------------------------------ 1. exec


def time_exec(binary: Path, call: CniCall) -> float:
    """Seconds from spawn to exit of one synchronous exec (no event loop in the way)."""
    started = time.perf_counter()
    subprocess.run([str(binary)], input=call.stdin(), env=call.environment(), capture_output=True, check=True)
    return time.perf_counter() - started


def bench_exec(bed: Testbed, *, rounds: int) -> dict[str, Any]:
    call = CniCall(command="VERSION", config={"cniVersion": "1.0.0"})
    ours, host_local = bed.cni.plugin("spiderpool"), bed.cni.plugin("host-local")
    for _ in range(20):  # warm the page cache for both binaries
        time_exec(ours, call), time_exec(host_local, call)
    pairs = [(time_exec(ours, call), time_exec(host_local, call)) for _ in range(rounds)]
    return side_by_side([p[0] for p in pairs], [p[1] for p in pairs])


# --------------------------------------------------------------------------------------------------------- 2. latency


AddDel = tuple[float, float]  # seconds of the ADD, of the DEL


async def add_del_ours(bed: Testbed, pod: SimulatedPod, config: Mapping[str, Any], *, direct: bool) -> AddDel:
    added = await bed.cni.add(pod, config, direct_ipam=direct)
    if not added.ok:
        raise RuntimeError(f"ours: ADD of {pod.key} failed: {added.describe()}")
    await bed.terminate_pod(pod)  # not timed: the API call a user makes; the kubelet then DELs
    deleted = await bed.cni.delete(pod, config, direct_ipam=direct)
    if not deleted.ok:
        raise RuntimeError(f"ours: DEL of {pod.key} failed: {deleted.describe()}")
    return added.seconds, deleted.seconds


async def add_del_host_local(bed: Testbed, sandbox: SimulatedPod, config: Mapping[str, Any], *, direct: bool) -> AddDel:
    added = await bed.cni.add(sandbox, config, direct_ipam=direct)
    deleted = await bed.cni.delete(sandbox, config, direct_ipam=direct)
    if not (added.ok and deleted.ok):
        raise RuntimeError(f"host-local: {added.describe()} / {deleted.describe()}")
    return added.seconds, deleted.seconds


async def bench_latency(bed: Testbed, node: SimulatedNode, *, samples: int, direct: bool) -> dict[str, Any]:
    """Interleaved samples: a fresh pod of ours (a released pod cannot come back), one reused host-local sandbox."""
    tag, octet = ("ipam", 254) if direct else ("macvlan", 255)
    pool = f"bench-latency-{tag}"
    spec = {"subnet": f"10.{octet}.0.0/16", "ips": [f"10.{octet}.0.1-10.{octet}.255.254"]}
    await bed.stores.ippools.create({"metadata": {"name": pool}, "spec": spec})  # type: ignore[typeddict-item]
    ours_config = bed.macvlan(node, network=f"ours-{tag}", default_ipv4_ippool=[pool])
    ranges = [[{"subnet": f"10.{octet - 4}.0.0/16"}]]  # host-local's own subnet on the same fabric
    host_local = macvlan_config(
        name=f"hl-{tag}", master="ens192", ipam=host_local_ipam(data_dir=bed.run_dir / f"hl-{tag}", ranges=ranges)
    )
    count = samples + WARMUP
    pods = await asyncio.gather(
        *(bed.create_pod(node, name=f"lat-{tag}-{i}", namespace=NAMESPACE, sandbox=not direct) for i in range(count))
    )
    sandbox = await bed.create_pod(node, name=f"lat-{tag}-hl", namespace=NAMESPACE)
    ours: list[AddDel] = []
    theirs: list[AddDel] = []
    for pod in pods:
        ours.append(await add_del_ours(bed, pod, ours_config, direct=direct))
        theirs.append(await add_del_host_local(bed, sandbox, host_local, direct=direct))
    await asyncio.gather(*(bed.finish_pod(pod) for pod in pods))
    ours, theirs = ours[WARMUP:], theirs[WARMUP:]  # the first requests of each path warm caches and connections
    result = side_by_side([a + d for a, d in ours], [a + d for a, d in theirs])
    result["add_only"] = side_by_side([a for a, _ in ours], [a for a, _ in theirs])
    result["del_only"] = side_by_side([d for _, d in ours], [d for _, d in theirs])
    return result


# ----------------------------------------------------------------------------------------------------------- 3. churn


async def scrape(bed: Testbed) -> RequestCounts:
    return parse_counts(await bed.core.read_metrics())


async def churn_nodes(bed: Testbed, count: int, *, lean: bool) -> list[SimulatedNode]:
    tag = "lean" if lean else "churn"
    return await configured_nodes(bed, [f"{bed.prefix}-{tag}{i}" for i in range(count)], lean=lean)


async def verify_allocated(bed: Testbed, pool: str, pods: Sequence[SimulatedPod], *, lean: bool) -> dict[str, Any]:
    found = await bed.stores.ippools.get(pool)
    endpoints = (await bed.stores.endpoints.list(namespace=NAMESPACE)).items
    names = {pod.name for pod in pods}
    mine = [endpoint for endpoint in endpoints if endpoint["metadata"]["name"] in names]
    if lean and mine:
        raise AssertionError(f"lean churn: {len(mine)} SpiderEndpoints written, e.g. {mine[0]['metadata']['name']}")
    verdict = audit_pools([found], pods=await bed.core.list_pods(namespace=NAMESPACE), endpoints=endpoints,
                          check_endpoints=not lean)
    if not verdict.clean or verdict.record_count() != len(pods):
        raise AssertionError(
            f"churn pool {pool} after allocation: {verdict.record_count()} records; {verdict.describe()}"
        )
    if lean:
        return {"records": verdict.record_count(), "audit": "clean: one record per pod, live UIDs, no endpoints"}
    return {"records": verdict.record_count(), "audit": "clean: one record per pod, live UIDs, endpoints agree"}


@dataclass(frozen=True)
class ChurnPhase:
    seconds: float
    writes: dict[str, Any]
    latency: dict[str, float]
    failed: list[str]
    agent_cpu_seconds: float
    controller_cpu_seconds: float = 0.0  # the record combiner's work on the agents' behalf

    def report(self, calls: int) -> dict[str, Any]:
        """The phase's figures: wall time, latency, failures, writes (409s apart) and the agents' CPU per call."""
        return {
            "seconds": round(self.seconds, 3),
            **self.latency,
            "failed": len(self.failed),
            "failed_examples": self.failed[:3],
            **self.writes,
            "agent_cpu_seconds": round(self.agent_cpu_seconds, 3),
            "agent_cpu_ms_per_call": round(self.agent_cpu_seconds * 1000 / calls, 3),
            "controller_cpu_ms_per_call": round(self.controller_cpu_seconds * 1000 / calls, 3),
        }


async def timed_phase(bed: Testbed, per_node: Mapping[str, Sequence[Call[PluginRun]]], *,
                      nodes: Sequence[SimulatedNode], inflight: int | None,
                      controller_pids: Sequence[int] = ()) -> ChurnPhase:
    """Every node works through its CNI calls, ``inflight`` at a time (None: all at once); seconds until the last
    returned, the calls' latencies and failures, the API writes they caused and the agents' CPU seconds."""
    pods = sum(len(calls) for calls in per_node.values())
    pids = agent_pids(nodes)
    before, cpu_before, controller_before = await scrape(bed), cpu_seconds(pids), cpu_seconds(controller_pids)
    started = time.perf_counter()
    done = [run for runs in (await run_per_node(per_node, inflight=inflight)).values() for run in runs]
    seconds = time.perf_counter() - started
    cpu, controller = cpu_seconds(pids) - cpu_before, cpu_seconds(controller_pids) - controller_before
    return ChurnPhase(seconds, phase_writes(difference(await scrape(bed), before), pods),
                      latency_ms([run.seconds for run in done]), [run.describe() for run in done if not run.ok], cpu,
                      controller)


async def churn_setup(bed: Testbed, *, pods: int, nodes: int, lean: bool) -> Churn:
    """The pool of exactly ``pods`` addresses, the nodes with agents, the Pod objects bound round-robin."""
    tag, octet = ("lean", 252) if lean else ("churn", 253)
    pool = f"bench-{tag}"
    ips = [f"10.{octet}.0.1-10.{octet}.{pods // 256}.{pods % 256}"]  # x.0.1 onwards: exactly `pods` addresses
    spec: Any = {"subnet": f"10.{octet}.0.0/20", "ips": ips}
    await bed.stores.ippools.create({"metadata": {"name": pool}, "spec": spec})
    members = await churn_nodes(bed, nodes, lean=lean)
    configs = {node.name: bed.macvlan(node, network=tag, default_ipv4_ippool=[pool]) for node in members}
    made = await asyncio.gather(
        *(
            bed.create_pod(members[i % nodes], name=f"{tag}-{i}", namespace=NAMESPACE, sandbox=False)
            for i in range(pods)
        )
    )
    return Churn(pool, list(made), configs, members)


@dataclass(frozen=True)
class Churn:
    pool: str
    pods: list[SimulatedPod]
    configs: dict[str, dict[str, Any]]
    nodes: list[SimulatedNode]

    def calls(self, action: CniAction, pods: Sequence[SimulatedPod] | None = None
              ) -> dict[str, list[Call[PluginRun]]]:
        """Per node, one ``action`` (the runtime's ADD or DEL, straight to the IPAM executable) per pod of it."""
        per_node: dict[str, list[Call[PluginRun]]] = {node.name: [] for node in self.nodes}
        for pod in self.pods if pods is None else pods:
            config = self.configs[pod.node.name]
            per_node[pod.node.name].append(functools.partial(action, pod, config, direct_ipam=True))
        return per_node


async def bench_churn(bed: Testbed, *, pods: int, nodes: int, lean: bool = False, inflight: int | None = None,
                      controller_pids: Sequence[int] = ()) -> dict[str, Any]:
    churn = await churn_setup(bed, pods=pods, nodes=nodes, lean=lean)
    allocate = await timed_phase(bed, churn.calls(bed.cni.add), nodes=churn.nodes, inflight=inflight,
                                 controller_pids=controller_pids)
    verified = await verify_allocated(bed, churn.pool, churn.pods, lean=lean) if not allocate.failed else {
        "records": None, "audit": f"not audited: {len(allocate.failed)} ADDs failed"}
    await asyncio.gather(*(bed.terminate_pod(pod) for pod in churn.pods))  # as on "kubectl delete": untimed
    release = await timed_phase(bed, churn.calls(bed.cni.delete), nodes=churn.nodes, inflight=inflight,
                                controller_pids=controller_pids)
    remaining = (await bed.stores.ippools.get(churn.pool)).get("status", {}).get("allocatedIPCount", 0)
    await asyncio.gather(*(bed.finish_pod(pod) for pod in churn.pods))
    total = allocate.writes["writes"] + release.writes["writes"]
    pool_total = allocate.writes["pool_writes"] + release.writes["pool_writes"]
    return {
        "mode": "lean (enableStatelessSpiderEndpoint: false)" if lean else "full (a SpiderEndpoint per pod)",
        "pods": pods,
        "nodes": nodes,
        "inflight_per_node": inflight or "all at once",
        "pool_size": pods,
        "allocate_seconds": round(allocate.seconds, 3),
        "release_seconds": round(release.seconds, 3),
        "allocate": allocate.report(pods),
        "release": release.report(pods),
        "writes_per_pod": round(total / pods, 4),
        "pool_writes_per_pod": round(pool_total / pods, 4),
        "leaked_after_release": remaining,
        "verified": verified,
    }


# ------------------------------------------------------------------------------------------------------------ report


def headline(document: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, float]]:
    figures: dict[str, float] = {}
    ratios: dict[str, float] = {}
    if "exec_version" in document:
        figures["exec_version_p50_ms_ours"] = document["exec_version"]["ours"]["p50_ms"]
        ratios["exec_vs_host_local"] = document["exec_version"]["ratio_p50"]
    for path in ("ipam", "macvlan"):
        if f"add_del_{path}" in document:
            found = document[f"add_del_{path}"]
            figures |= {f"add_del_{path}_p50_ms_ours": found["ours"]["p50_ms"],
                        f"add_del_{path}_p99_ms_ours": found["ours"]["p99_ms"],
                        f"add_{path}_p50_ms_ours": found["add_only"]["ours"]["p50_ms"]}
            ratios[f"add_del_{path}_vs_host_local"] = found["ratio_p50"]
    for key, suffix in (("churn", ""), ("churn_lean", "_lean")):
        if key in document:
            figures_of, ratios_of = churn_headline(document[key], suffix)
            figures |= figures_of
            ratios |= ratios_of
    return figures, ratios


def churn_headline(churn: Mapping[str, Any], suffix: str) -> tuple[dict[str, float], dict[str, float]]:
    allocate = churn["allocate"]
    figures = {
        f"churn_1000_seconds{suffix}": churn["allocate_seconds"],
        f"churn_1000_release_seconds{suffix}": churn["release_seconds"],
        f"churn_add_p50_ms{suffix}": allocate["p50_ms"],
        f"churn_add_p99_ms{suffix}": allocate["p99_ms"],
        f"churn_add_failed{suffix}": allocate["failed"],
        f"churn_agent_cpu_ms_per_add{suffix}": allocate["agent_cpu_ms_per_call"],
    }
    ratios = {
        f"writes_per_pod_churn{suffix}": churn["writes_per_pod"],
        f"pool_writes_per_pod_churn{suffix}": churn["pool_writes_per_pod"],
        f"writes_per_pod_allocate{suffix}": allocate["writes_per_pod"],
    }
    return figures, ratios


def _step(measured: Mapping[str, Any], key: str | None) -> Mapping[str, Any]:
    return measured if key is None else measured[key]


def table(document: Mapping[str, Any]) -> str:
    lines = [f"{'':<26}{'ours p50':>10}{'ours p99':>10}{'host-local p50':>16}{'host-local p99':>16}{'ratio p50':>11}"]
    rows = [("exec VERSION (ms)", document["exec_version"])] if "exec_version" in document else []
    for path, where in (("ipam", "at IPAM"), ("macvlan", "via macvlan")):
        if f"add_del_{path}" in document:
            rows += [(f"{label} {where} (ms)", _step(document[f"add_del_{path}"], key)) for label, key in STEPS]
    lines = lines if rows else []
    for label, row in rows:
        lines.append(
            f"{label:<26}{row['ours']['p50_ms']:>10.2f}{row['ours']['p99_ms']:>10.2f}"
            f"{row['host_local']['p50_ms']:>16.2f}{row['host_local']['p99_ms']:>16.2f}{row['ratio_p50']:>11.3f}"
        )
    for key in ("churn", "churn_lean"):
        if key in document:
            lines.extend(churn_lines(document[key]))
    for key, value in document["ratios"].items():
        verdict = ""
        if key in TARGETS:
            op, bound = TARGETS[key]
            met = value <= bound if op == "<=" else value >= bound
            verdict = f"  (target {op} {bound}: {'met' if met else 'MISSED'})"
        lines.append(f"{key} = {value}{verdict}")
    return "\n".join(lines)


def churn_lines(churn: Mapping[str, Any]) -> list[str]:
    lines = [
        f"churn, {churn['mode']}: {churn['pods']} pods / {churn['nodes']} nodes / pool of {churn['pool_size']}, "
        f"in flight per node: {churn['inflight_per_node']}: all allocated in {churn['allocate_seconds']:.2f} s, "
        f"all released in {churn['release_seconds']:.2f} s"
    ]
    for phase in ("allocate", "release"):
        found = churn[phase]
        lines.append(
            f"  {phase}: p50 {found['p50_ms']:.1f} ms, p99 {found['p99_ms']:.1f} ms, {found['failed']} failed; "
            f"agents' CPU {found['agent_cpu_seconds']:.2f} s ({found['agent_cpu_ms_per_call']:.2f} ms/call; "
            f"controller {found['controller_cpu_ms_per_call']:.2f} ms/call); "
            f"{found['writes']} writes ({found['writes_per_pod']}/pod; without 409s "
            f"{found['writes_per_pod_without_409']}/pod; pools {found['pool_writes']}, endpoints "
            f"{found['endpoint_writes']}, 409s {found['conflicts_409']}): {found['by_request']}"
        )
    return lines


PARTS = ("exec", "latency", "churn", "churn_lean")


async def run_all(plane: ControlPlane, options: argparse.Namespace) -> dict[str, Any]:
    client = await make_api_client(kubeconfig=plane.kubeconfig)
    try:
        await install_crds(client)
    finally:
        await client.close()
    parts: Sequence[str] = options.parts
    found: dict[str, Any] = {}
    churn = {"pods": options.churn_pods, "nodes": options.churn_nodes, "inflight": options.churn_inflight}
    with started_controller(plane, combiner=options.combiner, always=options.combiner_always) as (
            agent_args, controller_pid):
        churn["controller_pids"] = [controller_pid]
        async with Testbed(kubeconfig=plane.kubeconfig, agent_args=agent_args) as bed:
            await run_parts(bed, options, parts, churn, found)
    return found


async def run_parts(bed: Testbed, options: argparse.Namespace, parts: Sequence[str], churn: dict[str, Any],
                    found: dict[str, Any]) -> None:
    await bed.core.create_namespace(NAMESPACE)
    if "exec" in parts:
        found["exec_version"] = await asyncio.to_thread(bench_exec, bed, rounds=options.exec_rounds)
    if "latency" in parts:
        node = await bed.add_node(f"{bed.prefix}-latency")
        found["add_del_ipam"] = await bench_latency(bed, node, samples=options.samples, direct=True)
        found["add_del_macvlan"] = await bench_latency(bed, node, samples=options.samples, direct=False)
    if "churn" in parts:
        found["churn"] = await bench_churn(bed, **churn)
    if "churn_lean" in parts:
        found["churn_lean"] = await bench_churn(bed, **churn, lean=True)


@contextlib.contextmanager
def started_controller(plane: ControlPlane, *, combiner: bool, always: bool = False
                       ) -> Iterator[tuple[list[str], int]]:
    """Our deployment's controller (webhooks, leak collection, the record combiner), as the chart runs it; yields
    the agents' flags for its record combiner (none with ``combiner=False``: agents write every record directly)
    and its pid."""
    state = Path(tempfile.mkdtemp(prefix="bench-controller-"))
    controller = ControllerProcess(ControllerOptions(kubeconfig=plane.kubeconfig, log_path=state / "controller.log",
                                                     tls_dir=state / "tls"))
    controller.start()
    try:
        assert controller.pid is not None
        flags = [*controller.combiner_args(), *(["--combiner-always"] if always else [])]
        yield (flags if combiner else []), controller.pid
    finally:
        controller.stop()
        shutil.rmtree(state, ignore_errors=True)


def parts_list(text: str) -> tuple[str, ...]:
    chosen = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [part for part in chosen if part not in PARTS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"parts are a comma list of {', '.join(PARTS)}; got {text!r}")
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the JSON document on stdout (table on stderr)")
    parser.add_argument("--samples", type=int, default=200, help="ADD+DEL samples per path and implementation")
    parser.add_argument("--exec-rounds", type=int, default=300, help="VERSION execs per executable")
    parser.add_argument("--churn-pods", type=int, default=1000)
    parser.add_argument("--churn-nodes", type=int, default=10)
    parser.add_argument("--churn-inflight", type=int, default=None, metavar="K",
                        help="churn: each node works through its pods with K CNI calls in flight (default: every "
                             "call of every node at once)")
    parser.add_argument("--no-combiner", dest="combiner", action="store_false",
                        help="agents write every pool record directly, not through the controller's record combiner")
    parser.add_argument("--combiner-always", action="store_true",
                        help="agents send every pool record through the combiner, not only contended pools' records")
    parser.add_argument("--parts", type=parts_list, default=PARTS,
                        help=f"what to run, a comma list of {','.join(PARTS)} (default: all)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    options = parser.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-cni-") as state, ControlPlane(state_dir=Path(state)) as plane:
        document: dict[str, Any] = {"benchmark": "bench_cni", "machine": machine()}
        document |= asyncio.run(run_all(plane, options))
    document["figures"], document["ratios"] = headline(document)
    document["targets"] = {key: f"{op} {bound}" for key, (op, bound) in TARGETS.items()}
    document["method"] = {
        "timer": "time.perf_counter around each exec (spawn to exit; asyncio subprocesses for ADD/DEL)",
        "host_local": "Debian containernetworking-plugins 1.1.1, /usr/lib/cni/host-local, files in a tmpfs run dir",
        "add_del": "ADD, then the pod is set terminating (untimed API call), then DEL; ours on a fresh pod each sample",
        "macvlan": "Debian macvlan in the node's namespace (nsenter), pod namespace with IPv6 DAD off",
        "churn": "straight to the executable (no pod namespaces), every node at once, each node's calls all at once "
                 "or K in flight (--churn-inflight); apiserver_request_total writes; the agents' CPU from "
                 "/proc/<pid>/stat; full mode, then lean mode (the default) on fresh nodes, pool and pods",
        "parameters": vars(options) | {"output": str(options.output)},
    }
    document["wall_seconds"] = round(time.perf_counter() - started, 1)
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(json.dumps(document, indent=2) + "\n")
    print(table(document), file=sys.stderr if options.json else sys.stdout)
    if options.json:
        print(json.dumps(document, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
