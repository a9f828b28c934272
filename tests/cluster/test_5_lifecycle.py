"""The chart's lifecycle on the real node: `helm upgrade` with a changed value, then `helm uninstall` (last)."""

from __future__ import annotations

from cluster_support import (
    allocated,
    get,
    holders,
    ip_inside,
    macvlan_nad,
    namespace,
    network_status_ip,
    pool,
    wait_for,
    wait_ready_pods,
    workload,
)

from spiderpool.devcluster.realnode import chart
from spiderpool.devcluster.realnode.node import RealNode

NS = "rn-life"
POOL = "rn-life-v4"


def _addresses(node: RealNode, app: str, count: int) -> dict[str, str]:
    pods = wait_ready_pods(node, NS, app, count)
    out = {}
    for p in pods:
        name = p["metadata"]["name"]
        out[name] = network_status_ip(p, f"{NS}/macvlan-life")
        assert ip_inside(node, NS, name) == out[name]
    return out


def _agent_uid(node: RealNode) -> str:
    (agent,) = get(node, "pods", "-n", chart.NAMESPACE, "-l", "app.kubernetes.io/name=spiderpool-agent")["items"]
    return str(agent["metadata"]["uid"])


def test_rn10_helm_upgrade_keeps_addresses_and_the_new_hold_applies(real_node: RealNode) -> None:
    """RN10: `helm upgrade` changing ipam.gc.statefulSetIPHoldDuration (0 -> 600) rolls the agent (config checksum);
    every pod keeps its address; then a StatefulSet scaled 2 -> 1 -> 2 gets ordinal 1's address back although a pod
    created in between took the lowest free address."""
    namespace(real_node, NS)
    real_node.apply([pool(POOL, "10.250.250.0/24", ["10.250.250.10-10.250.250.30"]),
                     macvlan_nad("macvlan-life", NS, "rnmv0", POOL)])
    real_node.apply([workload(real_node, "Deployment", "web", NS, 2, "macvlan-life"),
                     workload(real_node, "StatefulSet", "db", NS, 2, "macvlan-life")])
    before = {**_addresses(real_node, "web", 2), **_addresses(real_node, "db", 2)}
    agent_before = _agent_uid(real_node)
    chart.install(real_node, {"ipam": {"gc": {"statefulSetIPHoldDuration": 600}}})
    assert _agent_uid(real_node) != agent_before, "the agent did not roll on the changed ConfigMap"
    after = {**_addresses(real_node, "web", 2), **_addresses(real_node, "db", 2)}
    assert after == before, f"addresses changed across helm upgrade: {before} -> {after}"
    held = before["db-1"]
    real_node.kubectl("scale", "statefulset/db", "-n", NS, "--replicas=1")
    _addresses(real_node, "db", 1)
    assert holders(real_node, POOL).get(held) == "db-1", "db-1's address not held after scale-down"
    real_node.kubectl("scale", "deployment/web", "-n", NS, "--replicas=3")
    web = _addresses(real_node, "web", 3)
    assert held not in web.values(), f"a web pod took db-1's held address: {web}"
    real_node.kubectl("scale", "statefulset/db", "-n", NS, "--replicas=2")
    assert _addresses(real_node, "db", 2)["db-1"] == held


def test_rn11_helm_uninstall_leaves_nothing_running(real_node: RealNode) -> None:
    """RN11 (last): the chart back to its defaults (no StatefulSet hold: a held ordinal's endpoint keeps its
    finalizer, and its namespace, for the hold), workloads removed, `helm uninstall`: no spiderpool pod, container
    or sandbox is left on the node, no webhook configuration, Service or DaemonSet of the release."""
    chart.install(real_node)
    real_node.kubectl("delete", "namespace", NS, "--wait=true", "--timeout=120s", "--ignore-not-found", timeout=150)
    wait_for(lambda: not allocated(real_node, POOL), timeout=60, what=f"{POOL} empty")
    real_node.kubectl("delete", "spiderippool", POOL, "--wait=true", "--timeout=60s", timeout=90)
    chart.uninstall(real_node)
    wait_for(lambda: not get(real_node, "pods", "-n", chart.NAMESPACE)["items"], timeout=120,
             what="no pods left in kube-system")

    def containers_left() -> list[str] | None:
        out = real_node.containerd.ctr("containers", "ls", "-q", what="list containers").split()
        return out or None

    def none_left() -> bool:
        return containers_left() is None

    wait_for(none_left, timeout=120, what="no container or sandbox left in containerd")
    for kind in ("validatingwebhookconfigurations", "mutatingwebhookconfigurations"):
        names = [i["metadata"]["name"] for i in get(real_node, kind)["items"]]
        assert not [n for n in names if "spiderpool" in n], names
    assert not get(real_node, "daemonsets,deployments,services", "-n", chart.NAMESPACE,
                   "-l", "app.kubernetes.io/instance=spiderpool")["items"]
