"""spiderpoolctl against the real API server, run as a subprocess: output, stderr and exit code of every command.

Each test gets a fresh pool (10.231.0.1-20) whose records are written through the status writer: ``.1`` held by a
live pod with a matching SpiderEndpoint, ``.2`` by a pod that is gone, ``.3`` by an older incarnation (other UID)
of a pod that exists.  The pool and the subnet are deleted afterwards, so ``who-has`` sees no other test's records.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Set
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from kubernetes_asyncio.client import ApiClient

from spiderpool.devcluster.cluster import ControlPlane
from spiderpool.k8s.bodies import IPAllocationDetail, SpiderIPPool
from spiderpool.k8s.core_objects import CoreObjects
from spiderpool.k8s.status_plan import AllocateIntent
from spiderpool.k8s.status_writer import PoolStatusWriter
from spiderpool.k8s.store import SpiderStores

pytestmark = pytest.mark.integration


@dataclass(frozen=True, slots=True)
class Scene:
    kubeconfig: Path
    namespace: str
    node: str
    pool: str
    subnet: str
    alive_uid: str
    other_uid: str


@dataclass(frozen=True, slots=True)
class Run:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return orjson.loads(self.stdout)


def spiderpoolctl(scene: Scene | Path, *args: str) -> Run:
    kubeconfig = scene.kubeconfig if isinstance(scene, Scene) else scene
    done = subprocess.run([sys.executable, "-m", "spiderpool.cli", *args, "--kubeconfig", str(kubeconfig)],
                          capture_output=True, text=True, timeout=60, check=False)
    return Run(done.returncode, done.stdout, done.stderr)


def _taken(pool: SpiderIPPool, taken: Set[str], intent: AllocateIntent) -> str | None:
    return None  # every intent here names its address


async def _pod(core: CoreObjects, namespace: str, name: str, node: str) -> str:
    body = {"metadata": {"name": name, "namespace": namespace},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "registry.invalid/pause:1"}]}}
    created = await core.create_pod(body)  # type: ignore[arg-type]
    await core.report_pod_running(created, pod_ips=[])
    return str(created["metadata"]["uid"])


async def _records(stores: SpiderStores, pool: str, records: dict[str, tuple[str, str]]) -> None:
    writer = PoolStatusWriter(stores.ippools, redecide=_taken)
    try:
        for ip, (pod, uid) in records.items():
            await writer.allocate(pool, AllocateIntent(pod=pod, pod_uid=uid, ip=ip))
    finally:
        await writer.close()


@pytest.fixture
async def scene(control_plane: ControlPlane, api: ApiClient) -> AsyncIterator[Scene]:
    suffix = uuid.uuid4().hex[:8]
    namespace, node, pool, subnet = f"cli-{suffix}", f"cli-node-{suffix}", f"cli-{suffix}-v4", f"cli-{suffix}-s"
    core, stores = CoreObjects(api), SpiderStores(api)
    await core.create_namespace(namespace)
    await core.create_node(node)
    alive_uid, other_uid = await _pod(core, namespace, "alive", node), await _pod(core, namespace, "other", node)
    created = await stores.ippools.create({"metadata": {"name": pool},
                                           "spec": {"subnet": "10.231.0.0/24", "ips": ["10.231.0.1-10.231.0.20"]}})
    await stores.ippools.replace_status({**created, "status": {"totalIPCount": 20, "allocatedIPCount": 0}})
    await stores.subnets.create({"metadata": {"name": subnet},
                                 "spec": {"subnet": "10.231.1.0/28", "ips": ["10.231.1.1-10.231.1.14"]}})
    await _records(stores, pool, {"10.231.0.1": (f"{namespace}/alive", alive_uid),
                                  "10.231.0.2": (f"{namespace}/ghost", "ghost-uid"),
                                  "10.231.0.3": (f"{namespace}/other", "stale-uid")})
    ips: list[IPAllocationDetail] = [{"interface": "eth0", "ipv4": "10.231.0.1/24", "ipv4Pool": pool, "vlan": 0}]
    await stores.endpoints.create({"metadata": {"name": "alive", "namespace": namespace},
                                   "status": {"current": {"uid": alive_uid, "node": node, "ips": ips},
                                              "ownerControllerType": "Pod", "ownerControllerName": "alive"}})
    try:
        yield Scene(control_plane.kubeconfig, namespace, node, pool, subnet, alive_uid, other_uid)
    finally:
        await stores.ippools.delete(pool)
        await stores.subnets.delete(subnet)
        await stores.endpoints.delete("alive", namespace=namespace)
        await core.delete_namespace(namespace)
        await core.delete_node(node)


async def records_of(api: ApiClient, pool: str) -> dict[str, str]:
    status = (await SpiderStores(api).ippools.get(pool)).get("status", {})
    return {ip: record["podUid"] for ip, record in orjson.loads(status.get("allocatedIPs") or "{}").items()}


async def test_get_pools_and_subnets_show_usage(scene: Scene) -> None:
    """CL01: Get pools and subnets show usage."""
    [pool] = [p for p in spiderpoolctl(scene, "get", "pools", "-o", "json").json() if p["name"] == scene.pool]
    assert (pool["total"], pool["allocated"], pool["free"], pool["reserved"]) == (20, 3, 17, 0)
    assert (pool["subnet"], pool["default"], pool["affinity"]) == ("10.231.0.0/24", False, "-")
    table = spiderpoolctl(scene, "get", "pools")
    assert table.code == 0
    assert table.stdout.splitlines()[0].split() == ["NAME", "VERSION", "SUBNET", "TOTAL", "ALLOCATED", "FREE",
                                                    "RESERVED", "DEFAULT", "AFFINITY"]
    # Columns are as wide as the longest pool name in the cluster (other tests' pools too): compare the fields.
    [row] = [line.split() for line in table.stdout.splitlines() if line.startswith(f"{scene.pool} ")]
    assert row == [scene.pool, "4", "10.231.0.0/24", "20", "3", "17", "0", "false", "-"]
    subnets = yaml.safe_load(spiderpoolctl(scene, "get", "subnets", "-o", "yaml").stdout)
    [subnet] = [s for s in subnets if s["name"] == scene.subnet]
    assert (subnet["total"], subnet["allocated"], subnet["free"]) == (14, 0, 14)


async def test_who_has_names_pool_pod_uid_node_and_nic(scene: Scene) -> None:
    """CL02: Who has names pool pod UID node and NIC."""
    found = spiderpoolctl(scene, "who-has", "10.231.0.1", "-o", "json")
    assert found.code == 0
    assert found.json() == [{"ip": "10.231.0.1", "pool": scene.pool, "pod": f"{scene.namespace}/alive",
                             "podUid": scene.alive_uid, "node": scene.node, "interface": "eth0"}]
    missing = spiderpoolctl(scene, "who-has", "10.231.0.99")
    assert (missing.code, missing.stdout) == (3, "")
    assert missing.stderr == "error: IP 10.231.0.99: no SpiderIPPool has a record of it\n"
    assert spiderpoolctl(scene, "who-has", "10.231.0.300").code == 2


async def test_describe_pod_lists_its_addresses_per_nic(scene: Scene) -> None:
    """CL03: Describe pod lists its addresses per NIC."""
    described = spiderpoolctl(scene, "describe", "pod", f"{scene.namespace}/alive")
    assert described.code == 0
    assert f"podUid: {scene.alive_uid}" in described.stdout
    assert f"eth0   10.231.0.1/24   {scene.pool}" in described.stdout
    document = yaml.safe_load(spiderpoolctl(scene, "describe", "pod", f"{scene.namespace}/alive", "-o", "yaml").stdout)
    # The scene's records are written without a NIC (as upstream's agent writes them): the endpoint names it.
    assert document["records"] == [{"pool": scene.pool, "ip": "10.231.0.1", "podUid": scene.alive_uid, "nic": ""}]
    assert spiderpoolctl(scene, "describe", "pod", f"{scene.namespace}/nobody").code == 3
    malformed = spiderpoolctl(scene, "describe", "pod", "no-slash")
    assert malformed.code == 2
    assert "expected NAMESPACE/NAME, got 'no-slash'" in malformed.stderr


async def test_check_reports_leaks_and_drift_and_exits_1(scene: Scene, api: ApiClient) -> None:
    """CL04: Check reports leaks and drift and exits 1."""
    result = spiderpoolctl(scene, "check", "-o", "json")
    assert result.code == 1
    ours = [(f["kind"], f["ip"]) for f in result.json()["findings"] if f["pool"] == scene.pool]
    assert ours == [("LeakedRecord", "10.231.0.2"), ("LeakedRecord", "10.231.0.3")]
    pool = await SpiderStores(api).ippools.get(scene.pool)
    await SpiderStores(api).ippools.replace_status({**pool, "status": {**pool["status"], "allocatedIPCount": 7}})
    drift = [f for f in spiderpoolctl(scene, "check", "-o", "json").json()["findings"] if f["pool"] == scene.pool]
    assert drift[0]["kind"] == "AllocatedCountDrift"
    assert "allocatedIPCount is 7 but status.allocatedIPs holds 3 records" in drift[0]["detail"]


async def test_gc_dry_run_says_what_would_be_released_and_why(scene: Scene, api: ApiClient) -> None:
    """CL05: GC dry run says what would be released and why."""
    result = spiderpoolctl(scene, "gc", "--dry-run", "-o", "json")
    assert result.code == 0
    ours = {line["ip"]: (line["verdict"], line["reason"]) for line in result.json() if line["pool"] == scene.pool}
    assert ours == {"10.231.0.2": ("release", "PodDeleted"), "10.231.0.3": ("release", "UidMismatch")}
    assert len(await records_of(api, scene.pool)) == 3  # a dry run writes nothing
    assert spiderpoolctl(scene, "gc").code == 2


async def test_release_refuses_a_live_holder_and_removes_only_the_named_record(scene: Scene, api: ApiClient) -> None:
    """CL06: Release refuses a live holder and removes only the named record."""
    refused = spiderpoolctl(scene, "release", "10.231.0.1")
    assert (refused.code, refused.stdout) == (1, "")
    assert f"held by live pod {scene.namespace}/alive (UID {scene.alive_uid}): refused" in refused.stderr
    released = spiderpoolctl(scene, "release", "10.231.0.2", "-o", "json")
    assert (released.code, released.stderr) == (0, "")
    assert released.json()["podUid"] == "ghost-uid"
    assert await records_of(api, scene.pool) == {"10.231.0.1": scene.alive_uid, "10.231.0.3": "stale-uid"}
    forced = spiderpoolctl(scene, "release", "10.231.0.1", "--force")
    assert forced.code == 0
    assert forced.stderr.startswith("warning: IP 10.231.0.1 of pool")
    assert "--force" in forced.stderr
    assert await records_of(api, scene.pool) == {"10.231.0.3": "stale-uid"}
    after = [f["kind"] for f in spiderpoolctl(scene, "check", "-o", "json").json()["findings"]
             if f["pool"] == scene.pool]
    assert after == ["LeakedRecord", "EndpointWithoutRecord"]
    assert spiderpoolctl(scene, "release", "10.231.0.2").code == 3


async def test_unusable_kubeconfig_exits_2_and_unreachable_api_exits_4(scene: Scene, tmp_path: Path) -> None:
    """CL07: Unusable kubeconfig exits 2 and unreachable API exits 4."""
    missing = spiderpoolctl(tmp_path / "absent", "check")
    assert missing.code == 2
    assert f"--kubeconfig: no kubeconfig file at {tmp_path / 'absent'}" in missing.stderr
    document = yaml.safe_load(scene.kubeconfig.read_text())
    document["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
    unreachable = tmp_path / "unreachable"
    unreachable.write_text(yaml.safe_dump(document))
    down = spiderpoolctl(unreachable, "get", "pools")
    assert (down.code, down.stdout) == (4, "")
    assert "API server unreachable" in down.stderr
