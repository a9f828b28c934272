"""Benchmark of the chained ``macvlan`` + IPAM + ``coordinator`` ADD and DEL, ours against upstream v1.2.2 (issue 13).

Two identical set-ups, each on its own control plane (etcd + kube-apiserver, same binaries) with its own CRDs (ours
/ upstream's chart's), one simulated node (network namespace, ``ens192`` on the fabric bridge, a node address) and the
same SpiderCoordinator ``default`` (upstream's chart defaults as its webhook completes them, status ``Synced``
written as its controller would) and pool:

- **ours**: our agent (testbed, its defaults: no SpiderEndpoint for a plain pod), our ``spiderpool`` and
  ``coordinator`` executables;
- **upstream**: upstream's agent, ``spiderpool`` and ``coordinator`` (:mod:`upstream`: built from the Go module proxy
  and cached).  Its ``coordinator`` asks the agent at the fixed ``/var/run/spidernet/spiderpool.sock``, so the
  benchmark runs in a mount namespace of its own where that directory is a private one (nothing on the host changes).

The network is a conflist ``[macvlan (ipam: spiderpool), coordinator]`` run with the runtime's semantics
(:class:`spiderpool.testbed.cni_chain.CniChain`: ADD in order passing ``prevResult``, DEL in reverse).  Samples are
interleaved (ours, upstream, then upstream, ours, ...), each a fresh pod: Pod object and sandbox namespace made
untimed, the chain's ADD timed (every plugin's exec, as a runtime waits on them), the pod marked terminating
(untimed), the chain's DEL timed.  Besides the whole chain, the ``coordinator`` plugin's own exec is reported (the
part issue 13 adds).  Target (issue 13): our chain ADD p50 <= 1x upstream's.

    python perf/bench_coordinator.py [--json] [--samples 200]    # root; builds upstream when not cached

Writes perf/results/bench_coordinator.json; prints a table (to stderr with ``--json``).  Without our ``coordinator``
executable (before issue 13 lands) only upstream's side runs, and the JSON says so.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import statistics
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from benchkit import machine, percentile
from upstream import (
    UPSTREAM_VERSION,
    UpstreamAgent,
    ensure_upstream_binaries,
    install_upstream_crds,
    upstream_cni_bin_dir,
    upstream_ipam,
    webhook_filled_ippool,
)

from spiderpool.devcluster.apiserver import SERVICE_CLUSTER_IP_RANGE
from spiderpool.devcluster.cluster import ControlPlane
from spiderpool.testbed.cni_chain import ChainRun, CniChain
from spiderpool.testbed.members import SimulatedNode
from spiderpool.testbed.netconf import spiderpool_ipam
from spiderpool.testbed.netns import run_ip
from spiderpool.testbed.netns_state import interface_names
from spiderpool.testbed.testbed import Testbed

RESULTS: Final = Path(__file__).resolve().parent / "results" / "bench_coordinator.json"
UPSTREAM_SOCKET_DIR: Final = Path("/run/spidernet")  # /var/run/spidernet: upstream's coordinator's fixed agent socket
UPSTREAM_SOCKET: Final = UPSTREAM_SOCKET_DIR / "spiderpool.sock"
POOL: Final = "bench-coordinator"
SUBNET: Final = "10.252.0.0/16"
NODE_ADDRESS: Final = "10.252.0.1/16"
NAMESPACE: Final = "default"
WARMUP: Final = 5
API: Final = "spiderpool.spidernet.io/v2beta1"
CLONE_NEWNS: Final = 0x00020000


def enter_private_mount_namespace(socket_dir: Path) -> None:
    """This process (and its children from now on) in a mount namespace of its own, ``UPSTREAM_SOCKET_DIR`` bound to
    ``socket_dir``: the upstream agent's socket lands at its fixed path without touching the host's.  Must run
    before any thread starts (``unshare(CLONE_NEWNS)`` refuses a threaded process)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS) failed (root needed)")
    subprocess.run(["mount", "--make-rslave", "/"], check=True)  # host mounts (new netns) still reach us
    UPSTREAM_SOCKET_DIR.mkdir(parents=True, exist_ok=True)  # an empty mount point on the host at most
    socket_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "--bind", str(socket_dir), str(UPSTREAM_SOCKET_DIR)], check=True)


# ------------------------------------------------------------------------------------------------------------ set-up


def coordinator_objects() -> tuple[dict[str, Any], dict[str, Any]]:
    """The SpiderCoordinator ``default`` (upstream's chart values completed by its webhook) and its Synced status."""
    spec = {
        "mode": "auto", "podCIDRType": "auto", "tunePodRoutes": True, "hijackCIDR": ["169.254.0.0/16"],
        "detectGateway": False, "detectIPConflict": False, "vethLinkAddress": "", "vethMTU": 1500,
        "hostRuleTable": 500, "podRPFilter": 0, "txQueueLen": 0,
    }
    body = {"apiVersion": API, "kind": "SpiderCoordinator", "metadata": {"name": "default"}, "spec": spec}
    status = {"phase": "Synced", "serviceCIDR": [SERVICE_CLUSTER_IP_RANGE], "overlayPodCIDR": []}
    return body, status


