"""Admission through the real Service path, and upstream's multi-NIC example on the real node."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cluster_support import get, ip_inside, lowest, namespace, network_status_ip, pool, wait_ready_pods
from upstream_examples import Corpus, corpus_params

from spiderpool.devcluster.realnode.layout import RealNodeError
from spiderpool.devcluster.realnode.node import RealNode


def test_rn05_webhook_refuses_an_overlapping_pool_through_the_service(real_node: RealNode) -> None:
    """RN05: the controller's validating webhook, called by kube-apiserver on the Service's EndpointSlice address (no
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


def _multi_nic_manifests(node: RealNode, corpus: Corpus) -> tuple[list[dict[str, Any]], list[dict[str, Any]],
                                                                  dict[str, Any]]:
    """The corpus' multi-NIC pools, NADs (chained `veth` dropped) and Deployment (image replaced), unchanged else."""
    pools = corpus.role("multi-nic pools")
    nads = corpus.role("multi-nic networks")
    (deploy,) = [d for d in corpus.role("multi-nic deployment") if d["kind"] == "Deployment"]
    for nad in nads:
        config = json.loads(nad["spec"]["config"])
        config["plugins"] = [p for p in config["plugins"] if p["type"] != "veth"]
        nad["spec"]["config"] = json.dumps(config)
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    container["image"] = node.image_name
    container["command"] = ["sleep", "infinity"]
    return pools, nads, deploy


def _in_pool(ip: str, pool_doc: dict[str, Any]) -> bool:
    return ip in lowest(pool_doc["spec"]["ips"], 1 << 16)


@pytest.mark.parametrize("corpus", corpus_params())
def test_rn06_multi_nic_manifests_on_the_real_node(real_node: RealNode, corpus: Corpus) -> None:
    """RN06: a multi-interface example in upstream's format (the project's fixtures; upstream's own when present):
    its pools, its Multus NADs (`ipam: spiderpool`, no socket named: the executable's default path is the chart's)
    and its Deployment with `v1.multus-cni.io/default-network` replacing eth0 and `ipam.spidernet.io/ippools`
    choosing a pool per NIC: eth0 and net1 get addresses of their pools, read inside the pod.  Changed: the image
    (no registry) and the chained `veth` plugin (upstream's own, not built here) dropped; masters ens192/ens224 are
    host veths."""
    pools, nads, deploy = _multi_nic_manifests(real_node, corpus)
    template = deploy["spec"]["template"]["metadata"]
    choices = {c["interface"]: c["ipv4"][0] for c in json.loads(template["annotations"]["ipam.spidernet.io/ippools"])}
    networks = {"eth0": template["annotations"]["v1.multus-cni.io/default-network"],
                "net1": template["annotations"]["k8s.v1.cni.cncf.io/networks"]}
    by_name = {doc["metadata"]["name"]: doc for doc in pools}
    ns = namespace(real_node, f"rn-multi-{corpus.name}")
    deploy["metadata"]["namespace"] = ns
    for master in ("ens192", "ens224"):
        real_node.add_master(master)
    real_node.apply([*pools, *nads, deploy])
    try:
        (pod,) = wait_ready_pods(real_node, ns, template["labels"]["app"], 1)
        for ifname in ("eth0", "net1"):
            reported = network_status_ip(pod, networks[ifname])
            assert _in_pool(reported, by_name[choices[ifname]]), f"{ifname} {reported} not of {choices[ifname]}"
            assert ip_inside(real_node, ns, pod["metadata"]["name"], ifname) == reported
    finally:
        real_node.kubectl("delete", "namespace", ns, "--wait=true", "--timeout=120s", timeout=150)
        real_node.kubectl("delete", "-f", "-", "--ignore-not-found", "--wait=true",
                          input_text=json.dumps({"apiVersion": "v1", "kind": "List", "items": [*pools, *nads]}))
