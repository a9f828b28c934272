"""A SpiderMultusConfig on the real node: the chart's controller generates the NetworkAttachmentDefinition, Multus
(thin plugin) execs macvlan from it, and the pod gets an address of the pool the SpiderMultusConfig names."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from cluster_support import (
    allocated,
    get,
    ip_inside,
    lowest,
    namespace,
    network_status_ip,
    pool,
    wait_for,
    wait_ready_pods,
    workload,
)

from spiderpool.devcluster.realnode.node import RealNode

NS = "rn-smc"
POOL_IPS = ["10.250.212.10-10.250.212.20"]


@pytest.fixture(scope="module")
def smc_pool(real_node: RealNode) -> Iterator[str]:
    namespace(real_node, NS)
    real_node.apply(pool("rn-smc-v4", "10.250.212.0/24", POOL_IPS, "10.250.212.1"))
    yield "rn-smc-v4"
    real_node.kubectl("delete", "namespace", NS, "--wait=true", "--timeout=120s", timeout=150)
    wait_for(lambda: not allocated(real_node, "rn-smc-v4"), timeout=60, what="rn-smc-v4 empty after the module")
    real_node.kubectl("delete", "spiderippool", "rn-smc-v4", "--wait=true", "--timeout=60s", timeout=90)


def test_rn12_spidermultusconfig_nad_used_by_a_pod_through_multus(real_node: RealNode, smc_pool: str) -> None:
    """RN12: a macvlan SpiderMultusConfig (master rnmv0, the pool named; enableCoordinator false: upstream's
    coordinator executable is not installed here) -> the chart's controller creates its NAD (owned by it, the
    webhook's defaults applied) -> a Deployment pod naming it gets, through Multus and macvlan, the pool's lowest
    address on net1, read inside the pod and reported by Multus; the pool records the pod."""
    smc = {"apiVersion": "spiderpool.spidernet.io/v2beta1", "kind": "SpiderMultusConfig",
           "metadata": {"name": "smc-macvlan", "namespace": NS},
           "spec": {"cniType": "macvlan", "enableCoordinator": False,
                    "macvlan": {"master": ["rnmv0"], "ippools": {"ipv4": [smc_pool]}}}}
    real_node.apply(smc)
    nad = wait_for(lambda: get(real_node, "network-attachment-definitions", "smc-macvlan", "-n", NS), timeout=60,
                   what="the NAD generated from smc-macvlan")
    assert [ref["kind"] for ref in nad["metadata"]["ownerReferences"]] == ["SpiderMultusConfig"]
    config = json.loads(nad["spec"]["config"])
    assert [p["type"] for p in config["plugins"]] == ["macvlan"]
    assert config["plugins"][0]["ipam"] == {"type": "spiderpool", "default_ipv4_ippool": [smc_pool]}
    real_node.apply(workload(real_node, "Deployment", "smc-web", NS, 1, "smc-macvlan"))
    (pod,) = wait_ready_pods(real_node, NS, "smc-web", 1)
    name = pod["metadata"]["name"]
    reported = network_status_ip(pod, f"{NS}/smc-macvlan")
    assert {reported} == lowest(POOL_IPS, 1)
    assert ip_inside(real_node, NS, name) == reported
    assert {ip: rec["pod"] for ip, rec in allocated(real_node, smc_pool).items()} == {reported: f"{NS}/{name}"}
