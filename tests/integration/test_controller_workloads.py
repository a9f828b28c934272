"""Leak collection with real workload controllers (kube-controller-manager): StatefulSet address hold (#3893), and
each GC trigger driven by a Deployment, a Job, a node deletion and a namespace deletion.

The harness (``Kubelet``) plays the scheduler (POST ``pods/binding``) and the kubelet (CNI ADD through the real
in-process agent, status Running; a terminating pod gets CNI DEL, unless the test simulates a lost DEL, then is
deleted with grace 0).  The real ``LeakCollector`` runs in-process.  Case IDs: ``docs/gc.md`` (K01-K08).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from agent_support import agent_config, span, unique, wait_for_pools
from kubernetes_asyncio.client import ApiClient, AppsV1Api, BatchV1Api, CoreV1Api

from spiderpool.agent.config import HOLD_ENV, load_agent_config, run_argument_parser
from spiderpool.agent.daemon import Agent
from spiderpool.cluster_config import ConfigError
from spiderpool.controller.context import ControllerContext
from spiderpool.controller.gc.collector import LeakCollector
from spiderpool.controller.settings import GcSettings
from spiderpool.controller.subnets.controller import SubnetController
from spiderpool.core.allocations import decode_allocated_ips
from spiderpool.core.cni import parse_request
from spiderpool.core.cni_types import CniError, CniRequest
from spiderpool.core.gc_planning import Holder
from spiderpool.devcluster.cluster import ControlPlane
from spiderpool.k8s.bodies import Pod
from spiderpool.k8s.core_objects import ROUTES, CoreObjects
from spiderpool.k8s.store import NotFound, SpiderStores, StoreError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

DEPLOYMENT = ROUTES[("apps/v1", "Deployment")]
T = TypeVar("T")


def _request(command: str, pod: Pod, pool: str) -> CniRequest:
    meta = pod["metadata"]
    args = f"K8S_POD_NAMESPACE={meta['namespace']};K8S_POD_NAME={meta['name']};K8S_POD_UID={meta['uid']}"
    stdin = (f'{{"cniVersion":"1.0.0","name":"wl","type":"macvlan",'
             f'"ipam":{{"type":"spiderpool","default_ipv4_ippool":["{pool}"]}}}}').encode()
    return parse_request(command=command, container_id=f"c-{meta['uid']}", netns=f"/var/run/netns/{meta['name']}",
                         ifname="eth0", args=args, path="/opt/cni/bin", stdin=stdin)


@dataclasses.dataclass
class Kubelet:
    """Scheduler and kubelet of one namespace on one node (see the module doc)."""

    core: CoreObjects
    status_api: CoreV1Api
    agent: Agent
    namespace: str
    node: str
    pool: str
    lose_del: bool = False  # a terminating pod is removed without CNI DEL (the DEL was lost)
    complete: bool = False  # pods finish (Succeeded) right after they run, without CNI DEL (a Job's lost DEL)
    ips: dict[str, list[str]] = dataclasses.field(default_factory=dict)  # pod UID -> addresses from ADD
    errors: list[str] = dataclasses.field(default_factory=list)

    async def run(self) -> None:
        while True:
            for pod in await self.core.list_pods(namespace=self.namespace):
                try:
                    await self._step(pod)
                except (CniError, StoreError) as error:  # retried on the next tick; kept to explain a failure
                    self.errors.append(f"{pod['metadata']['name']}: {error}")
            await asyncio.sleep(0.1)

    async def _step(self, pod: Pod) -> None:
        meta, spec = pod["metadata"], pod.get("spec", {})
        name, uid = meta["name"], meta["uid"]
        if meta.get("deletionTimestamp"):
            if uid in self.ips and not self.lose_del and spec.get("nodeName") == self.node:
                await self.agent.service.delete(_request("DEL", pod, self.pool))
            self.ips.pop(uid, None)
            await self.core.delete_pod(name, namespace=self.namespace, grace_period_seconds=0, uid=uid)
        elif not spec.get("nodeName"):
            await self.core.bind_pod(name, namespace=self.namespace, node_name=self.node)
        elif spec["nodeName"] == self.node and pod.get("status", {}).get("phase") == "Pending":
            if uid not in self.ips:
                result = await self.agent.service.add(_request("ADD", pod, self.pool))
                self.ips[uid] = [str(ip.address.ip) for ip in result.ips]
            ran = await self.core.report_pod_running(pod, pod_ips=self.ips[uid])
            if self.complete:
                await self._report_succeeded(ran)

    async def _report_succeeded(self, pod: Pod) -> None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        terminated = {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now}
        status = {**pod["status"], "phase": "Succeeded", "conditions": [{"type": "Ready", "status": "False"}],
                  "containerStatuses": [{"name": "c", "ready": False, "restartCount": 0, "image": "pause",
                                         "imageID": "", "state": {"terminated": terminated}}]}
        body: Any = {**pod, "apiVersion": "v1", "kind": "Pod", "status": status}
        await self.status_api.replace_namespaced_pod_status(pod["metadata"]["name"], self.namespace, body)


class Scene:
    """A namespace, a node with its agent, a pool, the harness and the collector of one test."""

    def __init__(self, api: ApiClient, plane: ControlPlane, socket_dir: Path, octet: int) -> None:
        self.api, self.plane, self.socket_dir = api, plane, socket_dir
        self.core, self.stores = CoreObjects(api), SpiderStores(api)
        self.namespace, self.node, self.pool = unique("wl"), unique("wlnode"), unique("wlpool")
        self.collector: LeakCollector
        self.subnet = f"10.171.{octet}.0/24"
        self.first_ip = f"10.171.{octet}.10"

    @asynccontextmanager
    async def running(self, *, hold: float = 0.0, lose_del: bool = False, complete: bool = False
                      ) -> AsyncIterator[Kubelet]:
        await self.core.create_namespace(self.namespace)
        await self.core.create_node(self.node)
        await self.stores.ippools.create({"metadata": {"name": self.pool},
                                          "spec": {"subnet": self.subnet, "ips": [span(self.first_ip, 20)]}})
        config = dataclasses.replace(agent_config(self.plane, self.node, self.socket_dir / "wl.sock"),
                                     statefulset_hold=hold)
        async with AsyncExitStack() as stack:
            agent = await stack.enter_async_context(Agent(config, probe_interval=0.5))
            await wait_for_pools(agent, self.pool)
            harness = Kubelet(self.core, CoreV1Api(self.api), agent, self.namespace, self.node, self.pool,
                              lose_del=lose_del, complete=complete)
            gc = LeakCollector(ControllerContext(api=self.api, stores=self.stores, core=self.core,
                                                 gc=GcSettings(trace_gap=0.2, statefulset_hold=hold)))
            self.collector = gc
            for task in (asyncio.create_task(harness.run()), asyncio.create_task(gc.run())):
                stack.push_async_callback(_cancelled, task)
            await until(lambda: _value(gc.scans), lambda scans: scans >= 1, within=30)
            yield harness
        await self.core.delete_namespace(self.namespace)

    async def records(self) -> dict[str, tuple[str, str]]:
        status = (await self.stores.ippools.get(self.pool)).get("status", {})
        records = decode_allocated_ips(status.get("allocatedIPs"))
        assert status.get("allocatedIPCount", 0) == len(records)
        return {ip: (r.pod, r.pod_uid) for ip, r in records.items()}

    async def endpoint_names(self) -> set[str]:
        return {e["metadata"]["name"] for e in (await self.stores.endpoints.list(namespace=self.namespace)).items}

    async def pods(self, prefix: str, count: int) -> dict[str, Pod]:
        """Once exactly ``count`` pods named ``prefix*`` run with their addresses: by name."""
        def ready(pods: list[Pod]) -> bool:
            mine = [p for p in pods if p["metadata"]["name"].startswith(prefix)]
            return len(mine) == count and all(
                p.get("status", {}).get("podIPs") and not p["metadata"].get("deletionTimestamp") for p in mine)
        found = await until(lambda: self.core.list_pods(namespace=self.namespace), ready)
        return {p["metadata"]["name"]: p for p in found if p["metadata"]["name"].startswith(prefix)}

    async def workload(self, kind: str, name: str, *, replicas: int, grace: int = 5, **spec: Any) -> None:
        labels = {"app": name}
        template = {"metadata": {"labels": labels}, "spec": {
            "terminationGracePeriodSeconds": grace, "containers": [{"name": "c", "image": "registry.invalid/p:1"}],
            **({"restartPolicy": "Never"} if kind == "Job" else {})}}
        body: Any = {"apiVersion": "batch/v1" if kind == "Job" else "apps/v1", "kind": kind,
                                "metadata": {"name": name}, "spec": {"template": template, **spec}}
        if kind == "Job":
            body["spec"] |= {"parallelism": replicas, "completions": replicas}
        else:
            body["spec"] |= {"replicas": replicas, "selector": {"matchLabels": labels}}
        if kind == "Job":
            await BatchV1Api(self.api).create_namespaced_job(self.namespace, body)
        else:
            await self.core.create(body, namespace=self.namespace)

    async def scale(self, kind: str, name: str, replicas: int) -> None:
        apps, body = AppsV1Api(self.api), {"spec": {"replicas": replicas}}
        if kind == "StatefulSet":
            await apps.patch_namespaced_stateful_set_scale(name, self.namespace, body)
        else:
            await apps.patch_namespaced_deployment_scale(name, self.namespace, body)

    async def consistent(self, *, nodes: set[str] | None = None) -> dict[str, tuple[str, str]]:
        """Once every record belongs to exactly one live pod and every live pod holds its address: the records."""
        live_nodes = {self.node} if nodes is None else nodes

        async def both() -> tuple[dict[str, tuple[str, str]], list[Pod]]:
            return await self.records(), await self.core.list_pods(namespace=self.namespace)

        def agree(seen: tuple[dict[str, tuple[str, str]], list[Pod]]) -> bool:
            records, pods = seen
            live = {p["metadata"]["uid"]: p for p in pods if _alive(p, live_nodes)}
            held = {ip: uid for ip, (_, uid) in records.items()}
            return set(held.values()) == set(live) and len(held) == len(live) and all(
                held.get(p["status"]["podIPs"][0]["ip"]) == uid for uid, p in live.items())
        records, _ = await until(both, agree, within=30)
        return records


def _alive(pod: Pod, nodes: set[str]) -> bool:
    status = pod.get("status", {})
    return (not pod["metadata"].get("deletionTimestamp") and status.get("phase") == "Running"
            and bool(status.get("podIPs")) and pod.get("spec", {}).get("nodeName") in nodes)


async def _value(value: T) -> T:
    return value


async def _cancelled(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task


async def until(read: Callable[[], Awaitable[T]], check: Callable[[T], bool], *, within: float = 20.0) -> T:
    deadline = time.monotonic() + within
    while True:
        value = await read()
        if check(value):
            return value
        assert time.monotonic() < deadline, f"not reached within {within}s; last seen: {value!r}"
        await asyncio.sleep(0.1)


@pytest.fixture
def scene_of(api: ApiClient, control_plane: ControlPlane, socket_dir: Path) -> Callable[[int], Scene]:
    control_plane.start_controller_manager()
    return lambda octet: Scene(api, control_plane, socket_dir, octet)


def _ips_by_pod(records: dict[str, tuple[str, str]]) -> dict[str, str]:
    return {pod.partition("/")[2]: ip for ip, (pod, _) in records.items()}


async def _held_then_released(scene: Scene, holders: list[Holder], *, hold: float) -> None:
    """Watch the collector while ``holders`` are released: each must have been traced (the hold started) and its
    record must still be there until ``hold`` seconds after that (the collector's own clock, ``time.time()``)."""
    assert len(holders) == 2, holders
    since: dict[Holder, float] = {}
    deadline = time.monotonic() + hold + 60.0  # a safety net only
    while True:
        records, now = await scene.records(), time.time()
        for holder in holders:
            traced = scene.collector.tracer.known_since(holder)
            if holder.ip in records and traced is not None:
                since[holder] = traced
        gone = [holder for holder in holders if holder.ip not in records]
        for holder in gone:
            assert holder in since, f"{holder.pod} released without being held"
            assert now >= since[holder] + hold, f"{holder.pod} released {since[holder] + hold - now:.2f}s early"
        if len(gone) == len(holders):
            return
        assert time.monotonic() < deadline, f"still held: {[h.pod for h in holders if h not in gone]}"
        await asyncio.sleep(0.05)


async def test_k01_statefulset_ordinals_keep_their_addresses_within_the_hold(scene_of: Callable[[int], Scene]) -> None:
    """K01 (#3893, #2442, #3778): a restarted pod keeps its address; 3 -> 1 -> 3 within the hold gives ordinals 1
    and 2 their old addresses, even though another pod was allocated meanwhile; past the hold they are released."""
    scene, hold = scene_of(1), 6.0
    async with scene.running(hold=hold):
        name = unique("db")
        await scene.workload("StatefulSet", name, replicas=3, serviceName=name, podManagementPolicy="Parallel")
        await scene.pods(name, 3)
        first = _ips_by_pod(await scene.consistent())
        web0 = (await scene.pods(f"{name}-0", 1))[f"{name}-0"]
        await scene.core.delete_pod(f"{name}-0", namespace=scene.namespace, grace_period_seconds=5)
        await until(lambda: scene.pods(f"{name}-0", 1),
                    lambda p: p[f"{name}-0"]["metadata"]["uid"] != web0["metadata"]["uid"])
        assert _ips_by_pod(await scene.consistent()) == first  # restart: new UID, same address

        await scene.scale("StatefulSet", name, 1)
        await scene.pods(name, 1)
        await scene.workload("Deployment", "other", replicas=1)  # takes the lowest free address: not a held one
        await scene.pods("other", 1)
        held = _ips_by_pod(await scene.records())
        assert {held[f"{name}-{k}"] for k in (1, 2)} == {first[f"{name}-{k}"] for k in (1, 2)}
        await scene.scale("StatefulSet", name, 3)
        await scene.pods(name, 3)
        again = _ips_by_pod(await scene.consistent())
        assert {k: again[k] for k in first} == first
        other_ip = next(ip for pod, ip in again.items() if pod.startswith("other-"))
        assert other_ip not in first.values()

        holders = [Holder(pod=pod, pod_uid=uid, ip=ip) for ip, (pod, uid) in (await scene.records()).items()
                   if pod.partition("/")[2] in (f"{name}-1", f"{name}-2")]
        await scene.scale("StatefulSet", name, 1)
        await scene.pods(name, 1)
        await _held_then_released(scene, holders, hold=hold)
        released = await until(scene.records, lambda r: len(r) == 2)
        others = set(_ips_by_pod(released)) - {f"{name}-0"}
        assert [pod.partition("-")[0] for pod in others] == ["other"]
        # Records first, then the endpoints; the Deployment's pod never had one (lean endpoints, the default).
        await until(scene.endpoint_names, lambda names: names == {f"{name}-0"})
        await scene.consistent()


async def test_k02_statefulset_without_hold_releases_on_scale_down(scene_of: Callable[[int], Scene]) -> None:
    """K02 (upstream behaviour, hold 0): the scaled-down ordinal's address is released at once."""
    scene = scene_of(2)
    async with scene.running():
        name = unique("db")
        await scene.workload("StatefulSet", name, replicas=2, serviceName=name, podManagementPolicy="Parallel")
        await scene.pods(name, 2)
        first = _ips_by_pod(await scene.consistent())
        await scene.scale("StatefulSet", name, 1)
        await scene.pods(name, 1)
        records = await scene.consistent()
        assert _ips_by_pod(records) == {f"{name}-0": first[f"{name}-0"]}
        assert await scene.endpoint_names() == {f"{name}-0"}


@pytest.mark.parametrize("lose_del", [False, True], ids=["del", "lost-del"])
async def test_k03_deployment_scaled_down_then_deleted(scene_of: Callable[[int], Scene], lose_del: bool) -> None:
    """K03: pods removed by the real ReplicaSet controller (scale 3 -> 1, then the Deployment deleted); with the
    DEL lost the collector reclaims them (pod deleted)."""
    scene = scene_of(3 if lose_del else 4)
    async with scene.running(lose_del=lose_del):
        await scene.workload("Deployment", "web", replicas=3)
        await scene.pods("web", 3)
        assert len(await scene.consistent()) == 3
        await scene.scale("Deployment", "web", 1)
        await scene.pods("web", 1)
        assert len(await scene.consistent()) == 1
        await scene.core.delete(DEPLOYMENT, "web", namespace=scene.namespace)
        await until(lambda: scene.core.list_pods(namespace=scene.namespace), lambda pods: pods == [])
        assert await scene.consistent() == {}


async def test_k04_completed_job_pods_are_reclaimed(scene_of: Callable[[int], Scene]) -> None:
    """K04: Job pods that Succeeded (the DEL lost) are released after finishedAt + their termination grace.

    The dev control plane runs no job-controller: the pods are made here as it would make them (owned by a
    suspended Job, so a job-controller, if one ran, would add none)."""
    scene = scene_of(5)
    async with scene.running(complete=True):
        await scene.workload("Job", "batch", replicas=2, grace=1, suspend=True)
        job = await BatchV1Api(scene.api).read_namespaced_job("batch", scene.namespace)
        owner = {"apiVersion": "batch/v1", "kind": "Job", "name": "batch", "uid": job.metadata.uid, "controller": True}
        for index in range(2):
            meta = {"name": f"batch-{index}", "namespace": scene.namespace, "ownerReferences": [owner]}
            pod: Any = {"metadata": meta,
                        "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                                 "containers": [{"name": "c", "image": "registry.invalid/p:1"}]}}
            await scene.core.create_pod(pod)
        done = await until(lambda: scene.core.list_pods(namespace=scene.namespace),
                           lambda pods: len(pods) == 2 and all(p["status"]["phase"] == "Succeeded" for p in pods))
        assert await until(scene.records, lambda r: r == {}, within=15) == {}
        assert len(await scene.core.list_pods(namespace=scene.namespace)) == len(done)  # the pods stay, completed


async def test_k05_pods_of_a_deleted_node_are_reclaimed(scene_of: Callable[[int], Scene]) -> None:
    """K05: the node object is deleted under running pods: after their termination grace their addresses go."""
    scene = scene_of(6)
    async with scene.running():
        await scene.workload("Deployment", "web", replicas=2, grace=1)
        await scene.pods("web", 2)
        assert len(await scene.consistent()) == 2
        await scene.core.delete_node(scene.node)
        assert await scene.consistent(nodes=set()) == {}


async def test_k06_namespace_deletion_frees_every_address(scene_of: Callable[[int], Scene]) -> None:
    """K06: the real namespace controller deletes the workload (the DEL lost): the collector frees the records and
    removes the endpoints' finalizers, so the namespace goes away."""
    scene = scene_of(7)
    async with scene.running(lose_del=True):
        await scene.workload("Deployment", "web", replicas=2)
        await scene.pods("web", 2)
        assert len(await scene.consistent()) == 2
        await scene.core.delete_namespace(scene.namespace)
        assert await until(scene.records, lambda r: r == {}, within=30) == {}
        await until(lambda: scene.core.list_objects(ROUTES[("v1", "Namespace")]),
                    lambda spaces: scene.namespace not in {n["metadata"]["name"] for n in spaces}, within=30)


async def test_k07_subnet_count_metric_follows_the_subnets(api: ApiClient) -> None:
    """K07: ``spiderpool_total_subnet_counts`` is the number of SpiderSubnets after each reconcile pass."""
    stores = SpiderStores(api)
    ctx = ControllerContext(api=api, stores=stores, core=CoreObjects(api))
    controller = SubnetController(ctx, resync_seconds=0.5)
    names = [unique("wlsubnet") for _ in range(2)]
    task = asyncio.create_task(controller.run())
    try:
        for index, name in enumerate(names):
            spec: Any = {"subnet": f"10.172.{index}.0/24", "ips": [f"10.172.{index}.5"]}
            await stores.subnets.create({"metadata": {"name": name}, "spec": spec})

        async def counts() -> tuple[float, int]:
            return (ctx.metrics.registry.get_sample_value("spiderpool_total_subnet_counts") or -1.0,
                    len((await stores.subnets.list()).items))
        before = await until(counts, lambda seen: seen[0] == seen[1] and seen[1] >= 2)
        await stores.subnets.delete(names[0])
        # Only a pass after the deletion can bring the metric down to one subnet fewer: the old value never matches.
        await until(counts, lambda seen: seen[0] == seen[1] == before[1] - 1)
    finally:
        await _cancelled(task)
        for name in names:
            with suppress(NotFound):
                await stores.subnets.delete(name)


def test_k08_agent_reads_the_hold_from_the_controllers_variable() -> None:
    """K08: the agent takes ``SPIDERPOOL_GC_STATEFULSET_IP_HOLD_DURATION`` (same name and syntax as the controller);
    a bad value is an error naming the variable and the value."""
    options = run_argument_parser().parse_args(["--node-name", "n1", "--socket", "/tmp/x.sock"])
    assert load_agent_config(options, {}).statefulset_hold == 0.0
    assert load_agent_config(options, {HOLD_ENV: "90s"}).statefulset_hold == 90.0
    for bad in ("-1", "soon", "nan"):
        with pytest.raises(ConfigError, match=rf"\$SPIDERPOOL_GC_STATEFULSET_IP_HOLD_DURATION: .*{bad!r}"):
            load_agent_config(options, {HOLD_ENV: bad})
