"""The churn driver of the benchmarks (``perf/inflight.py``): K calls in flight per node, CPU from /proc."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Awaitable, Callable

import pytest
from inflight import by_round_robin, cpu_seconds, latency_ms, run_per_node


class Crowd:
    """Calls in flight over all nodes; ``full`` is set once ``target`` of them are in flight together."""

    def __init__(self, target: int) -> None:
        self.now, self.target = 0, target
        self.full = asyncio.Event()

    def enter(self) -> None:
        self.now += 1
        if self.now >= self.target:
            self.full.set()


class Node:
    """Counts the calls of one node in flight and remembers the highest count; calls finish when released."""

    def __init__(self, crowd: Crowd) -> None:
        self.crowd = crowd
        self.now = 0
        self.most = 0
        self.started: list[int] = []

    def call(self, index: int, gate: asyncio.Event) -> Callable[[], Awaitable[int]]:
        async def run() -> int:
            self.now += 1
            self.most = max(self.most, self.now)
            self.started.append(index)
            self.crowd.enter()
            await gate.wait()
            self.now -= 1
            return index * 10

        return run


async def test_each_node_has_at_most_k_calls_in_flight_and_uses_all_k() -> None:
    """KIF01: with inflight=K every node keeps exactly K calls going until its list runs short; results in order."""
    gate, crowd = asyncio.Event(), Crowd(3 + 2 + 3)
    nodes = {name: Node(crowd) for name in ("a", "b", "c")}
    lists = {"a": 7, "b": 2, "c": 5}
    work = {name: [nodes[name].call(i, gate) for i in range(count)] for name, count in lists.items()}
    running = asyncio.create_task(run_per_node(work, inflight=3))
    await crowd.full.wait()
    gate.set()
    results = await running
    assert results == {name: [i * 10 for i in range(count)] for name, count in lists.items()}
    assert {name: node.most for name, node in nodes.items()} == {"a": 3, "b": 2, "c": 3}
    assert nodes["a"].started == sorted(nodes["a"].started)  # a node takes its calls in order


async def test_without_a_bound_every_call_starts_at_once() -> None:
    """KIF02: inflight=None starts every call of every node before any returns (the old churn)."""
    gate, crowd = asyncio.Event(), Crowd(12)
    nodes = {name: Node(crowd) for name in ("a", "b")}
    work = {name: [nodes[name].call(i, gate) for i in range(6)] for name in nodes}
    running = asyncio.create_task(run_per_node(work, inflight=None))
    await crowd.full.wait()
    gate.set()
    assert await running == {name: [i * 10 for i in range(6)] for name in nodes}
    assert {node.most for node in nodes.values()} == {6}


async def test_one_in_flight_runs_a_node_strictly_in_sequence() -> None:
    """KIF03: inflight=1 never overlaps two calls of one node, while other nodes run alongside."""
    overlap: Counter[str] = Counter()
    active: Counter[str] = Counter()

    def call(node: str) -> Callable[[], Awaitable[str]]:
        async def run() -> str:
            active[node] += 1
            overlap[node] = max(overlap[node], active[node])
            await asyncio.sleep(0)
            active[node] -= 1
            return node

        return run

    work = {node: [call(node) for _ in range(4)] for node in ("x", "y")}
    assert await run_per_node(work, inflight=1) == {"x": ["x"] * 4, "y": ["y"] * 4}
    assert overlap == Counter({"x": 1, "y": 1})


async def test_a_failing_call_propagates() -> None:
    """KIF04: an exception of a call is the driver's exception, not a silently missing result."""

    async def boom() -> int:
        raise RuntimeError("agent down")

    async def fine() -> int:
        return 1

    with pytest.raises(RuntimeError, match="agent down"):
        await run_per_node({"a": [fine, boom, fine]}, inflight=2)


def test_round_robin_deals_in_turn() -> None:
    """KIF05: item i goes to node i mod n, as the churn benchmarks bind their pods."""
    assert by_round_robin(list(range(7)), ["n0", "n1", "n2"]) == {"n0": [0, 3, 6], "n1": [1, 4], "n2": [2, 5]}


def test_cpu_seconds_counts_this_process_and_grows_with_work() -> None:
    """KIF06: /proc CPU of this process matches os.times() to a tick, grows after work, a gone pid counts 0."""
    times = os.times()
    measured = cpu_seconds([os.getpid()])
    assert abs(measured - (times.user + times.system)) <= 0.05
    spent = measured
    while cpu_seconds([os.getpid()]) <= spent:  # burn CPU until a clock tick is seen: a condition, not a duration
        sum(range(10_000))
    assert cpu_seconds([os.getpid(), 2**22 + 7]) > spent  # pid above pid_max: no such process


def test_latency_summary_in_milliseconds() -> None:
    """KIF07: p50/p99 by nearest rank in ms; an empty phase reports zeros instead of failing."""
    assert latency_ms([0.001 * i for i in range(1, 101)]) == {"p50_ms": 50.0, "p99_ms": 99.0}
    assert latency_ms([]) == {"p50_ms": 0.0, "p99_ms": 0.0}
