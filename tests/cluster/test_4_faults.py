"""Faults on the real node: the agent and the controller pods killed, the kubelet stopped with a pod force-deleted."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cluster_support import (
    allocated,
    get,
    holders,
    ip_inside,
    macvlan_nad,
    namespace,
    network_status_ip,
    pod_template,
    pool,
    wait_for,
)

from spiderpool.devcluster.realnode.chart import NAMESPACE
from spiderpool.devcluster.realnode.layout import RealNodeError
from spiderpool.devcluster.realnode.node import RealNode

NS = "rn-faults"
POOL = "rn-faults-v4"


@pytest.fixture(scope="module")
def net(real_node: RealNode) -> Iterator[str]:
    namespace(real_node, NS)
    real_node.apply([pool(POOL, "10.250.240.0/24", ["10.250.240.10-10.250.240.30"]),
                     macvlan_nad("macvlan-faults", NS, "rnmv0", POOL)])
    yield POOL
    real_node.kubectl("delete", "namespace", NS, "--wait=true", "--timeout=120s", timeout=150)
    wait_for(lambda: not allocated(real_node, POOL), timeout=60, what=f"{POOL} empty after the module")
    real_node.kubectl("delete", "spiderippool", POOL, "--wait=true", "--timeout=60s", timeout=90)


def _pod(node: RealNode, name: str) -> dict[str, Any]:
    template = pod_template(node, {"app": name}, "macvlan-faults")
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {**template["metadata"], "name": name, "namespace": NS},
            "spec": template["spec"]}


def _running_address(node: RealNode, name: str, timeout: float = 180) -> str:
    def ready() -> dict[str, Any] | None:
        p = get(node, "pod", name, "-n", NS)
        conditions = p.get("status", {}).get("conditions", [])
        return p if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions) else None

    p = wait_for(ready, timeout=timeout, what=f"pod {name} Ready")
    address = network_status_ip(p, f"{NS}/macvlan-faults")
    assert ip_inside(node, NS, name) == address
    return address


def _component_pod(node: RealNode, component: str) -> dict[str, Any] | None:
    pods = get(node, "pods", "-n", NAMESPACE, "-l", f"app.kubernetes.io/name={component}")["items"]
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    return live[0] if len(live) == 1 else None


def test_rn07_agent_pod_killed_daemonset_restarts_it_and_pods_get_addresses(real_node: RealNode, net: str) -> None:
    """RN07: the agent pod force-deleted (killed): a pod created meanwhile waits (kubelet retries its ADD) and gets a
    pool address once the DaemonSet's new agent pod is up."""
    old = _component_pod(real_node, "spiderpool-agent")
    assert old is not None
    real_node.kubectl("delete", "pod", old["metadata"]["name"], "-n", NAMESPACE, "--grace-period=0", "--force")
    real_node.apply(_pod(real_node, "during-agent-restart"))
    address = _running_address(real_node, "during-agent-restart")
    new = wait_for(lambda: _component_pod(real_node, "spiderpool-agent"), timeout=120, what="a new agent pod")
    assert new["metadata"]["uid"] != old["metadata"]["uid"]
    assert holders(real_node, net)[address] == "during-agent-restart"


def test_rn08_controller_pod_killed_leadership_and_webhooks_recover(real_node: RealNode, net: str) -> None:
    """RN08: the controller pod force-deleted: the Deployment's new pod takes the Lease and the webhooks answer again
    (an overlapping pool is refused, a valid one admitted with the finalizer)."""
    old = _component_pod(real_node, "spiderpool-controller")
    assert old is not None
    real_node.kubectl("delete", "pod", old["metadata"]["name"], "-n", NAMESPACE, "--grace-period=0", "--force")

    def new_leader() -> str | None:
        new = _component_pod(real_node, "spiderpool-controller")
        if new is None or new["metadata"]["uid"] == old["metadata"]["uid"]:
            return None
        lease = get(real_node, "lease", "spiderpool-controller-leases", "-n", NAMESPACE)
        holder = lease["spec"].get("holderIdentity")
        return str(holder) if holder == new["metadata"]["name"] else None

    wait_for(new_leader, timeout=180, what="the new controller pod holding the Lease")

    def refused() -> str | None:
        try:
            real_node.apply(pool("rn-faults-overlap", "10.250.240.0/24", ["10.250.240.25-10.250.240.40"]))
        except RealNodeError as exc:
            return str(exc) if "denied the request" in str(exc) else None
        real_node.kubectl("delete", "spiderippool", "rn-faults-overlap", "--wait=false")
        return None

    assert "overlap" in wait_for(refused, timeout=120, what="the overlapping pool refused").lower()


def test_rn09_kubelet_stopped_pod_force_deleted_leak_is_collected(real_node: RealNode, net: str) -> None:
    """RN09: kubelet stopped, a running pod force-deleted (no CNI DEL will come): the controller's leak collection
    releases its address; kubelet started again tears the orphan sandbox down and the node stays usable."""
    real_node.apply(_pod(real_node, "orphan"))
    address = _running_address(real_node, "orphan")
    real_node.stop_kubelet()
    try:
        real_node.kubectl("delete", "pod", "orphan", "-n", NS, "--grace-period=0", "--force")
        wait_for(lambda: address not in allocated(real_node, net), timeout=120, what=f"{address} released by GC")
        assert not get(real_node, "spiderendpoints", "-n", NS, "--field-selector=metadata.name=orphan")["items"]
    finally:
        real_node.start_kubelet()
    real_node.apply(_pod(real_node, "after-kubelet"))
    again = _running_address(real_node, "after-kubelet")
    records = holders(real_node, net)
    live = {p["metadata"]["name"] for p in get(real_node, "pods", "-n", NS)["items"]}
    assert set(records.values()) == live, f"records {records} vs live pods {live}"
    assert again in records


