"""Pods get IPv4, IPv6, dual-stack and multi-NIC addresses through Debian's macvlan with ``"ipam": {"type":
"spiderpool"}``; assertions read the pod's namespace with ``ip`` and the pool and SpiderEndpoint from the API server."""

from __future__ import annotations

import json
from ipaddress import ip_address

import pytest
from upstream_examples import Corpus, corpus_params

from spiderpool.core.allocations import PoolIPAllocation
from spiderpool.testbed.netconf import plugin_of_list
from spiderpool.testbed.netns_state import default_gateway, interface_names, read_routes
from spiderpool.testbed.testbed import Testbed

from .support import (
    Pools,
    bare_ip,
    first_addresses,
    interface,
    nics,
    pod_template_annotations,
    pool_documents,
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
    assert await records_of(bed, pool) == {"10.250.11.10": PoolIPAllocation(pod.key, pod.uid, "eth0")}
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
    assert await records_of(bed, pool) == {"fd00:250:12::100": PoolIPAllocation(pod.key, pod.uid, "eth0")}
    assert nics(await read_endpoint(bed, pod))["eth0"]["ipv6"] == "fd00:250:12::100/64"


@pytest.mark.parametrize("corpus", corpus_params())
async def test_m03_dual_stack_from_upstream_format(bed: Testbed, namespace: str, pools: Pools, corpus: Corpus) -> None:
    """M03: the "dual-stack pools" of a corpus (upstream's basic_custom-ipv4/ipv6-ippool.yaml, or the project's
    addressing_dual-stack-ippools.yaml) applied unchanged, pods annotated as its "dual-stack deployment"
    (``ipam.spidernet.io/ippool``); CNI 0.3.1 as upstream's examples use: the pods get each pool's first addresses in
    order."""
    v4_pool, v6_pool = [created["metadata"]["name"] for created in await pools.apply_role(corpus, "dual-stack pools")]
    v4_doc, v6_doc = pool_documents(corpus, "dual-stack pools")
    annotations = pod_template_annotations(corpus, "dual-stack deployment")
    node = await bed.add_node(unique(f"{bed.prefix}-m03"))
    config = bed.macvlan(node, network="m03-net", cni_version="0.3.1")
    pods = [
        await bed.create_pod(node, name=f"dual-{i}", namespace=namespace, annotations=annotations) for i in range(2)
    ]

    runs = [await bed.cni.add(pod, config) for pod in pods]

    assert all(run.ok for run in runs), [run.describe() for run in runs]
    expected = [sorted(pair) for pair in zip(first_addresses(v4_doc, 2), first_addresses(v6_doc, 2), strict=True)]
    assert [sorted(map(str, interface(pod).addresses)) for pod in pods] == expected
    assert [sorted(result_ips(run.json())) for run in runs] == expected
    assert [entry["version"] for entry in runs[0].json()["ips"]] == ["4", "6"]  # 0.3.x results carry the version
    v4 = await records_of(bed, v4_pool)
    v6 = await records_of(bed, v6_pool)
    assert {record.pod_uid for record in v4.values()} == {pod.uid for pod in pods}
    v6_first = [bare_ip(address) for address in first_addresses(v6_doc, 2)]
    assert v6 == {
        v6_first[0]: PoolIPAllocation(pods[0].key, pods[0].uid, "eth0"),
        v6_first[1]: PoolIPAllocation(pods[1].key, pods[1].uid, "eth0"),
    }
    eth0 = nics(await read_endpoint(bed, pods[1]))["eth0"]
    assert (eth0["ipv4Pool"], eth0["ipv6Pool"]) == (v4_pool, v6_pool)
    assert "gateway" not in v4_doc["spec"]  # both corpora's dual-stack pools name no gateway: no default route
    assert default_gateway(pods[0].netns, version=4) is None


@pytest.mark.parametrize("corpus", corpus_params())
async def test_m04_pool_routes_from_upstream_format(bed: Testbed, namespace: str, pools: Pools, corpus: Corpus) -> None:
    """M04: a corpus' "routed pool" (upstream's route_ippool-route.yaml, or the project's routes_ippool.yaml)
    unchanged: the pod gets its first address and the pool's routes are installed in the pod's namespace."""
    [created] = await pools.apply_role(corpus, "routed pool")
    [pool_doc] = pool_documents(corpus, "routed pool")
    node = await bed.add_node(unique(f"{bed.prefix}-m04"))
    pod = await bed.create_pod(node, name="routed", namespace=namespace)
    config = bed.macvlan(node, network="m04-net", default_ipv4_ippool=[created["metadata"]["name"]])

    run = await bed.cni.add(pod, config)

    assert run.ok, run.describe()
    assert [str(address) for address in interface(pod).addresses] == first_addresses(pool_doc, 1)
    routes = {(route.dst, str(route.gateway)) for route in read_routes(pod.netns, version=4)}
    assert pool_doc["spec"]["routes"]
    for route in pool_doc["spec"]["routes"]:
        assert (route["dst"], route["gw"]) in routes


@pytest.mark.parametrize("corpus", corpus_params())
async def test_m05_multi_nic_from_upstream_format(bed: Testbed, namespace: str, pools: Pools, corpus: Corpus) -> None:
    """M05: eth0 and net1 from different pools through ``ipam.spidernet.io/ippools``: a corpus' "multi-nic" pools,
    pod annotations and Multus network configurations (upstream's multi-interfaces-annotation files, or the
    project's multi-nic_*.yaml), all unchanged (each NIC's macvlan on its own master, ens192 / ens224, the networks
    named by the Multus annotations; the executable reaches the node's agent through SPIDERPOOL_SOCKET because the
    configurations name no socket)."""
    await pools.apply_role(corpus, "multi-nic pools")
    pool_docs = {doc["metadata"]["name"]: doc for doc in pool_documents(corpus, "multi-nic pools")}
    networks = {
        doc["metadata"]["name"]: json.loads(doc["spec"]["config"]) for doc in corpus.role("multi-nic networks")
    }
    annotations = pod_template_annotations(corpus, "multi-nic deployment")
    network_of = {
        "eth0": annotations["v1.multus-cni.io/default-network"].split("/")[-1],
        "net1": annotations["k8s.v1.cni.cncf.io/networks"].split("/")[-1],
    }
    pool_of = {nic["interface"]: nic["ipv4"][0] for nic in json.loads(annotations["ipam.spidernet.io/ippools"])}
    node = await bed.add_node(unique(f"{bed.prefix}-m05"))
    pod = await bed.create_pod(node, name="multi-nic", namespace=namespace, annotations=annotations)
    socket_env = {"SPIDERPOOL_SOCKET": str(node.socket_path)}

    runs = {
        ifname: await bed.cni.add(
            pod, plugin_of_list(networks[network_of[ifname]], "macvlan"), ifname=ifname, extra_env=socket_env
        )
        for ifname in ("eth0", "net1")
    }

    assert all(run.ok for run in runs.values()), [run.describe() for run in runs.values()]
    assert interface_names(pod.netns) == ["lo", "eth0", "net1"]
    by_nic = nics(await read_endpoint(bed, pod))
    for ifname in ("eth0", "net1"):
        [address] = first_addresses(pool_docs[pool_of[ifname]], 1)
        assert [str(a) for a in interface(pod, ifname).addresses] == [address]
        recorded = {bare_ip(address): PoolIPAllocation(pod.key, pod.uid, ifname)}
        assert await records_of(bed, pool_of[ifname]) == recorded
        assert by_nic[ifname]["ipv4Pool"] == pool_of[ifname]
    # The annotation sets no "cleangateway", so (as upstream) each NIC's result carries its pool's gateway as a
    # default route; separating them is the coordinator's job, not IPAM's.
    defaults = {(route.dev, str(route.gateway)) for route in read_routes(pod.netns, version=4) if route.is_default}
    assert defaults == {(ifname, pool_docs[pool_of[ifname]]["spec"]["gateway"]) for ifname in ("eth0", "net1")}