def pool_object() -> dict[str, Any]:
    return webhook_filled_ippool({
        "apiVersion": API, "kind": "SpiderIPPool", "metadata": {"name": POOL},
        "spec": {"subnet": SUBNET, "ips": ["10.252.1.1-10.252.255.254"]},
    })


async def prepare_cluster(bed: Testbed) -> None:
    """The pool and the Synced coordinator on the testbed's API server (the same for both sides)."""
    await bed.core.create(pool_object())
    body, status = coordinator_objects()
    created = await bed.stores.coordinators.create(body)  # type: ignore[arg-type]  # plain JSON body
    await bed.stores.coordinators.replace_status({**created, "status": status})  # type: ignore[typeddict-item]


def chain_config(*, network: str, master: str, ipam: Mapping[str, Any], log_dir: Path) -> dict[str, Any]:
    """The conflist: macvlan with the IPAM, then the coordinator with its settings from the SpiderCoordinator, as a
    SpiderMultusConfig's NAD has it; its log level is upstream's default (debug), its file moved to ``log_dir``."""
    log_options = {"logLevel": "debug", "logFile": str(log_dir / "coordinator.log")}
    coordinator = {"type": "coordinator", "logOptions": log_options}
    macvlan = {"type": "macvlan", "master": master, "mode": "bridge", "ipam": dict(ipam)}
    return {"cniVersion": "0.4.0", "name": network, "plugins": [macvlan, coordinator]}


@dataclass
class Side:
    name: str
    bed: Testbed
    node: SimulatedNode
    chain: CniChain
    adds: list[ChainRun] = field(default_factory=list)
    dels: list[ChainRun] = field(default_factory=list)


async def _node(bed: Testbed, name: str, *, start_agent: bool) -> SimulatedNode:
    node = await bed.add_node(f"{bed.prefix}-{name}", start_agent=start_agent)
    await asyncio.to_thread(run_ip, "address", "add", NODE_ADDRESS, "dev", node.masters[0], netns=node.netns)
    return node


@asynccontextmanager
async def upstream_side(stack: AsyncExitStack, work: Path, binaries: Mapping[str, Path]) -> AsyncIterator[Side]:
    plane = stack.enter_context(ControlPlane(state_dir=work / "plane-upstream"))
    await asyncio.to_thread(install_upstream_crds, plane)
    bed = await stack.enter_async_context(Testbed(kubeconfig=plane.kubeconfig))
    await prepare_cluster(bed)
    node = await _node(bed, "up", start_agent=False)
    agent = UpstreamAgent(binary=binaries["spiderpool-agent"], node_name=node.name, kubeconfig=plane.kubeconfig,
                          socket_path=UPSTREAM_SOCKET, work_dir=work / "upstream-agent")
    await asyncio.to_thread(agent.start)
    try:
        ipam = upstream_ipam(socket_path=UPSTREAM_SOCKET, default_ipv4_ippool=[POOL], log_file=work / "up-ipam.log")
        config = chain_config(network="upstream-net", master=node.masters[0], ipam=ipam, log_dir=work / "up")
        chain = CniChain(config, cni_bin_dir=upstream_cni_bin_dir(work / "upstream-cni-bin"))
        yield Side("upstream", bed, node, chain)
    except BaseException:
        print(f"upstream agent log ({agent.log_path}):\n{agent.log_tail()}", file=sys.stderr)
        raise
    finally:
        await asyncio.to_thread(agent.stop)


@asynccontextmanager
async def our_side(stack: AsyncExitStack, work: Path) -> AsyncIterator[Side]:
    plane = stack.enter_context(ControlPlane(state_dir=work / "plane-ours"))
    await asyncio.to_thread(plane.sync_api().install_crds)
    bed = await stack.enter_async_context(Testbed(kubeconfig=plane.kubeconfig))
    await prepare_cluster(bed)
    node = await _node(bed, "ours", start_agent=True)
    ipam = spiderpool_ipam(socket_path=node.socket_path, default_ipv4_ippool=[POOL])
    config = chain_config(network="ours-net", master=node.masters[0], ipam=ipam, log_dir=work / "ours")
    yield Side("ours", bed, node, CniChain(config, cni_bin_dir=bed.cni_bin_dir,
                                            extra_env={"SPIDERPOOL_SOCKET": str(node.socket_path)}))


def our_coordinator_missing(bed_dir: Path) -> str | None:
    """Why our side cannot run (None when it can): our ``coordinator`` executable is installed with ``spiderpool``."""
    return None if (bed_dir / "coordinator").is_file() else f"our coordinator executable is not built ({bed_dir})"


