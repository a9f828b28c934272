"""Benchmark of leak collection against a real kube-apiserver: reclaim latency, and a full scan over 10,000 records.

Starts its own ControlPlane (etcd + kube-apiserver on 127.0.0.1) and runs the ``LeakCollector`` in this process.

- Reclaim: ``--pods`` pods bound to a Node, each with a pool record and a SpiderEndpoint; all deleted with grace 0
  at once; latency of a pod = time from its delete call returning to its record's removal seen by a pool watch.
- Scan: ``--records`` records over pools of 1,000, of which ``--present`` percent belong to pods that exist; the
  collector starts (its start-up scan decides on every record from its caches: ``scan_10k_seconds``), then every
  absent pod's record is confirmed by direct reads and released (``scan_10k_reclaim_seconds``).

    python perf/bench_gc.py [--json] [--pods 200] [--records 10000] [--present 20]

Writes ``perf/results/bench_gc.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from benchkit import machine, percentile

from spiderpool.controller.context import ControllerContext
from spiderpool.controller.gc.collector import LeakCollector
from spiderpool.controller.settings import GcSettings
from spiderpool.core.allocations import decode_allocated_ips
from spiderpool.devcluster.cluster import ControlPlane
from spiderpool.k8s.bodies import SpiderIPPool
from spiderpool.k8s.client import ApiClient, make_api_client
from spiderpool.k8s.core_objects import CoreObjects
from spiderpool.k8s.crds import install_crds
from spiderpool.k8s.status_plan import AllocateIntent
from spiderpool.k8s.status_writer import PoolStatusWriter
from spiderpool.k8s.store import IPPOOL, SpiderStores
from spiderpool.k8s.watch_cache import WatchCache, WatchEvent, custom_object_source

RESULTS = Path(__file__).resolve().parent / "results" / "bench_gc.json"
POOL_SIZE = 1000
IN_FLIGHT = 32
TARGETS = {"reclaim_p99_seconds": ("<=", 2.0)}


def pool_addresses(index: int) -> list[str]:
    base = 10 << 24 | (100 + index) << 16
    return [f"{(base + n) >> 24 & 255}.{(base + n) >> 16 & 255}.{(base + n) >> 8 & 255}.{(base + n) & 255}"
            for n in range(1, POOL_SIZE + 1)]


async def bounded(jobs: list[Any]) -> list[Any]:
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one(job: Any) -> Any:
        async with gate:
            return await job

    return list(await asyncio.gather(*(one(job) for job in jobs)))


async def make_pools(api: ApiClient, count: int, tag: str) -> list[str]:
    names = [f"gc-{tag}-{index}" for index in range(count)]
    for index, name in enumerate(names):
        first, last = pool_addresses(index)[0], pool_addresses(index)[-1]
        await SpiderStores(api).ippools.create({"metadata": {"name": name},
                                                "spec": {"subnet": f"10.{100 + index}.0.0/16",
                                                         "ips": [f"{first}-{last}"]}})
    return names


async def make_pods(core: CoreObjects, namespace: str, node: str, count: int) -> list[dict[str, Any]]:
    def body(n: int) -> Any:
        return {"metadata": {"name": f"p{n}", "namespace": namespace},
                "spec": {"nodeName": node, "containers": [{"name": "c", "image": "pause"}]}}

    return await bounded([core.create_pod(body(n)) for n in range(count)])


async def give_records(writer: PoolStatusWriter, pools: list[str], holders: list[tuple[str, str]]) -> None:
    intents = []
    for n, (pod, uid) in enumerate(holders):
        index = n // POOL_SIZE
        intents.append(writer.allocate(pools[index], AllocateIntent(pod, uid, pool_addresses(index)[n % POOL_SIZE])))
    await asyncio.gather(*intents)


async def start_collector(api: ApiClient) -> tuple[LeakCollector, asyncio.Task[None], ControllerContext]:
    ctx = ControllerContext(api=api, stores=SpiderStores(api), core=CoreObjects(api), gc=GcSettings(trace_gap=0.1))
    collector = LeakCollector(ctx)
    task = asyncio.create_task(collector.run())
    while collector.scans < 1:  # noqa: ASYNC110 - polled: the collector exposes a counter, not an event
        await asyncio.sleep(0.01)
    return collector, task, ctx


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def record_watch(api: ApiClient, removed: dict[str, float]) -> WatchCache[SpiderIPPool]:
    cache: WatchCache[SpiderIPPool] = WatchCache(custom_object_source(api, IPPOOL), name="bench-pools")
    known: dict[str, set[str]] = {}

    def on_event(event: WatchEvent[SpiderIPPool]) -> None:
        now = time.perf_counter()
        records = decode_allocated_ips(event.object.get("status", {}).get("allocatedIPs"))
        uids = {record.pod_uid for record in records.values()}
        name = event.object["metadata"]["name"]
        for uid in known.get(name, set()) - uids:
            removed.setdefault(uid, now)
        known[name] = uids

    cache.add_handler(on_event)
    return cache


async def reclaim(api: ApiClient, pods: int) -> dict[str, Any]:
    core, tag = CoreObjects(api), uuid.uuid4().hex[:6]
    namespace, node = f"reclaim-{tag}", f"node-{tag}"
    await core.create_namespace(namespace)
    await core.create_node(node)
    pools = await make_pools(api, (pods + POOL_SIZE - 1) // POOL_SIZE, tag)
    created = await make_pods(core, namespace, node, pods)
    writer = PoolStatusWriter(SpiderStores(api).ippools, redecide=lambda *_: None)
    await give_records(writer, pools, [(f"{namespace}/{p['metadata']['name']}", p["metadata"]["uid"]) for p in created])
    removed: dict[str, float] = {}
    watch = record_watch(api, removed)
    await watch.start()
    _, task, _ = await start_collector(api)
    deleted: dict[str, float] = {}

    async def delete(pod: dict[str, Any]) -> None:
        await core.delete_pod(pod["metadata"]["name"], namespace=namespace)
        deleted[pod["metadata"]["uid"]] = time.perf_counter()

    await bounded([delete(pod) for pod in created])
    deadline = time.perf_counter() + 60
    while len(removed) < pods and time.perf_counter() < deadline:  # noqa: ASYNC110 - bounded poll of a dict
        await asyncio.sleep(0.05)
    await stop(task)
    await watch.stop()
    await writer.close()
    latencies = [max(0.0, removed[uid] - at) for uid, at in deleted.items() if uid in removed]
    return {"pods": pods, "released": len(latencies),
            "reclaim_p50_seconds": round(percentile(latencies, 0.5), 3),
            "reclaim_p99_seconds": round(percentile(latencies, 0.99), 3),
            "reclaim_max_seconds": round(max(latencies), 3)}


async def scan(api: ApiClient, records: int, present_percent: int) -> dict[str, Any]:
    core, tag = CoreObjects(api), uuid.uuid4().hex[:6]
    namespace, node = f"scan-{tag}", f"node-{tag}"
    await core.create_namespace(namespace)
    await core.create_node(node)
    pools = await make_pools(api, (records + POOL_SIZE - 1) // POOL_SIZE, tag)
    present = records * present_percent // 100
    created = await make_pods(core, namespace, node, present)
    holders = [(f"{namespace}/{p['metadata']['name']}", p["metadata"]["uid"]) for p in created]
    holders += [(f"{namespace}/gone{n}", str(uuid.uuid4())) for n in range(records - present)]
    writer = PoolStatusWriter(SpiderStores(api).ippools, redecide=lambda *_: None)
    await give_records(writer, pools, holders)
    began = time.perf_counter()
    collector, task, ctx = await start_collector(api)
    until_first_scan = time.perf_counter() - began
    scan_seconds = next(iter(ctx.metrics.gc_scan_seconds.collect())).samples
    scan_sum = next(sample.value for sample in scan_seconds if sample.name.endswith("_sum"))
    started = time.perf_counter()
    while len(collector.index) > present and time.perf_counter() - started < 300:  # noqa: ASYNC110 - bounded poll
        await asyncio.sleep(0.05)
    reclaim_seconds = time.perf_counter() - started
    left = len(collector.index)
    await stop(task)
    await writer.close()
    return {"records": records, "present_pods": present, "records_left": left,
            "scan_10k_seconds": round(scan_sum, 3), "start_to_first_scan_seconds": round(until_first_scan, 2),
            "scan_10k_reclaim_seconds": round(reclaim_seconds, 2)}


async def run_all(plane: ControlPlane, args: argparse.Namespace) -> dict[str, Any]:
    api = await make_api_client(kubeconfig=plane.kubeconfig)
    try:
        await install_crds(api)
        return {"reclaim": await reclaim(api, args.pods), "scan": await scan(api, args.records, args.present)}
    finally:
        await api.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the JSON document on stdout")
    parser.add_argument("--pods", type=int, default=200)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--present", type=int, default=20, help="percent of the scanned records whose pod exists")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-gc-") as state, ControlPlane(state_dir=Path(state)) as plane:
        results = asyncio.run(run_all(plane, args))
    figures = {"reclaim_p99_seconds": results["reclaim"]["reclaim_p99_seconds"],
               "scan_10k_seconds": results["scan"]["scan_10k_seconds"]}
    document = {
        "benchmark": "bench_gc",
        "description": "leak collection: reclaim latency after pod deletion (grace 0); full scan over 10,000 records",
        "machine": machine(),
        "parameters": {"pods": args.pods, "records": args.records, "present_percent": args.present},
        "results": results,
        "figures": figures,
        "targets": {key: f"{op} {bound}" for key, (op, bound) in TARGETS.items()},
        "targets_met": {"reclaim_p99_seconds": figures["reclaim_p99_seconds"] <= TARGETS["reclaim_p99_seconds"][1]},
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps(document, indent=2), file=sys.stdout if args.json else sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
