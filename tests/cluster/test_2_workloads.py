"""Workloads on the real node: kubelet asks containerd for sandboxes, containerd execs Multus, Multus execs macvlan
with `ipam: spiderpool` for the NAD the pod names, our executable asks the chart's agent."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cluster_support import (
    allocated,
    get,
    holders,
    ip_inside,
    lowest,
    macvlan_nad,
    namespace,
    network_status_ip,
    pool,
    wait_for,
    wait_ready_pods,
    workload,
)

from spiderpool.devcluster.realnode.node import RealNode

NS = "rn-work"
POOL_IPS = ["10.250.210.10-10.250.210.30"]


@pytest.fixture(scope="module")
def net(real_node: RealNode) -> Iterator[str]:
    """Namespace rn-work with NAD `macvlan-work` (macvlan on rnmv0, pool rn-work-v4); removed after the module."""
    namespace(real_node, NS)
    real_node.apply([pool("rn-work-v4", "10.250.210.0/24", POOL_IPS, "10.250.210.1"),
                     macvlan_nad("macvlan-work", NS, "rnmv0", "rn-work-v4")])
    yield "rn-work-v4"
    real_node.kubectl("delete", "namespace", NS, "--wait=true", "--timeout=120s", timeout=150)
    wait_for(lambda: not allocated(real_node, "rn-work-v4"), timeout=60, what="rn-work-v4 empty after the module")
    real_node.kubectl("delete", "spiderippool", "rn-work-v4", "--wait=true", "--timeout=60s", timeout=90)


def _addresses(node: RealNode, app: str, count: int) -> dict[str, str]:
    """pod name -> address of net1: Multus' network-status and the address read inside the pod agree."""
    pods = wait_ready_pods(node, NS, app, count)
    out: dict[str, str] = {}
    for p in pods:
        name = p["metadata"]["name"]
        reported = network_status_ip(p, f"{NS}/macvlan-work")
        assert ip_inside(node, NS, name) == reported, f"{name}: inside differs from network-status {reported}"
        out[name] = reported
    return out


def _records(node: RealNode, pool_name: str) -> dict[str, str]:
    return holders(node, pool_name)


def test_rn02_deployment_gets_pool_addresses_named_by_multus(real_node: RealNode, net: str) -> None:
    """RN02: a 3-replica Deployment naming the macvlan NAD (`ipam: spiderpool`): each pod gets a pool address, the
    lowest three; Multus' network-status names it; the address is read inside the pod; the pool records each pod."""
    real_node.apply(workload(real_node, "Deployment", "web", NS, 3, "macvlan-work"))
    addresses = _addresses(real_node, "web", 3)
    assert set(addresses.values()) == lowest(POOL_IPS, 3), addresses
    assert _records(real_node, net) == {ip: pod for pod, ip in addresses.items()}


def test_rn03_scale_down_up_and_delete_release_without_leaks(real_node: RealNode, net: str) -> None:
    """RN03: scale 3 -> 1 -> 3 and delete a pod: kubelet's CNI DEL releases each removed pod's address (pool records =
    live pods after each step; no SpiderEndpoint of a gone pod, whether or not the mode writes one per pod), and
    scaled-up pods take the lowest free addresses (after a pod's deletion its replacement may start before the DEL,
    so only "no leak" is asserted there)."""
    real_node.kubectl("scale", "deployment/web", "-n", NS, "--replicas=1")
    (kept_pod, kept_ip), = _addresses(real_node, "web", 1).items()
    wait_for(lambda: _records(real_node, net) == {kept_ip: kept_pod}, timeout=60, what="records of the one pod left")
    real_node.kubectl("scale", "deployment/web", "-n", NS, "--replicas=3")
    addresses = _addresses(real_node, "web", 3)
    assert set(addresses.values()) == lowest(POOL_IPS, 3), f"lowest-free order broken: {addresses}"
    victim = sorted(addresses)[0]
    real_node.kubectl("delete", "pod", victim, "-n", NS, "--wait=true")
    after = _addresses(real_node, "web", 3)
    assert victim not in after
    wait_for(lambda: _records(real_node, net) == {ip: pod for pod, ip in after.items()}, timeout=60,
             what="pool records = live pods")
    endpoints = {e["metadata"]["name"] for e in get(real_node, "spiderendpoints", "-n", NS)["items"]}
    assert endpoints <= set(after), f"SpiderEndpoints of gone pods left: {endpoints - set(after)}"


def test_rn04_statefulset_pod_keeps_its_address(real_node: RealNode, net: str) -> None:
    """RN04: a StatefulSet pod deleted and re-created by its controller comes back with the same address."""
    real_node.kubectl("scale", "deployment/web", "-n", NS, "--replicas=0")
    wait_for(lambda: not get(real_node, "pods", "-n", NS, "-l", "app=web")["items"], timeout=90, what="web gone")
    real_node.apply(workload(real_node, "StatefulSet", "db", NS, 2, "macvlan-work"))
    before = _addresses(real_node, "db", 2)
    old_uid = get(real_node, "pod", "db-0", "-n", NS)["metadata"]["uid"]
    real_node.kubectl("delete", "pod", "db-0", "-n", NS, "--wait=true")
    wait_for(lambda: get(real_node, "pod", "db-0", "-n", NS)["metadata"]["uid"] != old_uid, timeout=60,
             what="db-0 re-created")
    after = _addresses(real_node, "db", 2)
    assert after == before, f"StatefulSet addresses changed: {before} -> {after}"
