"""Benchmark of the pool status writer against a real kube-apiserver: group commit on vs off, 1 vs 4 nodes.

Starts its own ControlPlane (etcd + kube-apiserver on 127.0.0.1), installs the CRDs, and for each scenario fills a
fresh pool with ``--allocations`` concurrent allocations (a burst, as when a Deployment scales up), split round-robin
over ``writers`` simulated nodes.  Each node is a separate ``PoolStatusWriter`` on its own ApiClient with its own
compiled ``PoolAllocator``: every node starts its first-fit search at the same lowest address, as upstream's agents
do, so cross-node races and re-decisions are real.

Write requests are counted by the API server itself: ``apiserver_request_total`` for verb PUT/PATCH on
``spiderippools`` subresource ``status`` (every code, 409 included), scraped from ``/metrics`` before and after.
Every scenario is verified afterwards: one record per allocation, no duplicate address, count == records.

    python perf/bench_store.py [--json] [--allocations 1000]

Prints a table (to stderr with ``--json``, which prints the JSON document to stdout) and writes
``perf/results/bench_store.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
import time
from collections.abc import Mapping, Set
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchkit import machine

from spiderpool.core.addressing import parse_ip_ranges
from spiderpool.core.allocations import decode_allocated_ips
from spiderpool.core.allocator import PoolAllocator, format_address
from spiderpool.devcluster.cluster import ControlPlane
from spiderpool.k8s.bodies import SpiderIPPool
from spiderpool.k8s.client import make_api_client
from spiderpool.k8s.crds import install_crds
from spiderpool.k8s.status_plan import Allocated, AllocateIntent
from spiderpool.k8s.status_writer import PoolStatusWriter
from spiderpool.k8s.store import SpiderStores

RESULTS = Path(__file__).resolve().parent / "results" / "bench_store.json"
SUBNET = "10.128.0.0/16"
FIRST_ADDRESS = "10.128.0.1"
IN_FLIGHT = 16
_MAXIMA = ("largest_batch", "longest_conflict_streak")  # writer stats combined by max, not sum
TARGETS = {"writes_per_alloc_batched_4w": ("<=", 0.3), "batched_speedup_4w": (">=", 3.0)}
_SAMPLE = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Scenario:
    """``in_flight``: allocations each node keeps in flight (its concurrent CNI ADDs); None = one burst of all."""

    batching: bool
    writers: int
    in_flight: int | None = None

    @property
    def label(self) -> str:
        base = f"{'batched' if self.batching else 'unbatched'}_{self.writers}w"
        return base if self.in_flight is None else f"{base}_{self.in_flight}inflight"


@dataclass(frozen=True)
class RequestCounts:
    status_writes: float
    status_conflicts: float
    pool_reads: float


def request_counts(metrics_text: str) -> RequestCounts:
    """Sum ``apiserver_request_total`` over the samples that are SpiderIPPool status writes (and pool GETs)."""
    writes = conflicts = reads = 0.0
    for line in metrics_text.splitlines():
        sample = _SAMPLE.match(line)
        if sample is None:
            continue
        labels = dict(_LABEL.findall(sample["labels"]))
        if labels.get("resource") != "spiderippools":
            continue
        value = float(sample["value"])
        if labels.get("subresource") == "status" and labels.get("verb") in ("PUT", "PATCH"):
            writes += value
            conflicts += value if labels.get("code") == "409" else 0.0
        elif labels.get("verb") == "GET" and not labels.get("subresource"):
            reads += value
    return RequestCounts(writes, conflicts, reads)


def scrape(plane: ControlPlane) -> RequestCounts:
    return request_counts(plane.sync_api().get_text("/metrics"))


class Node:
    """One simulated node: its allocator picks the lowest address it believes free; re-decides on collisions."""

    def __init__(self, ranges: list[tuple[int, int]]) -> None:
        self.allocator = PoolAllocator(version=4, ranges=ranges)

    def choose(self) -> str | None:
        address = self.allocator.allocate()
        return None if address is None else format_address(4, address)

    def redecide(self, pool: SpiderIPPool, taken: Set[str], intent: AllocateIntent) -> str | None:
        # Each address this node thought free but another node took is marked used on the way: amortised O(1).
        while (address := self.allocator.allocate()) is not None:
            text = format_address(4, address)
            if text not in taken:
                return text
        return None


async def create_pool(plane: ControlPlane, name: str, size: int) -> list[tuple[int, int]]:
    last = f"10.128.{size // 256}.{size % 256}"
    ips = [f"{FIRST_ADDRESS}-{last}"]
    client = await make_api_client(kubeconfig=plane.kubeconfig)
    try:
        await SpiderStores(client).ippools.create({"metadata": {"name": name}, "spec": {"subnet": SUBNET, "ips": ips}})
    finally:
        await client.close()
    return parse_ip_ranges(ips, version=4, field="spec.ips")


async def allocate_one(writer: PoolStatusWriter, node: Node, pool: str, index: int) -> Allocated:
    intent = AllocateIntent(pod=f"bench/pod-{index}", pod_uid=f"uid-{index}", ip=node.choose())
    return await writer.allocate(pool, intent)


async def drive(
    writers: list[PoolStatusWriter], nodes: list[Node], pool: str, *, allocations: int, in_flight: int | None
) -> list[Allocated]:
    """Allocation ``i`` goes to node ``i % writers``; all at once, or ``in_flight`` back-to-back loops per node."""
    per_node = [range(k, allocations, len(writers)) for k in range(len(writers))]
    if in_flight is None:
        burst = [allocate_one(writers[k], nodes[k], pool, i) for k, indices in enumerate(per_node) for i in indices]
        return list(await asyncio.gather(*burst))

    async def loop(k: int, indices: range) -> list[Allocated]:
        return [await allocate_one(writers[k], nodes[k], pool, i) for i in indices]

    loops = [loop(k, indices[w::in_flight]) for k, indices in enumerate(per_node) for w in range(in_flight)]
    return [result for done in await asyncio.gather(*loops) for result in done]


async def run_allocations(
    plane: ControlPlane, pool: str, ranges: list[tuple[int, int]], *, scenario: Scenario, allocations: int
) -> tuple[float, list[Allocated], dict[str, int]]:
    """(seconds, results, writer stats summed over the nodes) of one scenario's allocations."""
    clients = [await make_api_client(kubeconfig=plane.kubeconfig) for _ in range(scenario.writers)]
    nodes = [Node(ranges) for _ in clients]
    writers = [
        PoolStatusWriter(SpiderStores(c).ippools, redecide=n.redecide, batching=scenario.batching)
        for c, n in zip(clients, nodes, strict=True)
    ]
    try:
        started = time.perf_counter()
        results = await drive(writers, nodes, pool, allocations=allocations, in_flight=scenario.in_flight)
        seconds = time.perf_counter() - started
    finally:
        for writer in writers:
            await writer.close()
        for client in clients:
            await client.close()
    stats: dict[str, int] = {}
    for writer in writers:
        for key, value in asdict(writer.stats).items():
            stats[key] = max(stats.get(key, 0), value) if key in _MAXIMA else stats.get(key, 0) + value
    return seconds, results, stats


