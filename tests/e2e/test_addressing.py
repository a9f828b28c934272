"""Pods get IPv4, IPv6, dual-stack and multi-NIC addresses through Debian's macvlan with ``"ipam": {"type":
"spiderpool"}``; assertions read the pod's namespace with ``ip`` and the pool and SpiderEndpoint from the API server."""

from __future__ import annotations

import json
from ipaddress import ip_address

import pytest

from spiderpool.core.allocations import PoolIPAllocation
from spiderpool.testbed.netconf import plugin_of_list
from spiderpool.testbed.netns_state import default_gateway, interface_names, read_routes
from spiderpool.testbed.testbed import Testbed

from .support import (
    Pools,
    example,
    interface,
    nics,
    pod_template_annotations,
    read_endpoint,
    records_of,
    result_ips,
    unique,
)

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("cni_version", ["1.0.0", "0.4.0", "0.3.1"])
async def test_m01_ipv4_pod_through_macvlan(bed: Testbed, namespace: str, pools: Pools, cni_version: str) -> None:
    """M01: an IPv4 pool named in the CNI configuration; address, gateway and default route in the pod's namespace;
    the pool record carries the pod UID; the SpiderEndpoint indexes it."""
    node = await bed.add_node(unique(f"{bed.prefix}-m01"))
    pool = unique("m01-v4")
    await pools.create(pool, subnet="10.250.11.0/24", ips=["10.250.11.10-10.250.11.20"], gateway="10.250.11.1")
    pod = await bed.create_pod(node, name="m01", namespace=namespace)
    config = bed.macvlan(node, network="m01-net", cni_version=cni_version, default_ipv4_ippool=[pool])

    run = await bed.cni.add(pod, config)

    assert run.ok, run.describe()
    assert run.json()["cniVersion"] == cni_version
    assert result_ips(run.json()) == ["10.250.11.10/24"]
    state = interface(pod)
    assert (state.kind, state.up) == ("macvlan", True)
    assert [str(address) for address in state.addresses] == ["10.250.11.10/24"]
    assert default_gateway(pod.netns, version=4) == ip_address("10.250.11.1")
    assert await records_of(bed, pool) == {"10.250.11.10": PoolIPAllocation(pod.key, pod.uid)}
    endpoint = await read_endpoint(bed, pod)
    assert endpoint is not None
    assert endpoint["status"]["current"]["uid"] == pod.uid
    assert endpoint["status"]["current"]["node"] == node.name
    eth0 = nics(endpoint)["eth0"]
    assert (eth0["ipv4"], eth0["ipv4Pool"], eth0.get("ipv4Gateway")) == ("10.250.11.10/24", pool, "10.250.11.1")


async def test_m02_ipv6_pod_through_macvlan(bed: Testbed, namespace: str, pools: Pools) -> None:
    """M02: an IPv6 pool; the pod gets its address and an IPv6 default route via the pool's gateway."""
    node = await bed.add_node(unique(f"{bed.prefix}-m02"))
    pool = unique("m02-v6")
    await pools.create(
        pool, subnet="fd00:250:12::/64", ips=["fd00:250:12::100-fd00:250:12::1ff"], gateway="fd00:250:12::1"
    )
    pod = await bed.create_pod(node, name="m02", namespace=namespace)
    config = bed.macvlan(node, network="m02-net", default_ipv6_ippool=[pool])

    run = await bed.cni.add(pod, config)

    assert run.ok, run.describe()
    assert [str(address) for address in interface(pod).addresses] == ["fd00:250:12::100/64"]
    assert default_gateway(pod.netns, version=6) == ip_address("fd00:250:12::1")
    assert default_gateway(pod.netns, version=4) is None
    assert await records_of(bed, pool) == {"fd00:250:12::100": PoolIPAllocation(pod.key, pod.uid)}
    assert nics(await read_endpoint(bed, pod))["eth0"]["ipv6"] == "fd00:250:12::100/64"


