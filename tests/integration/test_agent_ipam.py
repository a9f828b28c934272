"""The agent's IPAM service against the real API server, driven through its CniBackend methods.

IPv4, IPv6 and dual-stack pools; idempotent ADD; DEL twice; DEL of an alive pod; ordered fallback on exhaustion;
every pool exhausted; a dual-stack ADD whose IPv6 half fails leaves nothing behind.
"""

from __future__ import annotations

from ipaddress import ip_address, ip_interface, ip_network

import pytest
from agent_support import AgentLauncher, Cluster, cni_request, span

from spiderpool.agent.endpoints import CONTAINER_ID_ANNOTATION
from spiderpool.agent.ipam_errors import IpamCode
from spiderpool.core.cni_types import CniError, IpConfig, Route

pytestmark = pytest.mark.integration


async def test_ipv4_add_records_the_address_then_writes_the_endpoint(
    cluster: Cluster, node_agent: AgentLauncher
) -> None:
    """AI01: IPv4 ADD records the address then writes the endpoint."""
    node = await cluster.node()
    pool = await cluster.pool(subnet="10.71.0.0/16", ips=[span("10.71.0.10", 8)], gateway="10.71.0.1",
                              routes=[{"dst": "10.99.0.0/16", "gw": "10.71.0.254"}])
    pod = await cluster.pod(node)
    async with node_agent(node, pool) as agent:
        result = await agent.service.add(cni_request("ADD", pod, default_ipv4_ippool=[pool]))

    assert result.ips == (IpConfig(ip_interface("10.71.0.10/16"), ip_address("10.71.0.1")),)
    assert result.routes == (Route(ip_network("10.99.0.0/16"), ip_address("10.71.0.254")),
                             Route(ip_network("0.0.0.0/0"), ip_address("10.71.0.1")))
    records = await cluster.records(pool)
    assert {ip: (r.pod, r.pod_uid) for ip, r in records.items()} == {
        "10.71.0.10": (f"default/{pod.metadata.name}", pod.metadata.uid)}
    endpoint = await cluster.endpoint(pod.metadata.name)
    assert endpoint is not None
    assert "finalizers" not in endpoint["metadata"], "no finalizer: it would cost a write per pod and guard nothing"
    assert endpoint["metadata"]["annotations"][CONTAINER_ID_ANNOTATION] == f"c-{pod.metadata.uid}"
    assert endpoint["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Pod", "name": pod.metadata.name, "uid": pod.metadata.uid}]
    assert endpoint["status"] == {
        "current": {"uid": pod.metadata.uid, "node": node, "ips": [{
            "interface": "eth0", "ipv4": "10.71.0.10/16", "ipv4Pool": pool, "ipv4Gateway": "10.71.0.1",
            "cleanGateway": False, "vlan": 0, "routes": [{"dst": "10.99.0.0/16", "gw": "10.71.0.254"}]}]},
        "ownerControllerType": "Pod",
        "ownerControllerName": pod.metadata.name,
    }


async def test_ipv6_and_dual_stack_pools(cluster: Cluster, node_agent: AgentLauncher) -> None:
    """AI02: IPv6 and dual stack pools."""
    node = await cluster.node()
    v4 = await cluster.pool(subnet="10.72.0.0/24", ips=[span("10.72.0.2", 4)], gateway="10.72.0.1")
    v6 = await cluster.pool(subnet="fd00:72::/64", ips=[span("fd00:72::a", 4)], gateway="fd00:72::1")
    single, dual = await cluster.pod(node), await cluster.pod(node)
    async with node_agent(node, v4, v6) as agent:
        only_v6 = await agent.service.add(cni_request("ADD", single, default_ipv6_ippool=[v6], clean_gateway=True))
        both = await agent.service.add(cni_request("ADD", dual, default_ipv4_ippool=[v4], default_ipv6_ippool=[v6]))

    assert only_v6.ips == (IpConfig(ip_interface("fd00:72::a/64"), ip_address("fd00:72::1")),)
    assert only_v6.routes == ()  # clean_gateway: no default route
    assert [str(ip.address) for ip in both.ips] == ["10.72.0.2/24", "fd00:72::b/64"]
    assert [(str(route.dst), str(route.gw)) for route in both.routes] == [
        ("0.0.0.0/0", "10.72.0.1"), ("::/0", "fd00:72::1")]
    assert set(await cluster.records(v6)) == {"fd00:72::a", "fd00:72::b"}


async def test_add_is_idempotent_and_del_twice_releases_once(cluster: Cluster, node_agent: AgentLauncher) -> None:
    """AI03: ADD is idempotent and DEL twice releases once."""
    node = await cluster.node()
    pool = await cluster.pool(subnet="10.73.0.0/24", ips=[span("10.73.0.2", 4)])
    pod = await cluster.pod(node)
    async with node_agent(node, pool) as agent:
        first = await agent.service.add(cni_request("ADD", pod, default_ipv4_ippool=[pool]))
        writes = agent.writer.stats.writes
        again = await agent.service.add(cni_request("ADD", pod, default_ipv4_ippool=[pool]))
        assert again == first
        assert agent.writer.stats.writes == writes  # served from the endpoint, nothing written
        await cluster.terminate(pod.metadata.name)
        for _ in range(2):
            await agent.service.delete(cni_request("DEL", pod, default_ipv4_ippool=[pool]))
        assert await cluster.records(pool) == {}
        assert await cluster.endpoint(pod.metadata.name) is None
    await cluster.force_delete(pod.metadata.name)


