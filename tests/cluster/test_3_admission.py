"""Admission through the real Service path, and upstream's multi-NIC example on the real node."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cluster_support import get, ip_inside, namespace, network_status_ip, pool, wait_ready_pods

from spiderpool.devcluster.realnode.layout import RealNodeError
from spiderpool.devcluster.realnode.node import RealNode

try:
    from upstream_examples import examples_dir
except ImportError:  # pragma: no cover - the module is part of the repository
    examples_dir = None  # type: ignore[assignment]


def test_r05_webhook_refuses_an_overlapping_pool_through_the_service(real_node: RealNode) -> None:
    """R05: the controller's validating webhook, called by kube-apiserver on the Service's EndpointSlice address (no
    kube-proxy: --enable-aggregator-routing), refuses a pool overlapping an existing one; the mutating webhook adds
    its finalizer to the admitted one."""
    real_node.apply(pool("rn-adm-a", "10.250.230.0/24", ["10.250.230.10-10.250.230.20"]))
    try:
        admitted = get(real_node, "spiderippool", "rn-adm-a")
        assert admitted["metadata"].get("finalizers"), f"not mutated by the webhook: {admitted['metadata']}"
        with pytest.raises(RealNodeError) as refused:
            real_node.apply(pool("rn-adm-b", "10.250.230.0/24", ["10.250.230.15-10.250.230.25"]))
        message = str(refused.value)
        assert "admission webhook" in message, message
        assert "denied the request" in message, message
        assert "overlap" in message.lower(), message
        slices = get(real_node, "endpointslices", "-n", "kube-system",
                     "-l", "kubernetes.io/service-name=spiderpool-controller")["items"]
        addresses = {a for s in slices for e in s.get("endpoints") or [] for a in e["addresses"]}
        assert real_node.node_ip in addresses, f"webhook Service endpoints {addresses} lack the node IP"
    finally:
        real_node.kubectl("delete", "spiderippool", "rn-adm-a", "rn-adm-b", "--ignore-not-found", "--wait=true")


def _upstream(name: str) -> list[dict[str, Any]]:
    import yaml

    if examples_dir is None:
        pytest.skip("tests/upstream_examples.py is missing")
    try:
        directory = examples_dir()
    except FileNotFoundError as exc:
        pytest.skip(f"upstream example corpus absent: {exc}")
    return [doc for doc in yaml.safe_load_all((directory / name).read_text()) if doc]


def test_r08_upstream_multi_nic_example_on_the_real_node(real_node: RealNode) -> None:
    """R08: upstream's multi-interface example: its two pools and two Multus NADs (`ipam: spiderpool`, no socket named:
    the executable's default path is the chart's) and its Deployment, with `v1.multus-cni.io/default-network`
    replacing eth0 and `ipam.spidernet.io/ippools` choosing a pool per NIC.  Changed: the image (no registry), the
    chained `veth` plugin (upstream's own, not built here) dropped; masters ens192/ens224 are host veths."""
    pools = _upstream("multi-interfaces-annotation_different-segment-ipv4-ippools.yaml")
    nads = _upstream("multi-interfaces-annotation_multus-conf.yaml")
    (deploy,) = _upstream("multi-interfaces-annotation_ippool-test-deploy.yaml")
    for nad in nads:
        config = json.loads(nad["spec"]["config"])
        config["plugins"] = [p for p in config["plugins"] if p["type"] != "veth"]
        nad["spec"]["config"] = json.dumps(config)
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    container["image"] = real_node.image_name
    container["command"] = ["sleep", "infinity"]
    deploy["metadata"]["namespace"] = namespace(real_node, "rn-upstream")
    for master in ("ens192", "ens224"):
        real_node.add_master(master)
    real_node.apply([*pools, *nads, deploy])
    try:
        (p,) = wait_ready_pods(real_node, "rn-upstream", "ippool-test-app", 1)
        name = p["metadata"]["name"]
        eth0 = network_status_ip(p, "kube-system/macvlan-conf-ens192")
        net1 = network_status_ip(p, "kube-system/macvlan-conf-ens224")
        assert eth0 in {f"10.6.168.{i}" for i in range(176, 181)}, eth0
        assert net1 in {f"10.7.168.{i}" for i in range(176, 181)}, net1
        assert ip_inside(real_node, "rn-upstream", name, "eth0") == eth0
        assert ip_inside(real_node, "rn-upstream", name, "net1") == net1
    finally:
        real_node.kubectl("delete", "namespace", "rn-upstream", "--wait=true", "--timeout=120s", timeout=150)
        real_node.kubectl("delete", "-f", "-", "--ignore-not-found", "--wait=true",
                          input_text=json.dumps({"apiVersion": "v1", "kind": "List", "items": [*pools, *nads]}))
