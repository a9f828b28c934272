"""IP conflict and gateway detection (``enableIPConflictDetection`` / ``enableGatewayDetection``) through Debian's
macvlan: the agent probes with ARP / NDP from inside the pod's namespace before it answers the ADD. Other hosts of the
segment are addresses on the fabric's bridge (another namespace on the same L2 segment as the pods)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from spiderpool.agent.detection import MAX_CONFLICT_RETRIES
from spiderpool.core.allocations import PoolIPAllocation
from spiderpool.devcluster.cluster import ControlPlane
from spiderpool.k8s.client import make_api_client
from spiderpool.k8s.network_attachments import list_events
from spiderpool.testbed.members import SimulatedNode
from spiderpool.testbed.netns import in_netns, run_command, run_ip
from spiderpool.testbed.testbed import Testbed

from .support import Pools, eventually, interface, records_of, result_ips, unique

pytestmark = pytest.mark.e2e

# Generous per-probe timeout: the answering bridge shares 2 busy cores with the whole suite.
DETECTING_CONF = "enableIPConflictDetection: true\nenableGatewayDetection: true\ndetectionTimeout: 500ms\n"


@pytest.fixture
async def detecting_bed(e2e_ready: ControlPlane, tmp_path: Path) -> AsyncIterator[Testbed]:
    """A testbed whose agents run IP conflict and gateway detection (lean endpoints, the default)."""
    async with Testbed(kubeconfig=e2e_ready.kubeconfig, log_dir=tmp_path, conf_yml=DETECTING_CONF) as testbed:
        yield testbed


@pytest.fixture
async def detecting_pools(detecting_bed: Testbed) -> AsyncIterator[Pools]:
    made = Pools(detecting_bed)
    yield made
    await made.delete_all()


@pytest.fixture
async def detecting_namespace(detecting_bed: Testbed) -> AsyncIterator[str]:
    name = unique("dt")
    await detecting_bed.core.create_namespace(name)
    yield name
    await detecting_bed.core.delete_namespace(name)


def hold_on_segment(bed: Testbed, node: SimulatedNode, *addresses: str) -> None:
    """Another host of the node's first segment answers for ``addresses`` (they live on the fabric's bridge)."""
    bridge = bed.fabric.bridge(node.masters[0])
    for address in addresses:
        extra = ["nodad"] if ":" in address else []
        run_ip("addr", "add", address, "dev", bridge, *extra, netns=bed.fabric.netns)


async def conflict_events(bed: Testbed, pool: str) -> list[str]:
    api = await make_api_client(kubeconfig=bed.kubeconfig)
    try:
        events = await list_events(api, namespace="default", involved_name=pool)
    finally:
        await api.close()
    return [event["message"] for event in events if event.get("reason") == "IPConflict"]


async def test_dt01_ipv4_conflict_is_skipped(detecting_bed: Testbed, detecting_namespace: str,
                                             detecting_pools: Pools) -> None:
    """DT01: the pool's lowest free address is answered for by another host (ARP): the pod gets the next one, the
    conflicting address keeps no record, and the pool carries an IPConflict Event naming it."""
    bed = detecting_bed
    node = await bed.add_node(unique(f"{bed.prefix}-dt01"))
    pool = unique("dt01-v4")
    await detecting_pools.create(pool, subnet="10.250.61.0/24", ips=["10.250.61.10-10.250.61.20"],
                                 gateway="10.250.61.1")
    hold_on_segment(bed, node, "10.250.61.1/24", "10.250.61.10/24")
    pod = await bed.create_pod(node, name="dt01", namespace=detecting_namespace)

    run = await bed.cni.add(pod, bed.macvlan(node, network="dt01-net", default_ipv4_ippool=[pool]))

    assert run.ok, run.describe()
    assert result_ips(run.json()) == ["10.250.61.11/24"]
    assert [str(address) for address in interface(pod).addresses] == ["10.250.61.11/24"]
    assert await records_of(bed, pool) == {"10.250.61.11": PoolIPAllocation(pod.key, pod.uid, "eth0")}
    messages = await conflict_events(bed, pool)
    assert any("10.250.61.10" in message for message in messages), messages


async def test_dt02_dead_gateway_fails_the_add(detecting_bed: Testbed, detecting_namespace: str,
                                               detecting_pools: Pools) -> None:
    """DT02: nothing answers for the pool's gateway: the ADD fails with CNI error 106 naming the gateway, and the
    address it had allocated is released (the pool keeps no record of the pod)."""
    bed = detecting_bed
    node = await bed.add_node(unique(f"{bed.prefix}-dt02"))
    pool = unique("dt02-v4")
    await detecting_pools.create(pool, subnet="10.250.62.0/24", ips=["10.250.62.10-10.250.62.20"],
                                 gateway="10.250.62.1")
    pod = await bed.create_pod(node, name="dt02", namespace=detecting_namespace)

    run = await bed.cni.add(pod, bed.macvlan(node, network="dt02-net", default_ipv4_ippool=[pool]))

    assert not run.ok, run.describe()
    assert run.error_code == 106, run.describe()
    error = run.json()
    assert "gateway 10.250.62.1 of interface eth0 is unreachable" in error["msg"], error
    assert "were released" in error.get("details", ""), error
    assert await records_of(bed, pool) == {}


async def test_dt03_live_dual_stack_gateways_pass(detecting_bed: Testbed, detecting_namespace: str,
                                                  detecting_pools: Pools) -> None:
    """DT03: both gateways answer (ARP and NDP) and no address conflicts: the pod gets the lowest address of each
    family, as without detection."""
    bed = detecting_bed
    node = await bed.add_node(unique(f"{bed.prefix}-dt03"))
    v4, v6 = unique("dt03-v4"), unique("dt03-v6")
    await detecting_pools.create(v4, subnet="10.250.63.0/24", ips=["10.250.63.10-10.250.63.20"],
                                 gateway="10.250.63.1")
    await detecting_pools.create(v6, subnet="fd00:250:63::/64", ips=["fd00:250:63::100-fd00:250:63::1ff"],
                                 gateway="fd00:250:63::1")
    hold_on_segment(bed, node, "10.250.63.1/24", "fd00:250:63::1/64")
    pod = await bed.create_pod(node, name="dt03", namespace=detecting_namespace)

    run = await bed.cni.add(pod, bed.macvlan(node, network="dt03-net", default_ipv4_ippool=[v4],
                                             default_ipv6_ippool=[v6]))

    assert run.ok, run.describe()
    assert sorted(result_ips(run.json())) == ["10.250.63.10/24", "fd00:250:63::100/64"]
    assert await records_of(bed, v4) == {"10.250.63.10": PoolIPAllocation(pod.key, pod.uid, "eth0")}
    assert await records_of(bed, v6) == {"fd00:250:63::100": PoolIPAllocation(pod.key, pod.uid, "eth0")}


async def test_dt04_ipv6_conflict_is_skipped(detecting_bed: Testbed, detecting_namespace: str,
                                             detecting_pools: Pools) -> None:
    """DT04: another host answers the duplicate address detection solicitation for the lowest free IPv6 address:
    the pod gets the next one and the conflicting address keeps no record."""
    bed = detecting_bed
    node = await bed.add_node(unique(f"{bed.prefix}-dt04"))
    pool = unique("dt04-v6")
    await detecting_pools.create(pool, subnet="fd00:250:64::/64", ips=["fd00:250:64::100-fd00:250:64::1ff"],
                                 gateway="fd00:250:64::1")
    hold_on_segment(bed, node, "fd00:250:64::1/64", "fd00:250:64::100/64")
    pod = await bed.create_pod(node, name="dt04", namespace=detecting_namespace)

    run = await bed.cni.add(pod, bed.macvlan(node, network="dt04-net", default_ipv6_ippool=[pool]))

    assert run.ok, run.describe()
    assert result_ips(run.json()) == ["fd00:250:64::101/64"]
    assert await records_of(bed, pool) == {"fd00:250:64::101": PoolIPAllocation(pod.key, pod.uid, "eth0")}
    messages = await conflict_events(bed, pool)
    assert any("fd00:250:64::100" in message for message in messages), messages


async def test_dt05_no_probe_when_disabled(bed: Testbed, namespace: str, pools: Pools) -> None:
    """DT05: with detection off (the default) nothing is probed: the pod gets the lowest free address even though
    another host answers for it."""
    node = await bed.add_node(unique(f"{bed.prefix}-dt05"))
    pool = unique("dt05-v4")
    await pools.create(pool, subnet="10.250.65.0/24", ips=["10.250.65.10-10.250.65.20"], gateway="10.250.65.1")
    hold_on_segment(bed, node, "10.250.65.10/24")
    pod = await bed.create_pod(node, name="dt05", namespace=namespace)

    run = await bed.cni.add(pod, bed.macvlan(node, network="dt05-net", default_ipv4_ippool=[pool]))

    assert run.ok, run.describe()
    assert result_ips(run.json()) == ["10.250.65.10/24"]


async def test_dt06_exhausted_conflicts_keep_no_record(detecting_bed: Testbed, detecting_namespace: str,
                                                       detecting_pools: Pools) -> None:
    """DT06: dual-stack, another host answers for every IPv4 address the ADD may try while IPv6 is free: the ADD
    fails with CNI error 105 and neither pool keeps a record of the pod (the IPv6 address is released too)."""
    bed = detecting_bed
    node = await bed.add_node(unique(f"{bed.prefix}-dt06"))
    v4, v6 = unique("dt06-v4"), unique("dt06-v6")
    last = 10 + MAX_CONFLICT_RETRIES  # as many addresses as the ADD tries
    await detecting_pools.create(v4, subnet="10.250.66.0/24", ips=[f"10.250.66.10-10.250.66.{last}"],
                                 gateway="10.250.66.1")
    await detecting_pools.create(v6, subnet="fd00:250:66::/64", ips=["fd00:250:66::100-fd00:250:66::1ff"],
                                 gateway="fd00:250:66::1")
    held = [f"10.250.66.{host}/24" for host in range(10, last + 1)]  # every address of the pool
    hold_on_segment(bed, node, "10.250.66.1/24", "fd00:250:66::1/64", *held)
    pod = await bed.create_pod(node, name="dt06", namespace=detecting_namespace)

    run = await bed.cni.add(pod, bed.macvlan(node, network="dt06-net", default_ipv4_ippool=[v4],
                                             default_ipv6_ippool=[v6]))

    assert not run.ok, run.describe()
    assert run.error_code == 105, run.describe()
    assert "every address tried for interface eth0 is held by another host" in run.json()["msg"], run.describe()
    assert await records_of(bed, v4) == {}
    assert await records_of(bed, v6) == {}


def _neighbour_mac(bed: Testbed, bridge: str, address: str) -> str | None:
    entries = json.loads(run_command(in_netns(bed.fabric.netns, ["ip", "-j", "-4", "neigh", "show", "dev", bridge])))
    return next((entry.get("lladdr") for entry in entries if entry.get("dst") == address), None)


async def test_dt07_gratuitous_arp_after_success(detecting_bed: Testbed, detecting_namespace: str,
                                                 detecting_pools: Pools) -> None:
    """DT07: after a successful ADD the agent announces the address (gratuitous ARP): a host of the segment that
    accepts gratuitous ARP (arp_accept) learns the pod's address at the pod's MAC, although nothing else it received
    named that address (the conflict probe's sender is 0.0.0.0; the pool has no gateway to probe)."""
    bed = detecting_bed
    node = await bed.add_node(unique(f"{bed.prefix}-dt07"))
    pool = unique("dt07-v4")
    await detecting_pools.create(pool, subnet="10.250.67.0/24", ips=["10.250.67.10-10.250.67.20"])
    bridge = bed.fabric.bridge(node.masters[0])
    hold_on_segment(bed, node, "10.250.67.1/24")
    run_command(in_netns(bed.fabric.netns, ["sysctl", "-qw", f"net.ipv4.conf.{bridge}.arp_accept=1"]))
    pod = await bed.create_pod(node, name="dt07", namespace=detecting_namespace)

    run = await bed.cni.add(pod, bed.macvlan(node, network="dt07-net", default_ipv4_ippool=[pool]))

    assert run.ok, run.describe()
    assert result_ips(run.json()) == ["10.250.67.10/24"]
    mac = interface(pod).mac

    async def learned() -> bool:
        return _neighbour_mac(bed, bridge, "10.250.67.10") == mac

    await eventually(learned, within=10, what=f"the fabric's bridge learning 10.250.67.10 at {mac}")