async def verify(plane: ControlPlane, pool: str, results: list[Allocated]) -> None:
    client = await make_api_client(kubeconfig=plane.kubeconfig)
    try:
        obj = await SpiderStores(client).ippools.get(pool)
    finally:
        await client.close()
    records = decode_allocated_ips(obj["status"].get("allocatedIPs"))
    expected = {r.ip: (r.pod, r.pod_uid) for r in results}
    problems = []
    if len(expected) != len(results):
        problems.append(f"{len(results) - len(expected)} duplicate addresses handed out")
    if {ip: (r.pod, r.pod_uid) for ip, r in records.items()} != expected:
        problems.append("stored records differ from the results the callers got")
    if obj["status"].get("allocatedIPCount") != len(records):
        problems.append(f"allocatedIPCount {obj['status'].get('allocatedIPCount')} != {len(records)} records")
    if problems:
        raise AssertionError(f"pool {pool}: " + "; ".join(problems))


async def measure(
    plane: ControlPlane, scenario: Scenario, *, allocations: int, pool_size: int, prefix: str = "bench"
) -> dict[str, Any]:
    pool = f"{prefix}-{scenario.label.replace('_', '-')}"
    ranges = await create_pool(plane, pool, pool_size)
    before = await asyncio.to_thread(scrape, plane)
    seconds, results, stats = await run_allocations(plane, pool, ranges, scenario=scenario, allocations=allocations)
    after = await asyncio.to_thread(scrape, plane)
    await verify(plane, pool, results)
    writes = after.status_writes - before.status_writes
    return {
        "scenario": scenario.label,
        "batching": scenario.batching,
        "writers": scenario.writers,
        "in_flight_per_node": scenario.in_flight or "all",
        "allocations": allocations,
        "seconds": round(seconds, 3),
        "allocations_per_second": round(allocations / seconds, 1),
        "apiserver_status_writes": int(writes),
        "apiserver_status_409s": int(after.status_conflicts - before.status_conflicts),
        "apiserver_pool_gets": int(after.pool_reads - before.pool_reads),
        "writes_per_alloc": round(writes / allocations, 4),
        "writer_stats": stats,
        "verified": True,
    }


