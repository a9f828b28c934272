"""The agent as processes and as rivals: ``python -m spiderpool.agent`` killed mid-flight, two nodes on one pool."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from agent_support import AgentLauncher, Cluster, cni_request, netconf, run_plugin, span
from cni_process import PluginRun
from kubernetes_asyncio.client import V1Pod

from spiderpool.core.cni_types import CniError
from spiderpool.devcluster.cluster import ControlPlane
from spiderpool.devcluster.ports import free_port

pytestmark = pytest.mark.integration


class AgentProcess:
    """``python -m spiderpool.agent run`` for one node, its log in ``log``."""

    def __init__(self, control_plane: ControlPlane, node: str, socket: Path, config_dir: Path,
                 *, health_port: int = 0) -> None:
        self.argv = [sys.executable, "-m", "spiderpool.agent", "run", "--kubeconfig", str(control_plane.kubeconfig),
                     "--node-name", node, "--socket", str(socket), "--config-dir", str(config_dir),
                     "--health-port", str(health_port), "--metrics-port", "0", "--log-level", "debug"]
        self.socket = socket
        self.health_port = health_port
        self.log = config_dir / "agent.log"
        self.process: asyncio.subprocess.Process | None = None

    async def launch(self) -> asyncio.subprocess.Process:
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(*self.argv, stdout=log, stderr=log)
        return self.process

    async def readiness(self) -> tuple[int, str]:
        """Status and body of the TCP readiness probe (what the kubelet sees)."""
        url = f"http://127.0.0.1:{self.health_port}/v1/runtime/readiness"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return response.status, await response.text()

    async def start(self) -> None:
        await self.launch()
        assert self.process is not None
        config = netconf(self.socket, version="1.1.0")
        for _ in range(600):
            if (await run_plugin("STATUS", config)).exit_code == 0:
                return
            assert self.process.returncode is None, self.log.read_text()[-3000:]
            await asyncio.sleep(0.1)
        raise AssertionError(f"the agent did not become ready: {self.log.read_text()[-3000:]}")

    async def signal(self, signum: int) -> int:
        assert self.process is not None
        self.process.send_signal(signum)
        async with asyncio.timeout(30):
            return await self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            os.kill(self.process.pid, signal.SIGKILL)


@pytest.fixture
def processes() -> Iterator[list[AgentProcess]]:
    started: list[AgentProcess] = []
    yield started
    for process in started:
        process.stop()


async def test_killed_agent_restarts_and_retried_adds_find_their_records(
    control_plane: ControlPlane, cluster: Cluster, socket_dir: Path, processes: list[AgentProcess]
) -> None:
    """AP01: Killed agent restarts and retried adds find their records."""
    node = await cluster.node()
    v4 = await cluster.pool(subnet="10.101.0.0/24", ips=[span("10.101.0.2", 50)])
    v6 = await cluster.pool(subnet="fd00:101::/64", ips=[span("fd00:101::2", 30)])
    (socket_dir / "conf.yml").write_text("enableIPv4: true\nenableIPv6: false\nenableStatefulSet: true\n")
    agent = AgentProcess(control_plane, node, socket_dir / "agent.sock", socket_dir)
    processes.append(agent)
    pods = [await cluster.pod(node) for _ in range(40)]
    config = netconf(agent.socket, default_ipv4_ippool=[v4], default_ipv6_ippool=[v6])
    await agent.start()

    answered = await asyncio.gather(*(run_plugin("ADD", config, pod=pod) for pod in pods[:10]))
    assert all(run.exit_code == 0 for run in answered), [run.stdout for run in answered if run.exit_code]
    # Frozen, the agent cannot answer: the next ADDs are certainly in flight (connected or connecting) when it is
    # killed. (Killing it after the first answer was a race: its group commit answered all 40 at once.)
    assert agent.process is not None
    agent.process.send_signal(signal.SIGSTOP)
    in_flight = [asyncio.create_task(run_plugin("ADD", config, pod=pod)) for pod in pods[10:]]
    assert await agent.signal(signal.SIGKILL) == -signal.SIGKILL
    lost = await asyncio.gather(*in_flight)
    assert all(run.exit_code != 0 and "code" in run.json() for run in lost), [run.stdout for run in lost]
    await agent.start()
    retried: list[PluginRun] = [await run_plugin("ADD", config, pod=pod) for pod in pods]

    assert all(run.exit_code == 0 for run in retried), [run.stdout for run in retried if run.exit_code]
    returned = {pod.metadata.uid: run.json()["ips"] for pod, run in zip(pods, retried, strict=True)}
    assert all(len(ips) == 1 for ips in returned.values())  # enableIPv6: false in conf.yml
    records = await cluster.records(v4)
    assert {ip: record.pod_uid for ip, record in records.items()} == {
        ips[0]["address"].split("/")[0]: uid for uid, ips in returned.items()}  # one record per pod, no leak
    assert await cluster.records(v6) == {}
    assert await agent.signal(signal.SIGTERM) == 0  # graceful stop


async def _add_all(agent_service: object, pods: list[V1Pod], pool: str) -> list[str | CniError]:
    from spiderpool.agent.ipam import IpamService

    assert isinstance(agent_service, IpamService)

    async def one(pod: V1Pod) -> str | CniError:
        try:
            result = await agent_service.add(cni_request("ADD", pod, default_ipv4_ippool=[pool]))
        except CniError as error:
            return error
        return str(result.ips[0].address.ip)

    return list(await asyncio.gather(*(one(pod) for pod in pods)))


async def test_two_nodes_racing_on_one_small_pool_never_share_an_address(
    cluster: Cluster, node_agent: AgentLauncher
) -> None:
    """AP02: Two nodes racing on one small pool never share an address."""
    nodes = [await cluster.node(), await cluster.node()]
    pool = await cluster.pool(subnet="10.102.0.0/24", ips=[span("10.102.0.2", 40)])
    pods = {node: [await cluster.pod(node) for _ in range(21)] for node in nodes}
    # A short linger holds each node's first batch until both have chosen from the same view: they must collide.
    async with (node_agent(nodes[0], pool, socket="a.sock", writer_linger=0.05) as first,
                node_agent(nodes[1], pool, socket="b.sock", writer_linger=0.05) as second):
        outcomes = await asyncio.gather(_add_all(first.service, pods[nodes[0]], pool),
                                        _add_all(second.service, pods[nodes[1]], pool))
        conflicts = first.writer.stats.conflicts + second.writer.stats.conflicts

    addresses = [outcome for results in outcomes for outcome in results if isinstance(outcome, str)]
    refused = [outcome for results in outcomes for outcome in results if isinstance(outcome, CniError)]
    assert len(addresses) == 40
    assert len(set(addresses)) == 40  # no duplicate
    assert len(refused) == 2
    assert all("is exhausted" in error.msg for error in refused)
    records = await cluster.records(pool)
    assert sorted(records) == sorted(addresses)
    all_pods = [pod for node_pods in pods.values() for pod in node_pods]
    assert len({record.pod_uid for record in records.values()}) == 40
    assert {record.pod_uid for record in records.values()} <= {pod.metadata.uid for pod in all_pods}
    assert conflicts >= 1  # the two nodes really raced for the same addresses


async def test_skl01_a_second_agent_on_the_same_socket_refuses_to_start(
    control_plane: ControlPlane, cluster: Cluster, socket_dir: Path, processes: list[AgentProcess]
) -> None:
    """SKL01: a second agent process started on the socket path of a running one exits 1 naming the path (it used to
    unlink the first one's socket and bind its own); the first keeps serving CNI and stays Ready; once its socket
    file is removed behind its back, the first one's readiness probe says so instead of answering 200."""
    node = await cluster.node()
    socket = socket_dir / "agent.sock"
    (socket_dir / "first").mkdir()
    (socket_dir / "second").mkdir()
    first = AgentProcess(control_plane, node, socket, socket_dir / "first", health_port=free_port())
    second = AgentProcess(control_plane, node, socket, socket_dir / "second", health_port=free_port())
    processes.extend([first, second])
    await first.start()

    rival = await second.launch()
    for _ in range(1200):  # 60 s as a safety net: it either exits or (the old behaviour) becomes ready
        if rival.returncode is not None or "ready on" in second.log.read_text():
            break
        await asyncio.sleep(0.05)
    status_after = await run_plugin("STATUS", netconf(socket, version="1.1.0"))
    ready_after = await first.readiness()
    socket.unlink()
    ready_without_socket = await first.readiness()

    assert rival.returncode == 1, second.log.read_text()[-2000:]
    assert first.process is not None
    assert f"{socket} is in use by another spiderpool agent (pid {first.process.pid})" in second.log.read_text()
    assert status_after.exit_code == 0, status_after.stdout  # the first agent still answers on the path
    assert ready_after == (200, '"ok"')
    assert ready_without_socket[0] == 500
    assert f"the CNI socket {socket} has been removed" in ready_without_socket[1]
