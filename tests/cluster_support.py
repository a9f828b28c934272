"""Helpers of the real-node tests (tests/cluster): kubectl reads, waits on conditions, the objects they create."""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

from spiderpool.devcluster.realnode.layout import RealNodeError
from spiderpool.devcluster.realnode.node import RealNode

T = TypeVar("T")
NETWORKS = "k8s.v1.cni.cncf.io/networks"
NETWORK_STATUS = "k8s.v1.cni.cncf.io/network-status"
IMAGE_COMMAND = ["sleep", "infinity"]


def wait_for(probe: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.5) -> T:
    """Poll ``probe`` until it returns something truthy; the last value (or error) is in the failure message."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = probe()
        except RealNodeError as exc:
            value, last = None, exc
        if value:
            return value
        if value is not None:
            last = value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last}")
        time.sleep(interval)


def get(node: RealNode, *args: str) -> Any:
    return json.loads(node.kubectl("get", *args, "-o", "json"))


def pool(name: str, subnet: str, ips: list[str], gateway: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"subnet": subnet, "ips": ips}
    if gateway:
        spec["gateway"] = gateway
    return {"apiVersion": "spiderpool.spidernet.io/v2beta1", "kind": "SpiderIPPool", "metadata": {"name": name},
            "spec": spec}


def macvlan_nad(name: str, namespace: str, master: str, pool_name: str) -> dict[str, Any]:
    config = {"cniVersion": "0.3.1", "name": name, "type": "macvlan", "master": master, "mode": "bridge",
              "ipam": {"type": "spiderpool", "default_ipv4_ippool": [pool_name]}}
    return {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": name, "namespace": namespace}, "spec": {"config": json.dumps(config)}}


def pod_template(node: RealNode, labels: dict[str, str], nad: str) -> dict[str, Any]:
    return {
        "metadata": {"labels": labels, "annotations": {NETWORKS: nad}},
        "spec": {
            "terminationGracePeriodSeconds": 2,
            "automountServiceAccountToken": False,
            "containers": [{"name": "main", "image": node.image_name, "imagePullPolicy": "IfNotPresent",
                            "command": IMAGE_COMMAND}],
        },
    }


def workload(node: RealNode, kind: str, name: str, namespace: str, replicas: int, nad: str) -> dict[str, Any]:
    labels = {"app": name}
    spec: dict[str, Any] = {"replicas": replicas, "selector": {"matchLabels": labels},
                            "template": pod_template(node, labels, nad)}
    if kind == "StatefulSet":
        spec |= {"serviceName": name, "podManagementPolicy": "Parallel"}
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def namespace(node: RealNode, name: str) -> str:
    node.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    wait_for(lambda: get(node, "serviceaccount", "default", "-n", name), timeout=60, what=f"{name}'s ServiceAccount")
    return name


def ready_pods(node: RealNode, namespace: str, app: str, count: int) -> list[dict[str, Any]] | None:
    """The app's pods when exactly ``count`` exist, none terminating, all Ready; else None."""
    pods: list[dict[str, Any]] = get(node, "pods", "-n", namespace, "-l", f"app={app}")["items"]
    if len(pods) != count or any(p["metadata"].get("deletionTimestamp") for p in pods):
        return None
    for p in pods:
        conditions = p.get("status", {}).get("conditions", [])
        if not any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
            return None
    return pods


def wait_ready_pods(node: RealNode, namespace: str, app: str, count: int, timeout: float = 180) -> list[dict[str, Any]]:
    return wait_for(lambda: ready_pods(node, namespace, app, count), timeout=timeout,
                    what=f"{count} Ready pods of {namespace}/{app}")


def network_status_ip(pod: dict[str, Any], network: str) -> str:
    """The address Multus reported for ``network`` (namespace/name) in the pod's network-status annotation."""
    status = json.loads(pod["metadata"]["annotations"][NETWORK_STATUS])
    entries = [entry for entry in status if entry.get("name") == network]
    assert len(entries) == 1, f"{network} not once in network-status: {status}"
    (ip,) = entries[0]["ips"]
    return str(ip)


def ip_inside(node: RealNode, namespace: str, pod: str, ifname: str = "net1") -> str:
    """The IPv4 address of ``ifname`` read inside the pod (kubectl exec: apiserver -> kubelet -> containerd)."""
    out = node.kubectl("exec", "-n", namespace, pod, "--", "ip", "-j", "-4", "addr", "show", "dev", ifname)
    (link,) = json.loads(out)
    (info,) = link["addr_info"]
    return str(info["local"])


def allocated(node: RealNode, pool_name: str) -> dict[str, dict[str, Any]]:
    status = get(node, "spiderippool", pool_name).get("status", {})
    return dict(json.loads(status.get("allocatedIPs") or "{}"))


def holders(node: RealNode, pool_name: str) -> dict[str, str]:
    """ip -> the name of the pod its record names (records name pods as ``namespace/name``)."""
    return {ip: str(rec["pod"]).rpartition("/")[2] for ip, rec in allocated(node, pool_name).items()}


def lowest(ips: list[str], count: int) -> set[str]:
    """The first ``count`` addresses of the ranges in ``ips`` (``a-b`` or single)."""
    out: list[str] = []
    for item in ips:
        first, _, last = item.partition("-")
        start, end = int(ipaddress.IPv4Address(first)), int(ipaddress.IPv4Address(last or first))
        out += [str(ipaddress.IPv4Address(i)) for i in range(start, end + 1)]
    return set(out[:count])
