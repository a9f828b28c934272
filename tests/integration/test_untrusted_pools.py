"""The agent does not trust admission (issue 9, item 2): no controller, no webhook, pools created directly.

An overlapping pair of pools must never give one address to two live pods (the oldest pool owns a contested
address, on every node alike, said by a metric and an Event on the losing pool), and a pool whose addresses or
gateway leave its subnet is refused with a CNI error that names the pool and the broken rule.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest
from agent_support import (
    AgentLauncher,
    Cluster,
    cni_request,
    eventually,
    netconf,
    run_plugin,
    running_agent,
    span,
    unique,
)
from kubernetes_asyncio.client import V1Pod

from spiderpool.agent.daemon import OVERLAP_REASON, Agent
from spiderpool.core.cni_types import CniCode, CniError
from spiderpool.devcluster.cluster import ControlPlane
from spiderpool.k8s.events import EVENT_NAMESPACE

pytestmark = pytest.mark.integration

OVERLAP = "spiderpool_ippool_overlap_addresses"


async def _older_first(cluster: Cluster, a: str, b: str) -> tuple[str, str]:
    """The two pools ordered by the rule the agents apply: creationTimestamp, then name (they may share a second)."""
    objects = [await cluster.stores.ippools.get(name) for name in (a, b)]
    ordered = sorted(objects, key=lambda obj: (obj["metadata"]["creationTimestamp"], obj["metadata"]["name"]))
    return ordered[0]["metadata"]["name"], ordered[1]["metadata"]["name"]


async def _add(agent: Agent, pod: V1Pod, pools: list[str]) -> str:
    result = await agent.service.add(cni_request("ADD", pod, default_ipv4_ippool=pools))
    return str(result.ips[0].address.ip)


async def _overlap_events(cluster: Cluster, pool: str) -> list[str]:
    found = await cluster.core.list_namespaced_event(
        EVENT_NAMESPACE, field_selector=f"involvedObject.name={pool},reason={OVERLAP_REASON}")
    return [event.message for event in found.items]


async def test_pv01_overlapping_pools_never_give_one_address_to_two_pods(
    cluster: Cluster, control_plane: ControlPlane, socket_dir: Path
) -> None:
    """PV01: two SpiderIPPools list 10.193.0.45-49 both (created directly, no webhook); two nodes' agents serve 14
    concurrent ADDs, one node from the older pool only, the other from the newer pool first (which is older is
    read from the objects: created in one second, the name decides): every ADD succeeds and no address is given
    twice; the newer pool serves only what it alone lists; both agents export
    spiderpool_ippool_overlap_addresses = 5 for the newer pool, and one Warning Event on it names the owner."""
    tag = unique("pv01")
    first = await cluster.pool(subnet="10.193.0.0/24", ips=[span("10.193.0.40", 10)], gateway="10.193.0.1",
                               name=f"{tag}-a")
    second = await cluster.pool(subnet="10.193.0.0/24", ips=[span("10.193.0.45", 10)], gateway="10.193.0.1",
                                name=f"{tag}-b")
    older, newer = await _older_first(cluster, first, second)
    node_1, node_2 = await cluster.node(), await cluster.node()
    pods_1 = [await cluster.pod(node_1) for _ in range(6)]
    pods_2 = [await cluster.pod(node_2) for _ in range(8)]
    async with (running_agent(control_plane, node_1, socket_dir / "1.sock", pools=[first, second]) as agent_1,
                running_agent(control_plane, node_2, socket_dir / "2.sock", pools=[first, second]) as agent_2):
        got = await asyncio.gather(*(_add(agent_1, pod, [older]) for pod in pods_1),
                                   *(_add(agent_2, pod, [newer, older]) for pod in pods_2))
        duplicates = {ip: n for ip, n in Counter(got).items() if n > 1}
        assert not duplicates, f"addresses given to two live pods: {duplicates}"
        served_by_newer = set(await cluster.records(newer))
        alone = range(50, 55) if newer == second else range(40, 45)  # what the newer pool lists and the older not
        assert served_by_newer == {f"10.193.0.{last}" for last in alone}
        assert not served_by_newer & set(await cluster.records(older))
        for agent in (agent_1, agent_2):
            sample = agent.metrics.registry.get_sample_value
            assert sample(OVERLAP, {"pool": newer, "owner": older}) == 5
            assert sample(OVERLAP, {"pool": older, "owner": newer}) is None
        messages = await _wait_for_events(cluster, newer)
        assert (older, newer) == (first, second)  # created first, and first by name within one second
        assert len(messages) == 1, messages  # both agents decided alike and wrote the same Event
        assert f"5 addresses (10.193.0.45-10.193.0.49) belong to the older SpiderIPPool {older}" in messages[0]
        assert await _overlap_events(cluster, older) == []


async def _wait_for_events(cluster: Cluster, pool: str) -> list[str]:
    """The overlap Events of ``pool`` once there is one (the agents write them in the background)."""
    for _ in range(200):
        messages = await _overlap_events(cluster, pool)
        if messages:
            return messages
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {OVERLAP_REASON} Event on SpiderIPPool {pool} within 10 s")


async def test_pv02_an_invalid_pool_is_refused_with_its_reason(cluster: Cluster, node_agent: AgentLauncher) -> None:
    """PV02: pools created directly with ips outside spec.subnet, and with a gateway outside it: the agent serves
    neither; the CNI executable's ADD fails with code 7 (invalid configuration), and the error names the pool and
    the broken rule (before: 'IPPool ... does not exist', or worse, an address outside the subnet); a valid pool
    beside them still serves, and an invalid pool fixed in place serves at once."""
    node = await cluster.node()
    outside = await cluster.pool(subnet="10.194.0.0/24", ips=[span("10.195.0.10", 4)], gateway="10.194.0.1")
    bad_gateway = await cluster.pool(subnet="10.194.1.0/24", ips=[span("10.194.1.10", 4)], gateway="10.196.0.1")
    valid = await cluster.pool(subnet="10.194.2.0/24", ips=[span("10.194.2.10", 4)], gateway="10.194.2.1")
    pods = [await cluster.pod(node) for _ in range(4)]
    async with node_agent(node, outside, bad_gateway, valid) as agent:
        for pool, pod, field in ((outside, pods[0], "spec.ips[0]"), (bad_gateway, pods[1], "spec.gateway")):
            refused = await run_plugin("ADD", netconf(agent.config.socket_path, default_ipv4_ippool=[pool]), pod=pod)
            assert refused.exit_code == 1, refused.stdout
            error = refused.json()
            assert error["code"] == CniCode.INVALID_CONFIG
            text = f"{error['msg']} {error.get('details', '')}"
            assert f"IPPool {pool}" in text, text
            assert field in text, text
            assert "outside spec.subnet" in text, text
            assert "does not exist" not in text, text
            assert await cluster.records(pool) == {}
        assert await _add(agent, pods[2], [valid]) == "10.194.2.10"
        with pytest.raises(CniError):
            await _add(agent, pods[3], [bad_gateway])
        fixed = await cluster.stores.ippools.get(bad_gateway)
        fixed["spec"]["gateway"] = "10.194.1.1"
        await cluster.stores.ippools.replace(fixed)
        await eventually(lambda: agent.book.view(bad_gateway) is not None)
        assert await _add(agent, pods[3], [bad_gateway]) == "10.194.1.10"


async def test_pv04_an_owner_that_grows_over_held_addresses_does_not_hand_them_out(
    cluster: Cluster, node_agent: AgentLauncher
) -> None:
    """PV04: the older pool is edited (no webhook) to list the addresses the newer pool's pods already hold: it
    becomes their owner, yet hands out only what no pool records (the newer pool's held addresses stay with their
    pods); once such a pod is released, the owner hands its address out."""
    tag = unique("pv04")
    older = await cluster.pool(subnet="10.184.0.0/24", ips=[span("10.184.0.40", 5)], name=f"{tag}-a")
    newer = await cluster.pool(subnet="10.184.0.0/24", ips=[span("10.184.0.45", 5)], name=f"{tag}-b")
    node = await cluster.node()
    held = [await cluster.pod(node) for _ in range(2)]
    takers = [await cluster.pod(node) for _ in range(8)]
    late = await cluster.pod(node)
    async with node_agent(node, older, newer) as agent:
        assert [await _add(agent, pod, [newer]) for pod in held] == ["10.184.0.45", "10.184.0.46"]
        grown = await cluster.stores.ippools.get(older)
        grown["spec"]["ips"] = [span("10.184.0.40", 10)]
        await cluster.stores.ippools.replace(grown)
        await eventually(lambda: agent.metrics.registry.get_sample_value(
            OVERLAP, {"pool": newer, "owner": older}) == 5)
        got = [await _add(agent, pod, [older]) for pod in takers]
        assert got == [f"10.184.0.{last}" for last in (40, 41, 42, 43, 44, 47, 48, 49)]
        with pytest.raises(CniError):
            await _add(agent, late, [older])
        await cluster.terminate(held[0].metadata.name)
        await agent.service.delete(cni_request("DEL", held[0], default_ipv4_ippool=[newer]))
        await eventually(lambda: agent.book.record(newer, "10.184.0.45") is None)
        assert await _add(agent, late, [older]) == "10.184.0.45"
    assert not set(await cluster.records(older)) & set(await cluster.records(newer))
