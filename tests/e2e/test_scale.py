"""Many parallel ADDs on several nodes against one exactly-sized pool, and an agent SIGKILLed in the middle of them.

The bulk execs our ``spiderpool`` executable directly (what macvlan would exec); a sample of every node's pods goes
through Debian's macvlan, whose addresses are then read back from the pods' namespaces.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from spiderpool.testbed.cni_invocation import PluginRun
from spiderpool.testbed.members import NicAttachment, SimulatedNode, SimulatedPod
from spiderpool.testbed.testbed import Testbed

from .support import Pools, audit, interface, read_pool, result_ips, unique

pytestmark = pytest.mark.e2e

MACVLAN_SAMPLE = 10  # pods per node through macvlan; the rest exec the IPAM executable directly


async def make_pods(bed: Testbed, node: SimulatedNode, *, count: int, namespace: str) -> list[SimulatedPod]:
    names = [f"{node.name}-{index}" for index in range(count)]
    return list(await asyncio.gather(*(bed.create_pod(node, name=name, namespace=namespace) for name in names)))


async def add_all(bed: Testbed, pods: Sequence[SimulatedPod], config: dict[str, Any]) -> list[PluginRun]:
    """ADD every pod at once: the first MACVLAN_SAMPLE through macvlan, the others straight to the executable."""
    return list(
        await asyncio.gather(
            *(bed.cni.add(pod, config, direct_ipam=index >= MACVLAN_SAMPLE) for index, pod in enumerate(pods))
        )
    )


def first_address(run: PluginRun) -> str:
    return result_ips(run.json())[0].split("/")[0]


async def test_s01_four_nodes_by_one_hundred_parallel_adds(bed: Testbed, namespace: str, pools: Pools) -> None:
    """S01: 4 nodes (4 agents) x 100 parallel ADDs on one pool of exactly 400 addresses: all succeed, 400 distinct
    addresses, each recorded once with its pod's UID and indexed by its endpoint; the pool is full."""
    pool = unique("s01-v4")
    await pools.create(pool, subnet="10.250.40.0/23", ips=["10.250.40.1-10.250.41.144"])  # exactly 400
    nodes = list(await asyncio.gather(*(bed.add_node(unique(f"{bed.prefix}-s01n{i}")) for i in range(4))))
    per_node = [await make_pods(bed, node, count=100, namespace=namespace) for node in nodes]
    configs = [bed.macvlan(node, network="s01-net", default_ipv4_ippool=[pool]) for node in nodes]

    batches = await asyncio.gather(*(add_all(bed, p, c) for p, c in zip(per_node, configs, strict=True)))

    runs = [run for batch in batches for run in batch]
    failed = [run.describe() for run in runs if not run.ok]
    assert failed == [], f"{len(failed)} of 400 ADDs failed, e.g. {failed[:3]}"
    assert len({first_address(run) for run in runs}) == 400
    for pods, batch in zip(per_node, batches, strict=True):
        sample = zip(pods[:MACVLAN_SAMPLE], batch[:MACVLAN_SAMPLE], strict=True)
        pairs = [(str(interface(pod).addresses[0].ip), first_address(run)) for pod, run in sample]
        assert all(held == given for held, given in pairs), pairs
    status = (await read_pool(bed, pool))["status"]
    assert status["allocatedIPCount"] == 400
    verdict = await audit(bed, [pool], namespace=namespace)
    assert verdict.clean, verdict.describe()
    assert verdict.record_count() == 400


async def staggered_add(
    bed: Testbed, pod: SimulatedPod, config: dict[str, Any], *, delay: float, direct: bool
) -> PluginRun:
    """An ADD that starts ``delay`` seconds late: spread over 0.4 s, the kill lands while ADDs are still arriving,
    some in flight and some not yet started, however fast the agent answers (group commit answers many at once)."""
    await asyncio.sleep(delay)
    return await bed.cni.add(pod, config, direct_ipam=direct)


async def wait_for_completions(tasks: Sequence[asyncio.Task[PluginRun]], count: int) -> None:
    for finished, _ in enumerate(asyncio.as_completed(tasks), start=1):
        await _
        if finished >= count:
            return


async def retry_like_kubelet(bed: Testbed, pod: SimulatedPod, config: dict[str, Any], *, direct: bool) -> PluginRun:
    """A failed sandbox: DEL it, then ADD in a new sandbox (namespace, container id) of the same pod; up to 3 times."""
    run = PluginRun(1, b"", b"not tried", 0.0)
    for _ in range(3):
        await bed.replace_sandbox(pod, failed=[NicAttachment(config, "eth0", direct_ipam=direct)])
        run = await bed.cni.add(pod, config, direct_ipam=direct)
        if run.ok:
            return run
        await asyncio.sleep(0.5)
    return run


async def test_s02_agent_sigkilled_amid_parallel_adds(bed: Testbed, namespace: str, pools: Pools) -> None:
    """S02: the agent is SIGKILLed while 100 parallel ADDs run against a pool of exactly 100 addresses; restarted,
    the failed ADDs retried as a kubelet would (DEL, new sandbox, ADD): every pod gets an address, every address
    belongs to exactly one live pod, no record leaked or lost its endpoint (upstream #2517 not reproducible)."""
    pool = unique("s02-v4")
    await pools.create(pool, subnet="10.250.42.0/24", ips=["10.250.42.1-10.250.42.100"])  # exactly 100
    node = await bed.add_node(unique(f"{bed.prefix}-s02"))
    assert node.agent is not None
    config = bed.macvlan(node, network="s02-net", default_ipv4_ippool=[pool])
    pods = await make_pods(bed, node, count=100, namespace=namespace)
    tasks = [
        asyncio.create_task(staggered_add(bed, pod, config, delay=index * 0.004, direct=index >= MACVLAN_SAMPLE))
        for index, pod in enumerate(pods)
    ]

    await wait_for_completions(tasks, 25)
    node.agent.kill()
    first_runs = await asyncio.gather(*tasks)
    killed_midway = sum(not run.ok for run in first_runs)
    await asyncio.to_thread(node.agent.start)
    final = [
        run if run.ok else await retry_like_kubelet(bed, pod, config, direct=index >= MACVLAN_SAMPLE)
        for index, (pod, run) in enumerate(zip(pods, first_runs, strict=True))
    ]

    assert killed_midway > 0, "the kill came too late to interrupt any ADD; the test proved nothing"
    failed = [run.describe() for run in final if not run.ok]
    assert failed == [], f"{len(failed)} pods never got an address, e.g. {failed[:3]}"
    assert len({first_address(run) for run in final}) == 100
    verdict = await audit(bed, [pool], namespace=namespace)
    assert verdict.clean, verdict.describe()
    assert verdict.record_count() == 100
    assert {uid for uid in (pod.uid for pod in pods) if len(verdict.addresses_of(uid)) == 1} == {p.uid for p in pods}
