"""Addresses freed by another writer are free again in the agent at once (issue 9, item 1).

The agent's allocator is a cache of the pool's records.  When a record this agent knows is removed by someone else
(the controller's leak collection, or another node's agent on a shared pool), the next ADD must get the lowest free
address, planned on the freshest server object the agent knows (its watch event or its own last write, whichever is
newer), without a lost compare-and-swap race.  The pools here are larger than the demand, so a stale "used" mark
shows up as a skipped address instead of being hidden by a full pool.
"""

from __future__ import annotations

from collections.abc import Callable, Set
from pathlib import Path

import pytest
from agent_support import AgentLauncher, Cluster, cni_request, eventually, running_agent, span
from kubernetes_asyncio.client import V1Pod

from spiderpool.agent.daemon import Agent
from spiderpool.devcluster.cluster import ControlPlane
from spiderpool.k8s.bodies import SpiderIPPool
from spiderpool.k8s.status_plan import AllocateIntent, ReleaseIntent
from spiderpool.k8s.status_writer import PoolStatusWriter

pytestmark = pytest.mark.integration

CONFLICTS = "spiderpool_ipam_allocation_update_ippool_conflict_counts_total"


def _never_allocates(pool: SpiderIPPool, taken: Set[str], intent: AllocateIntent) -> str | None:
    return None


async def _add(agent: Agent, pool: str, pod: V1Pod) -> str:
    result = await agent.service.add(cni_request("ADD", pod, default_ipv4_ippool=[pool]))
    return str(result.ips[0].address.ip)


def _unrecorded(agent: Agent, pool: str, ips: list[str]) -> Callable[[], bool]:
    """Whether the agent's book has seen every record of ``ips`` go (through its watch)."""
    return lambda: all(agent.book.record(pool, ip) is None for ip in ips)


def _conflicts(agent: Agent) -> float:
    value = agent.metrics.registry.get_sample_value(CONFLICTS)
    assert value is not None, f"{CONFLICTS} is not exported"
    return value


async def test_pb01_addresses_freed_by_another_writer_are_handed_out_lowest_first(
    cluster: Cluster, node_agent: AgentLauncher
) -> None:
    """PB01: a pool of 11 with 4 in use; another writer (as leak collection does) frees two of this agent's
    records, twice over: each next ADD gets the lowest free address, and no status write of the agent loses a
    compare-and-swap race (conflict counter unchanged, no extra direct read)."""
    node = await cluster.node()
    pool = await cluster.pool(subnet="10.191.0.0/24", ips=[span("10.191.0.40", 11)], gateway="10.191.0.1")
    pods = [await cluster.pod(node) for _ in range(8)]
    collector = PoolStatusWriter(cluster.stores.ippools, redecide=_never_allocates)
    async with node_agent(node, pool) as agent:
        first = [await _add(agent, pool, pod) for pod in pods[:4]]
        assert first == ["10.191.0.40", "10.191.0.41", "10.191.0.42", "10.191.0.43"]
        conflicts, reads = _conflicts(agent), agent.writer.stats.fresh_reads
        holders = dict(zip(first, pods[:4], strict=True))
        for freed, takers in ((["10.191.0.40", "10.191.0.42"], pods[4:6]), (["10.191.0.41", "10.191.0.43"], pods[6:8])):
            for ip in freed:
                released = await collector.release(pool, ReleaseIntent(ip=ip, pod_uid=holders.pop(ip).metadata.uid))
                assert released.removed
            await eventually(_unrecorded(agent, pool, freed))
            got = [await _add(agent, pool, pod) for pod in takers]
            assert got == freed, f"freed {freed} by another writer, the next ADDs got {got}"
            holders.update(zip(got, takers, strict=True))
        assert _conflicts(agent) - conflicts == 0
        assert agent.writer.stats.fresh_reads == reads
    await collector.close()
    assert set(await cluster.records(pool)) == set(holders)


async def test_pb02_release_by_another_node_agent_is_seen_by_this_one(
    cluster: Cluster, control_plane: ControlPlane, socket_dir: Path
) -> None:
    """PB02: two nodes' agents share a pool of 11: node B's pod takes an address and is deleted (its agent
    releases the record) after node A wrote on top of it; node A's next ADDs get the freed address first, then
    the next lowest, and node A loses no compare-and-swap race doing so."""
    node_a, node_b = await cluster.node(), await cluster.node()
    pool = await cluster.pool(subnet="10.192.0.0/24", ips=[span("10.192.0.40", 11)], gateway="10.192.0.1")
    pods_a = [await cluster.pod(node_a) for _ in range(4)]
    pod_b = await cluster.pod(node_b)
    async with (running_agent(control_plane, node_a, socket_dir / "a.sock", pools=[pool]) as agent_a,
                running_agent(control_plane, node_b, socket_dir / "b.sock", pools=[pool]) as agent_b):
        assert await _add(agent_b, pool, pod_b) == "10.192.0.40"
        await eventually(lambda: agent_a.book.record(pool, "10.192.0.40") is not None)
        assert [await _add(agent_a, pool, pod) for pod in pods_a[:2]] == ["10.192.0.41", "10.192.0.42"]
        conflicts, reads = _conflicts(agent_a), agent_a.writer.stats.fresh_reads
        await cluster.terminate(pod_b.metadata.name)
        await agent_b.service.delete(cni_request("DEL", pod_b, default_ipv4_ippool=[pool]))
        await eventually(lambda: agent_a.book.record(pool, "10.192.0.40") is None)
        got = [await _add(agent_a, pool, pod) for pod in pods_a[2:]]
        assert got == ["10.192.0.40", "10.192.0.43"], f"node B freed 10.192.0.40; node A's next ADDs got {got}"
        assert _conflicts(agent_a) - conflicts == 0
        assert agent_a.writer.stats.fresh_reads == reads
    await cluster.force_delete(pod_b.metadata.name)
    assert set(await cluster.records(pool)) == {"10.192.0.40", "10.192.0.41", "10.192.0.42", "10.192.0.43"}