async def test_del_keeps_the_addresses_of_an_alive_pod(cluster: Cluster, node_agent: AgentLauncher) -> None:
    """AI04: DEL keeps the addresses of an alive pod."""
    node = await cluster.node()
    pool = await cluster.pool(subnet="10.74.0.0/24", ips=[span("10.74.0.2", 4)])
    pod = await cluster.pod(node)
    async with node_agent(node, pool) as agent:
        first = await agent.service.add(cni_request("ADD", pod, default_ipv4_ippool=[pool]))
        await agent.service.delete(cni_request("DEL", pod, default_ipv4_ippool=[pool]))  # sandbox re-created
        assert set(await cluster.records(pool)) == {"10.74.0.2"}
        again = await agent.service.add(cni_request("ADD", pod, container_id="new-sandbox",
                                                    default_ipv4_ippool=[pool]))
    assert again == first
    endpoint = await cluster.endpoint(pod.metadata.name)
    assert endpoint is not None
    assert endpoint["metadata"]["annotations"][CONTAINER_ID_ANNOTATION] == "new-sandbox"


async def test_ordered_fallback_then_every_pool_exhausted(cluster: Cluster, node_agent: AgentLauncher) -> None:
    """AI05: Ordered fallback then every pool exhausted."""
    node = await cluster.node()
    first = await cluster.pool(subnet="10.75.0.0/24", ips=["10.75.0.2"])
    second = await cluster.pool(subnet="10.75.1.0/24", ips=["10.75.1.2"])
    pods = [await cluster.pod(node) for _ in range(3)]
    async with node_agent(node, first, second) as agent:
        served = [await agent.service.add(cni_request("ADD", pod, default_ipv4_ippool=[first, second]))
                  for pod in pods[:2]]
        with pytest.raises(CniError) as refused:
            await agent.service.add(cni_request("ADD", pods[2], default_ipv4_ippool=[first, second]))
        sample = agent.metrics.registry.get_sample_value
        assert sample("spiderpool_ipam_allocation_err_ip_used_out_counts_total") == 1
        assert sample("spiderpool_ipam_allocation_failure_counts_total") == 1
        assert sample("spiderpool_ipam_allocation_counts_total") == 3

    assert [str(result.ips[0].address) for result in served] == ["10.75.0.2/24", "10.75.1.2/24"]
    assert refused.value.code == IpamCode.POOL_EXHAUSTED
    assert refused.value.msg == (
        f"no IPv4 address for interface eth0: pool {first} is exhausted (every address is allocated, excluded or "
        f"reserved); pool {second} is exhausted (every address is allocated, excluded or reserved)")
    assert {r.pod_uid for r in (await cluster.records(first)).values()} == {pods[0].metadata.uid}
    assert {r.pod_uid for r in (await cluster.records(second)).values()} == {pods[1].metadata.uid}
    assert await cluster.endpoint(pods[2].metadata.name) is None


async def test_dual_stack_partial_failure_rolls_back_the_ipv4_record(
    cluster: Cluster, node_agent: AgentLauncher
) -> None:
    """AI06: Dual stack partial failure rolls back the IPv4 record."""
    node = await cluster.node()
    v4 = await cluster.pool(subnet="10.76.0.0/24", ips=[span("10.76.0.2", 8)])
    v6 = await cluster.pool(subnet="fd00:76::/64", ips=["fd00:76::2"])
    holder, victim = await cluster.pod(node), await cluster.pod(node)
    async with node_agent(node, v4, v6) as agent:
        await agent.service.add(cni_request("ADD", holder, default_ipv4_ippool=[v4], default_ipv6_ippool=[v6]))
        with pytest.raises(CniError) as refused:
            await agent.service.add(cni_request("ADD", victim, default_ipv4_ippool=[v4], default_ipv6_ippool=[v6]))
        assert agent.book.held_by(victim.metadata.uid) == set()

    assert refused.value.msg.startswith(f"no IPv6 address for interface eth0: pool {v6} is exhausted")
    assert {r.pod_uid for r in (await cluster.records(v4)).values()} == {holder.metadata.uid}
    assert await cluster.endpoint(victim.metadata.name) is None


async def test_a_pod_that_will_not_run_again_gets_no_address(cluster: Cluster, node_agent: AgentLauncher) -> None:
    """AI07: A pod that will not run again gets no address."""
    node = await cluster.node()
    pool = await cluster.pool(subnet="10.77.0.0/24", ips=[span("10.77.0.2", 4)])
    pod = await cluster.pod(node)
    await cluster.terminate(pod.metadata.name)
    async with node_agent(node, pool) as agent:
        with pytest.raises(CniError) as refused:
            await agent.service.add(cni_request("ADD", pod, default_ipv4_ippool=[pool]))
    await cluster.force_delete(pod.metadata.name)
    assert refused.value.code == IpamCode.POD_NOT_ALIVE
    assert refused.value.msg == f"pod default/{pod.metadata.name} is terminating: no address is allocated to it"
    assert await cluster.records(pool) == {}
