"""IP conflict and gateway detection on the real node: the chart's agent (capabilities and /var/run/netns given by
ipam.enableIPConflictDetection / enableGatewayDetection) probes from inside a pod's sandbox that containerd made,
through Multus and macvlan. The other host of the segment is the node itself, on the far end of the master's veth."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from cluster_support import (
    allocated,
    get,
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
from spiderpool.devcluster.realnode.layout import run
from spiderpool.devcluster.realnode.node import RealNode

NS = "rn-detect"
POOL = "rn-detect-v4"
PEER = "rnmv0p"  # the host's end of the master rnmv0: what the pods' macvlan frames reach
HELD = ["10.250.214.1/24", "10.250.214.10/24"]  # the gateway, and the pool's lowest address


@pytest.fixture
def detecting_chart(real_node: RealNode) -> Iterator[None]:
    """The chart with both detections on, the gateway and a conflicting address answered by the host; the chart's
    defaults, the namespace, the pool and the host's addresses restored afterwards."""
    for address in HELD:
        run(["ip", "addr", "add", address, "dev", PEER], what=f"hold {address} on {PEER}")
    try:
        chart.install(real_node, {"ipam": {"enableIPConflictDetection": True, "enableGatewayDetection": True}})
        yield
    finally:
        chart.install(real_node)
        real_node.kubectl("delete", "namespace", NS, "--wait=true", "--timeout=120s", "--ignore-not-found",
                          timeout=150)
        wait_for(lambda: not allocated(real_node, POOL), timeout=60, what=f"{POOL} empty")
        real_node.kubectl("delete", "spiderippool", POOL, "--wait=true", "--timeout=60s", "--ignore-not-found",
                          timeout=90)
        for address in reversed(HELD):  # secondaries first: deleting the primary would take them along
            run(["ip", "addr", "del", address, "dev", PEER], what=f"release {address} on {PEER}")


def test_rn14_detection_skips_a_conflicting_address_in_a_real_sandbox(real_node: RealNode,
                                                                       detecting_chart: None) -> None:
    """RN14: with ipam.enableIPConflictDetection and enableGatewayDetection the agent (in its container: H15's
    capabilities and /var/run/netns) probes from inside a containerd sandbox: the pool's lowest address, which the
    node answers for, is skipped, the gateway answers, and the Deployment pod runs with the next address on net1; the
    skipped address keeps no record and the pool carries an IPConflict Event naming it."""
    namespace(real_node, NS)
    real_node.apply([pool(POOL, "10.250.214.0/24", ["10.250.214.10-10.250.214.20"], "10.250.214.1"),
                     macvlan_nad("macvlan-detect", NS, "rnmv0", POOL)])
    real_node.apply(workload(real_node, "Deployment", "detect", NS, 1, "macvlan-detect"))
    (pod,) = wait_ready_pods(real_node, NS, "detect", 1)
    name = pod["metadata"]["name"]
    reported = network_status_ip(pod, f"{NS}/macvlan-detect")
    assert reported == "10.250.214.11"
    assert ip_inside(real_node, NS, name) == reported
    assert {ip: rec["pod"] for ip, rec in allocated(real_node, POOL).items()} == {reported: f"{NS}/{name}"}
    events = get(real_node, "events", "-n", "default", "--field-selector", f"involvedObject.name={POOL}")["items"]
    messages = [event["message"] for event in events if event.get("reason") == "IPConflict"]
    assert any("10.250.214.10 " in message for message in messages), json.dumps(messages)
