"""How the agent finds the pod of an ADD: the pod watch cache when it has the pod, else one direct read at once.

An ADD used to wait up to one second for the watch before reading the pod directly; the lookup's counters say which
way each lookup went, so these cases check that a miss reads at once (no waiting on the watch) without a clock.
"""

from __future__ import annotations

import pytest
from agent_support import NAMESPACE, AgentLauncher, Cluster, cni_request, eventually, span
from kubernetes_asyncio.client import ApiClient

from spiderpool.agent.pods import PodLookup
from spiderpool.k8s.bodies import Pod
from spiderpool.k8s.watch_cache import WatchCache, pod_source
from spiderpool.k8s.workloads import WorkloadReader

pytestmark = pytest.mark.integration


async def test_a_cache_miss_reads_the_pod_at_once(cluster: Cluster, api: ApiClient) -> None:
    """PK01: A pod the watch has not delivered is read directly at once (one GET, no wait on the watch)."""
    node, elsewhere = await cluster.node(), await cluster.node()
    pod = await cluster.pod(node)
    # The cache watches another node's pods: it is synced and will never deliver this pod.
    async with WatchCache[Pod](pod_source(api, node_name=elsewhere), name="pods") as cache:
        lookup = PodLookup(cache, WorkloadReader(api))
        found = await lookup.for_add(NAMESPACE, pod.metadata.name, pod.metadata.uid)
        missing = await lookup.for_add(NAMESPACE, "no-such-pod", None)
    assert found is not None
    assert found["metadata"]["uid"] == pod.metadata.uid
    assert missing is None
    assert (lookup.stats.direct_reads, lookup.stats.cache_hits) == (2, 0)
    await cluster.force_delete(pod.metadata.name)


async def test_a_pod_in_the_cache_costs_no_read(cluster: Cluster, node_agent: AgentLauncher) -> None:
    """PK02: Once the watch has delivered the pod, its ADD is served from the cache without a direct read."""
    node = await cluster.node()
    pool = await cluster.pool(subnet="10.97.0.0/24", ips=[span("10.97.0.2", 4)])
    pod = await cluster.pod(node)
    async with node_agent(node, pool) as agent:
        lookup = agent.service.context.pods
        await eventually(lambda: lookup.cached(NAMESPACE, pod.metadata.name) is not None)
        result = await agent.service.add(cni_request("ADD", pod, default_ipv4_ippool=[pool]))
        assert (lookup.stats.direct_reads, lookup.stats.cache_hits) == (0, 1)
    assert [str(ip.address) for ip in result.ips] == ["10.97.0.2/24"]
    await cluster.force_delete(pod.metadata.name)