def ratios(results: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """Headline keys come from the paced pattern (``IN_FLIGHT`` per node); ``*_burst`` keys from the burst."""
    found: dict[str, float] = {}
    for pattern, suffix in ((f"_{IN_FLIGHT}inflight", ""), ("", "_burst")):
        for writers in (1, 4):
            batched, unbatched = results[f"batched_{writers}w{pattern}"], results[f"unbatched_{writers}w{pattern}"]
            found[f"writes_per_alloc_batched_{writers}w{suffix}"] = batched["writes_per_alloc"]
            found[f"writes_per_alloc_unbatched_{writers}w{suffix}"] = unbatched["writes_per_alloc"]
            speedup = batched["allocations_per_second"] / unbatched["allocations_per_second"]
            found[f"batched_speedup_{writers}w{suffix}"] = round(speedup, 2)
    return found


def targets_met(found: Mapping[str, float]) -> dict[str, bool]:
    return {key: (found[key] <= bound if op == "<=" else found[key] >= bound) for key, (op, bound) in TARGETS.items()}


def table(document: Mapping[str, Any]) -> str:
    header = (
        f"{'scenario':<26}{'seconds':>9}{'allocs/s':>11}{'writes':>8}{'409s':>7}{'GETs':>7}{'streak':>8}"
        f"{'writes/alloc':>14}"
    )
    lines = [header, "-" * len(header)]
    for row in document["results"]:
        lines.append(
            f"{row['scenario']:<26}{row['seconds']:>9.2f}{row['allocations_per_second']:>11.1f}"
            f"{row['apiserver_status_writes']:>8}{row['apiserver_status_409s']:>7}"
            f"{row['apiserver_pool_gets']:>7}{row['writer_stats']['longest_conflict_streak']:>8}{row['writes_per_alloc']:>14.4f}"
        )
    for key, value in document["ratios"].items():
        verdict = ""
        if key in TARGETS:
            op, bound = TARGETS[key]
            verdict = f"  (target {op} {bound}: {'met' if document['targets_met'][key] else 'MISSED'})"
        lines.append(f"{key} = {value}{verdict}")
    return "\n".join(lines)


async def run_all(plane: ControlPlane, *, allocations: int, pool_size: int) -> list[dict[str, Any]]:
    client = await make_api_client(kubeconfig=plane.kubeconfig)
    try:
        await install_crds(client)
    finally:
        await client.close()
    # Warm-up (TLS sessions, apiserver caches) on its own pool; not measured.
    await measure(plane, Scenario(batching=True, writers=4), allocations=40, pool_size=64, prefix="warmup")
    scenarios = [
        Scenario(batching, writers, in_flight)
        for in_flight in (IN_FLIGHT, None)
        for writers in (1, 4)
        for batching in (True, False)
    ]
    return [await measure(plane, s, allocations=allocations, pool_size=pool_size) for s in scenarios]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the JSON document on stdout (table on stderr)")
    parser.add_argument("--allocations", type=int, default=1000)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    pool_size = max(1024, args.allocations)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-store-") as state, ControlPlane(state_dir=Path(state)) as plane:
        rows = asyncio.run(run_all(plane, allocations=args.allocations, pool_size=pool_size))
    found = ratios({row["scenario"]: row for row in rows})
    document = {
        "benchmark": "bench_store",
        "description": "SpiderIPPool status writes: group commit on/off, 1 and 4 writer nodes, one burst per run",
        "machine": machine(),
        "parameters": {"allocations": args.allocations, "pool_size": pool_size, "linger_seconds": 0.0},
        "results": rows,
        "ratios": found,
        "targets": {key: f"{op} {bound}" for key, (op, bound) in TARGETS.items()},
        "targets_met": targets_met(found),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    print(table(document), file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(document, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
