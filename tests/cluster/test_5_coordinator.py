"""The coordinator on the real node: a SpiderMultusConfig with enableCoordinator (its default) generates a NAD that
chains macvlan and our `coordinator`; Multus runs the chain for a Deployment pod, and the pod reaches its node's
address on the macvlan master itself, which macvlan alone cannot (a macvlan child never reaches its parent)."""

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

from spiderpool.devcluster.realnode import chart
from spiderpool.devcluster.realnode.layout import run
from spiderpool.devcluster.realnode.node import RealNode

NS = "rn-coord"
POOL = "rn-coord-v4"
POOL_IPS = ["10.250.213.10-10.250.213.20"]
MASTER = "rnmv0"
NODE_ADDRESS = "10.250.213.1"  # on the macvlan master: the node's address in net1's subnet
HEALTH_PORT = 5710  # the agent's health port, hostNetwork on every node address


@pytest.fixture
def coordinating_chart(real_node: RealNode) -> Iterator[None]:
    """The chart with its defaults (coordinator.agentPrivileges is on by default: a default install runs the
    coordinator), the node holding an address on the macvlan master; the namespace, the pool and the address
    removed afterwards."""
    run(["ip", "addr", "add", f"{NODE_ADDRESS}/24", "dev", MASTER], what=f"{NODE_ADDRESS} on {MASTER}")
    try:
        chart.install(real_node)
        yield
    finally:
        real_node.kubectl("delete", "namespace", NS, "--wait=true", "--timeout=120s", "--ignore-not-found",
                          timeout=150)
        wait_for(lambda: not allocated(real_node, POOL), timeout=60, what=f"{POOL} empty")
        real_node.kubectl("delete", "spiderippool", POOL, "--wait=true", "--timeout=60s", "--ignore-not-found",
                          timeout=90)
        run(["ip", "addr", "del", f"{NODE_ADDRESS}/24", "dev", MASTER], what=f"remove {NODE_ADDRESS}")


def _in_pod(node: RealNode, pod: str, *argv: str) -> str:
    return node.kubectl("exec", "-n", NS, pod, "--", *argv, timeout=60)


def test_rn13_coordinator_chain_lets_a_macvlan_pod_reach_its_node(real_node: RealNode,
                                                                  coordinating_chart: None) -> None:
    """RN13: a macvlan SpiderMultusConfig with the coordinator on (enableCoordinator's default) -> the controller's
    NAD chains macvlan and coordinator -> a Deployment pod through Multus gets the pool's lowest address on net1, and
    the coordinator (overlay mode: eth0 is the cluster network's) routes the node's address on the macvlan master
    through eth0: the pod opens a TCP connection to the agent's health port on that address, which macvlan alone
    cannot reach."""
    namespace(real_node, NS)
    real_node.apply(pool(POOL, "10.250.213.0/24", POOL_IPS))
    smc = {"apiVersion": "spiderpool.spidernet.io/v2beta1", "kind": "SpiderMultusConfig",
           "metadata": {"name": "smc-coord", "namespace": NS},
           "spec": {"cniType": "macvlan", "macvlan": {"master": [MASTER], "ippools": {"ipv4": [POOL]}}}}
    real_node.apply(smc)
    nad = wait_for(lambda: get(real_node, "network-attachment-definitions", "smc-coord", "-n", NS), timeout=60,
                   what="the NAD generated from smc-coord")
    assert [p["type"] for p in json.loads(nad["spec"]["config"])["plugins"]] == ["macvlan", "coordinator"]
    real_node.apply(workload(real_node, "Deployment", "coord", NS, 1, "smc-coord"))
    (pod,) = wait_ready_pods(real_node, NS, "coord", 1)
    name = pod["metadata"]["name"]
    reported = network_status_ip(pod, f"{NS}/smc-coord")
    assert {reported} == lowest(POOL_IPS, 1)
    assert ip_inside(real_node, NS, name) == reported
    (route,) = json.loads(_in_pod(real_node, name, "ip", "-j", "route", "get", NODE_ADDRESS))
    assert route["dev"] == "eth0", route
    _in_pod(real_node, name, "python3", "-c",
            f"import socket; socket.create_connection(({NODE_ADDRESS!r}, {HEALTH_PORT}), timeout=10).close()")