# ---------------------------------------------------------------------------------------------------------- samples


async def one_sample(side: Side, index: int) -> None:
    """A fresh pod: ADD (timed), terminating (untimed), DEL (timed), gone (untimed)."""
    pod = await side.bed.create_pod(side.node, name=f"co-{side.name}-{index}", namespace=NAMESPACE)
    added = await side.chain.add(pod)
    if not added.ok:
        raise RuntimeError(f"{side.name}: chain ADD of {pod.key} failed: {added.describe()}")
    if index == 0 and interface_names(pod.netns) == ["lo", "eth0"]:  # untimed: the coordinator did its part
        raise RuntimeError(f"{side.name}: the coordinator added no interface to {pod.key}'s namespace")
    await side.bed.terminate_pod(pod)
    deleted = await side.chain.delete(pod, cached=added.result)
    if not deleted.ok:
        raise RuntimeError(f"{side.name}: chain DEL of {pod.key} failed: {deleted.describe()}")
    await side.bed.finish_pod(pod)
    side.adds.append(added)
    side.dels.append(deleted)


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(list(seconds), 0.50) * 1000, 3),
        "p99_ms": round(percentile(list(seconds), 0.99) * 1000, 3),
        "mean_ms": round(statistics.fmean(seconds) * 1000, 3),
        "samples": len(seconds),
    }


def plugin_seconds(runs: Sequence[ChainRun], plugin: str) -> list[float]:
    return [sum(run.seconds for kind, run in chain.runs if kind == plugin) for chain in runs]


def side_figures(side: Side) -> dict[str, Any]:
    adds, dels = side.adds[WARMUP:], side.dels[WARMUP:]  # the first requests warm caches and connections
    return {
        "chain_add": summary_ms([run.seconds for run in adds]),
        "chain_del": summary_ms([run.seconds for run in dels]),
        "coordinator_add": summary_ms(plugin_seconds(adds, "coordinator")),
        "coordinator_del": summary_ms(plugin_seconds(dels, "coordinator")),
        "macvlan_ipam_add": summary_ms(plugin_seconds(adds, "macvlan")),
    }


async def run(work: Path, *, samples: int) -> dict[str, Any]:
    binaries = await asyncio.to_thread(ensure_upstream_binaries)
    async with AsyncExitStack() as stack:
        upstream = await stack.enter_async_context(upstream_side(stack, work, binaries))
        ours = await stack.enter_async_context(our_side(stack, work))
        missing = our_coordinator_missing(ours.bed.cni_bin_dir)
        sides = [upstream] if missing else [ours, upstream]
        for index in range(samples + WARMUP):
            for side in sides if index % 2 == 0 else list(reversed(sides)):
                await one_sample(side, index)
        figures = {side.name: side_figures(side) for side in sides}
    result: dict[str, Any] = {"figures": figures, "samples": samples, "upstream_version": UPSTREAM_VERSION}
    if missing:
        result["ours_missing"] = missing
    else:
        result["ratios"] = {f"{key}_p50_vs_upstream": round(figures["ours"][key]["p50_ms"]
                                                            / figures["upstream"][key]["p50_ms"], 3)
                            for key in ("chain_add", "chain_del", "coordinator_add", "coordinator_del")}
        result["targets"] = {"chain_add_p50_vs_upstream": ["<=", 1.0]}
    return result


# ----------------------------------------------------------------------------------------------------------- report


ROWS: Final = (
    ("chain ADD (macvlan + IPAM + coordinator)", "chain_add"),
    ("  coordinator ADD", "coordinator_add"),
    ("  macvlan + IPAM ADD", "macvlan_ipam_add"),
    ("chain DEL", "chain_del"),
    ("  coordinator DEL", "coordinator_del"),
)


def table(result: Mapping[str, Any]) -> str:
    figures = result["figures"]
    names = list(figures)
    lines = ["| | " + " | ".join(f"{name} p50 / p99" for name in names) + " |", "|---|" + "---|" * len(names)]
    for label, key in ROWS:
        cells = [f"{figures[n][key]['p50_ms']:.1f} / {figures[n][key]['p99_ms']:.1f} ms" for n in names]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if "ratios" in result:
        ratios = {key.removesuffix("_p50_vs_upstream"): value for key, value in result["ratios"].items()}
        lines.append("ours / upstream p50: " + ", ".join(f"{key} {value}" for key, value in ratios.items())
                     + " (target: chain_add <= 1)")
    if "ours_missing" in result:
        lines.append(f"ours: not run: {result['ours_missing']}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print JSON; the table goes to stderr")
    parser.add_argument("--samples", type=int, default=200, help="measured ADD/DEL pairs per side (after 5 warm-up)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-coordinator-") as scratch:
        work = Path(scratch)
        enter_private_mount_namespace(work / "spidernet")
        result = asyncio.run(run(work, samples=args.samples))
    result["machine"] = machine()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result), file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
