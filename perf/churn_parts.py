"""Parts of a churn that ``perf/bench_cni.py`` and ``perf/bench_peers.py`` share: this project's nodes with an agent
configuration, the agents' process ids, and a phase's API writes per pod.

(The K-in-flight driver and the CPU reading are ``perf/inflight.py``.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Final

from spiderpool.testbed.agent_process import AgentProcess
from spiderpool.testbed.members import SimulatedNode
from spiderpool.testbed.request_counting import RequestCounts, breakdown, conflicts, writes
from spiderpool.testbed.testbed import Testbed

LEAN_CONF: Final = "enableStatelessSpiderEndpoint: false\n"
FULL_CONF: Final = "enableStatelessSpiderEndpoint: true\n"


def phase_writes(delta: RequestCounts, pods: int) -> dict[str, Any]:
    """Write requests of a phase, per pod, with the lost races (409 Conflict) also counted apart."""
    total, lost = writes(delta), conflicts(delta)
    return {
        "writes": total,
        "writes_per_pod": round(total / pods, 4),
        "pool_writes": writes(delta, resource="spiderippools"),
        "endpoint_writes": writes(delta, resource="spiderendpoints"),
        "conflicts_409": lost,
        "conflicts_409_per_pod": round(lost / pods, 4),
        "writes_per_pod_without_409": round((total - lost) / pods, 4),
        "by_request": breakdown(delta),
    }


async def configured_node(bed: Testbed, name: str, *, lean: bool) -> SimulatedNode:
    """A node whose agent reads a ``conf.yml`` of ``enableStatelessSpiderEndpoint: false`` (lean) or ``true``."""
    conf_dir = bed.run_dir / ("conf-lean" if lean else "conf-full")
    conf_dir.mkdir(exist_ok=True)
    (conf_dir / "conf.yml").write_text(LEAN_CONF if lean else FULL_CONF)
    node = await bed.add_node(name, start_agent=False)
    assert node.agent is not None
    node.agent = AgentProcess(replace(node.agent.options, config_dir=conf_dir))
    await asyncio.to_thread(node.agent.start)
    return node


async def configured_nodes(bed: Testbed, names: Sequence[str], *, lean: bool) -> list[SimulatedNode]:
    return list(await asyncio.gather(*(configured_node(bed, name, lean=lean) for name in names)))


def agent_pids(nodes: Sequence[SimulatedNode]) -> list[int]:
    return [pid for node in nodes if node.agent is not None and (pid := node.agent.pid) is not None]
