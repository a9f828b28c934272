"""A churn driver shared by the benchmarks: K calls in flight per node, and the CPU the nodes' agents spent on them.

A real cluster's pods trickle onto many nodes: each node's runtime works through its own pods with a few CNI calls in
flight, not all of them at once.  :func:`run_per_node` reproduces that for any system under test: it takes, per
node, the calls to make (zero-argument coroutine functions, e.g. ``lambda: bed.cni.add(pod, config)``) and runs
each node's list with at most ``inflight`` of them at a time, every node at once.  :func:`cpu_seconds` reads what a
set of processes (the nodes' agents) used from ``/proc``, so a phase's CPU per call is two reads and a division::

    before = cpu_seconds(agent_pids)
    runs = await run_per_node({node: [lambda pod=pod: add(pod) for pod in pods] for node, pods in ...}, inflight=1)
    cpu_ms_per_add = (cpu_seconds(agent_pids) - before) * 1000 / len(pods)

Nothing here knows which system it drives: ``perf/bench_cni.py`` uses it for this project's agents,
``perf/bench_peers.py`` for each system of the head-to-head.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar, cast

from benchkit import percentile

R = TypeVar("R")
Call = Callable[[], Awaitable[R]]

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


async def run_per_node(per_node: Mapping[str, Sequence[Call[R]]], *, inflight: int | None = None
                       ) -> dict[str, list[R]]:
    """Run every node's calls, at most ``inflight`` at a time on each node (all nodes at once); results per node
    in the order of its calls.  ``inflight=None`` (or 0) starts every call of every node at once.

    Each node has ``inflight`` workers that take its next call as soon as one of theirs returns, as a runtime that
    starts a pod's sandbox whenever a slot frees.  An exception of a call propagates (wrap calls that may fail and
    should be counted instead, as :class:`~spiderpool.testbed.cni_invocation.PluginRun` does for exit codes).
    """
    if not inflight:
        gathered = await asyncio.gather(*(asyncio.gather(*(call() for call in calls)) for calls in per_node.values()))
        return {node: list(results) for node, results in zip(per_node, gathered, strict=True)}
    done = await asyncio.gather(*(_node_worked(calls, inflight) for calls in per_node.values()))
    return dict(zip(per_node, done, strict=True))


async def _node_worked(calls: Sequence[Call[R]], inflight: int) -> list[R]:
    """One node: ``inflight`` workers drain its calls in order; results by the call's index."""
    results: list[R | None] = [None] * len(calls)
    following = iter(range(len(calls)))

    async def worker() -> None:
        for index in following:  # one shared iterator: each index is taken by exactly one worker
            results[index] = await calls[index]()

    await asyncio.gather(*(worker() for _ in range(min(inflight, len(calls)))))
    return cast(list[R], results)  # every index was filled, or gather raised


def by_round_robin(items: Sequence[R], nodes: Sequence[str]) -> dict[str, list[R]]:
    """``items`` dealt to ``nodes`` in turn (item i to node i mod n): how the churn benchmarks bind pods."""
    dealt: dict[str, list[R]] = {node: [] for node in nodes}
    for index, item in enumerate(items):
        dealt[nodes[index % len(nodes)]].append(item)
    return dealt


def cpu_seconds(pids: Iterable[int]) -> float:
    """User plus system CPU seconds the processes ``pids`` have used so far (every thread; a gone process counts 0).

    Read from ``/proc/<pid>/stat`` (fields 14 and 15, in clock ticks); reaped children are not included, which is
    right for agents that do their work in-process.
    """
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": the comm may contain spaces
        total += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of the whole line
    return total / _TICKS_PER_SECOND


def latency_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50 and p99 (nearest rank) of call durations in milliseconds; zeros for no calls."""
    if not seconds:
        return {"p50_ms": 0.0, "p99_ms": 0.0}
    values = list(seconds)
    return {"p50_ms": round(percentile(values, 0.50) * 1000, 3), "p99_ms": round(percentile(values, 0.99) * 1000, 3)}