async def test_m03_dual_stack_from_upstream_examples(bed: Testbed, namespace: str, pools: Pools) -> None:
    """M03: upstream's basic_custom-ipv4/ipv6-ippool.yaml applied unchanged, pods annotated as in
    basic_custom-dual-ippool-deploy.yaml (``ipam.spidernet.io/ippool``); CNI 0.3.1 as upstream's examples use."""
    await pools.apply_example("basic_custom-ipv4-ippool.yaml")
    await pools.apply_example("basic_custom-ipv6-ippool.yaml")
    annotations = pod_template_annotations("basic_custom-dual-ippool-deploy.yaml")
    node = await bed.add_node(unique(f"{bed.prefix}-m03"))
    config = bed.macvlan(node, network="m03-net", cni_version="0.3.1")
    pods = [
        await bed.create_pod(node, name=f"dual-{i}", namespace=namespace, annotations=annotations) for i in range(2)
    ]

    runs = [await bed.cni.add(pod, config) for pod in pods]

    assert all(run.ok for run in runs), [run.describe() for run in runs]
    expected = [["172.18.41.40/24", "fd00:172:18::40/64"], ["172.18.41.41/24", "fd00:172:18::41/64"]]
    assert [sorted(map(str, interface(pod).addresses)) for pod in pods] == expected
    assert [sorted(result_ips(run.json())) for run in runs] == expected
    assert [entry["version"] for entry in runs[0].json()["ips"]] == ["4", "6"]  # 0.3.x results carry the version
    v4 = await records_of(bed, "custom-ipv4-ippool")
    v6 = await records_of(bed, "custom-ipv6-ippool")
    assert {record.pod_uid for record in v4.values()} == {pod.uid for pod in pods}
    assert v6 == {
        "fd00:172:18::40": PoolIPAllocation(pods[0].key, pods[0].uid),
        "fd00:172:18::41": PoolIPAllocation(pods[1].key, pods[1].uid),
    }
    eth0 = nics(await read_endpoint(bed, pods[1]))["eth0"]
    assert (eth0["ipv4Pool"], eth0["ipv6Pool"]) == ("custom-ipv4-ippool", "custom-ipv6-ippool")
    assert default_gateway(pods[0].netns, version=4) is None  # the example pools have no gateway


async def test_m04_pool_routes_from_upstream_example(bed: Testbed, namespace: str, pools: Pools) -> None:
    """M04: upstream's route_ippool-route.yaml unchanged: the pool's route is installed in the pod's namespace."""
    await pools.apply_example("route_ippool-route.yaml")
    node = await bed.add_node(unique(f"{bed.prefix}-m04"))
    pod = await bed.create_pod(node, name="routed", namespace=namespace)

    run = await bed.cni.add(pod, bed.macvlan(node, network="m04-net", default_ipv4_ippool=["ipv4-ippool-route"]))

    assert run.ok, run.describe()
    assert [str(address) for address in interface(pod).addresses] == ["172.18.41.51/24"]
    routes = {(route.dst, str(route.gateway)) for route in read_routes(pod.netns, version=4)}
    assert ("172.18.42.0/24", "172.18.41.1") in routes


async def test_m05_multi_nic_from_upstream_examples(bed: Testbed, namespace: str, pools: Pools) -> None:
    """M05: eth0 and net1 from different pools through ``ipam.spidernet.io/ippools``: upstream's
    multi-interfaces-annotation pools, pod annotations and Multus network configurations, all unchanged (each NIC's
    macvlan on its own master, ens192 / ens224; the executable reaches the node's agent through SPIDERPOOL_SOCKET
    because the configurations name no socket)."""
    await pools.apply_example("multi-interfaces-annotation_different-segment-ipv4-ippools.yaml")
    networks = {
        doc["metadata"]["name"]: json.loads(doc["spec"]["config"])
        for doc in example("multi-interfaces-annotation_multus-conf.yaml")
    }
    annotations = pod_template_annotations("multi-interfaces-annotation_ippool-test-deploy.yaml")
    node = await bed.add_node(unique(f"{bed.prefix}-m05"))
    pod = await bed.create_pod(node, name="multi-nic", namespace=namespace, annotations=annotations)
    socket_env = {"SPIDERPOOL_SOCKET": str(node.socket_path)}

    eth0 = await bed.cni.add(pod, plugin_of_list(networks["macvlan-conf-ens192"], "macvlan"), extra_env=socket_env)
    net1 = await bed.cni.add(
        pod, plugin_of_list(networks["macvlan-conf-ens224"], "macvlan"), ifname="net1", extra_env=socket_env
    )

    assert eth0.ok, eth0.describe()
    assert net1.ok, net1.describe()
    assert interface_names(pod.netns) == ["lo", "eth0", "net1"]
    assert [str(a) for a in interface(pod, "eth0").addresses] == ["10.6.168.176/16"]
    assert [str(a) for a in interface(pod, "net1").addresses] == ["10.7.168.176/16"]
    assert await records_of(bed, "ippool-test-ens192") == {"10.6.168.176": PoolIPAllocation(pod.key, pod.uid)}
    assert await records_of(bed, "ippool-test-ens224") == {"10.7.168.176": PoolIPAllocation(pod.key, pod.uid)}
    by_nic = nics(await read_endpoint(bed, pod))
    assert (by_nic["eth0"]["ipv4Pool"], by_nic["net1"]["ipv4Pool"]) == ("ippool-test-ens192", "ippool-test-ens224")
    # The annotation sets no "cleangateway", so (as upstream) each NIC's result carries its pool's gateway as a
    # default route; separating them is the coordinator's job, not IPAM's.
    defaults = {(route.dev, str(route.gateway)) for route in read_routes(pod.netns, version=4) if route.is_default}
    assert defaults == {("eth0", "10.6.0.1"), ("net1", "10.7.0.1")}
