"""The agent through its unix socket: the real CNI executable, upstream's agent API, the health and metrics ports."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import yaml
from agent_support import AgentLauncher, Cluster, agent_config, eventually, netconf, run_plugin, span, wait_for_pools

from spiderpool.agent.daemon import Agent
from spiderpool.core.cni_types import CniCode
from spiderpool.devcluster.cluster import ControlPlane
from spiderpool.k8s.client import close_api_client, make_api_client
from spiderpool.k8s.workloads import WorkloadReader

pytestmark = pytest.mark.integration


@asynccontextmanager
async def unix_client(path: Path) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(path))) as session:
        yield session


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_cni_executable_add_check_del_through_the_socket(cluster: Cluster, node_agent: AgentLauncher) -> None:
    """AS01: CNI executable ADD check DEL through the socket."""
    node = await cluster.node()
    pool = await cluster.pool(subnet="10.91.0.0/24", ips=[span("10.91.0.2", 4)], gateway="10.91.0.1")
    v6 = await cluster.pool(subnet="fd00:91::/64", ips=[span("fd00:91::2", 4)], gateway="fd00:91::1")
    pod = await cluster.pod(node)
    async with node_agent(node, pool, v6) as agent:
        path = agent.config.socket_path
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        config = netconf(path, version="0.3.1", default_ipv4_ippool=[pool], default_ipv6_ippool=[v6])
        added = await run_plugin("ADD", config, pod=pod)
        assert added.exit_code == 0, added.stdout + added.stderr
        assert added.json() == {
            "cniVersion": "0.3.1",
            "ips": [{"version": "4", "address": "10.91.0.2/24", "gateway": "10.91.0.1"},
                    {"version": "6", "address": "fd00:91::2/64", "gateway": "fd00:91::1"}],
            "routes": [{"dst": "0.0.0.0/0", "gw": "10.91.0.1"}, {"dst": "::/0", "gw": "fd00:91::1"}],
        }
        again = await run_plugin("ADD", {**config, "cniVersion": "1.0.0"}, pod=pod)
        assert again.json()["ips"][0] == {"address": "10.91.0.2/24", "gateway": "10.91.0.1"}
        # CHECK as macvlan sends it: its own interface list, ips pointing at it.
        prev = {**again.json(), "interfaces": [{"name": "eth0"}]}
        prev["ips"] = [{**ip, "interface": 0} for ip in prev["ips"]]
        check_config = {**config, "cniVersion": "1.0.0", "prevResult": prev}
        checked = await run_plugin("CHECK", check_config, pod=pod)
        assert (checked.exit_code, checked.stdout) == (0, b"")
        prev["ips"][0]["address"] = "10.91.0.3/24"
        mismatch = await run_plugin("CHECK", check_config, pod=pod)
        assert (mismatch.exit_code, mismatch.json()["code"]) == (1, 100)
        await cluster.terminate(pod.metadata.name)
        for _ in range(2):
            deleted = await run_plugin("DEL", config, pod=pod)
            assert (deleted.exit_code, deleted.stdout) == (0, b"")
        assert await cluster.records(pool) == {}
        assert await cluster.records(v6) == {}
        status = await run_plugin("STATUS", {**config, "cniVersion": "1.1.0"})
        assert (status.exit_code, status.stdout) == (0, b"")
    await cluster.force_delete(pod.metadata.name)


async def test_every_pool_exhausted_is_a_clear_cni_error(cluster: Cluster, node_agent: AgentLauncher) -> None:
    """AS02: Every pool exhausted is a clear CNI error."""
    node = await cluster.node()
    pool = await cluster.pool(subnet="10.92.0.0/24", ips=["10.92.0.2"])
    first, second = await cluster.pod(node), await cluster.pod(node)
    async with node_agent(node, pool) as agent:
        config = netconf(agent.config.socket_path, default_ipv4_ippool=[pool])
        assert (await run_plugin("ADD", config, pod=first)).exit_code == 0
        refused = await run_plugin("ADD", config, pod=second)
    assert refused.exit_code == 1
    assert refused.json() == {
        "cniVersion": "1.0.0", "code": 102,
        "msg": f"no IPv4 address for interface eth0: pool {pool} is exhausted (every address is allocated, "
               "excluded or reserved)"}


async def test_upstream_agent_api(cluster: Cluster, node_agent: AgentLauncher) -> None:
    """AS03: Upstream agent API."""
    node = await cluster.node()
    pool = await cluster.pool(subnet="10.93.0.0/24", ips=[span("10.93.0.2", 4)], gateway="10.93.0.1")
    pod = await cluster.pod(node)
    name, uid = pod.metadata.name, pod.metadata.uid
    args = {"containerID": "c1", "ifName": "eth0", "netNamespace": "/var/run/netns/x", "podNamespace": "default",
            "podName": name, "podUID": uid, "defaultIPv4IPPool": [pool]}
    async with node_agent(node, pool) as agent, unix_client(agent.config.socket_path) as http:
        healthy = await http.get("http://agent/v1/ipam/healthy")
        assert healthy.status == 200
        missing = await http.post("http://agent/v1/ipam/ip", json={**args, "podUID": ""})
        assert (missing.status, await missing.json()) == (
            422, "podUID in body is required (a non-empty string), got ''")
        added = await http.post("http://agent/v1/ipam/ip", json=args)
        assert added.status == 200
        assert await added.json() == {
            "ips": [{"version": 4, "address": "10.93.0.2/24", "nic": "eth0", "ipPool": pool, "vlan": 0,
                     "gateway": "10.93.0.1"}],
            "routes": [{"ifName": "eth0", "dst": "0.0.0.0/0", "gw": "10.93.0.1"}],
            "dns": {},
        }
        endpoint = await http.get("http://agent/v1/workloadendpoint", params={"podNamespace": "default",
                                                                               "podName": name})
        assert await endpoint.json() == {
            "podNamespace": "default", "podName": name, "podUID": uid, "node": node,
            "interfaces": [{"interface": "eth0", "ipv4": "10.93.0.2/24", "vlan": 0, "ipv4Pool": pool,
                            "ipv4Gateway": "10.93.0.1"}]}
        absent = await http.get("http://agent/v1/workloadendpoint", params={"podNamespace": "default",
                                                                             "podName": "nobody"})
        assert absent.status == 404
        assert (await http.get("http://agent/v1/workloadendpoint")).status == 400
        # The pod is alive: DELETE /v1/ipam/ip keeps it (sandbox re-creation); the conflict batch release does not.
        kept = await http.delete("http://agent/v1/ipam/ip", json=args)
        assert kept.status == 200
        assert set(await cluster.records(pool)) == {"10.93.0.2"}
        batch = await http.delete("http://agent/v1/ipam/ips", json={**args, "isReleaseConflictIPs": True})
        assert batch.status == 200
        assert await cluster.records(pool) == {}
        assert await cluster.endpoint(name) is None


async def test_health_and_metrics_listeners(control_plane: ControlPlane, cluster: Cluster, socket_dir: Path) -> None:
    """AS04: health probes answer 200 once the pools are synced; after one ADD the metrics count one allocation,
    its duration in exactly the histogram buckets at or above it, and the pool's sizes."""
    node = await cluster.node()
    pool = await cluster.pool(subnet="10.94.0.0/24", ips=[span("10.94.0.2", 10)])
    pod = await cluster.pod(node)
    health_port, metrics_port = free_port(), free_port()
    config = replace(agent_config(control_plane, node, socket_dir / "agent.sock"), health_port=health_port,
                     metrics_port=metrics_port)
    async with Agent(config, bind_host="127.0.0.1") as agent, aiohttp.ClientSession() as http:
        await wait_for_pools(agent, pool)
        for probe in ("startup", "readiness", "liveness"):
            answer = await http.get(f"http://127.0.0.1:{health_port}/v1/runtime/{probe}")
            assert answer.status == 200, probe
        added = await run_plugin("ADD", netconf(config.socket_path, default_ipv4_ippool=[pool]), pod=pod)
        assert added.exit_code == 0
        text = await (await http.get(f"http://127.0.0.1:{metrics_port}/metrics")).text()
    samples = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
               if line and not line.startswith("#")}
    assert samples["spiderpool_ipam_allocation_counts_total"] == 1
    assert samples["spiderpool_ipam_allocation_failure_counts_total"] == 0
    assert samples["spiderpool_ipam_allocation_duration_seconds_count"] == 1
    # One observation of ``_sum`` seconds: exactly the buckets whose bound is at least that hold it.
    took = samples["spiderpool_ipam_allocation_duration_seconds_sum"]
    assert took > 0
    prefix = 'spiderpool_ipam_allocation_duration_seconds_bucket{le="'
    buckets = {key[len(prefix):-2]: count for key, count in samples.items() if key.startswith(prefix)}
    assert buckets["+Inf"] == 1
    assert len(buckets) > 2
    assert {bound: count for bound, count in buckets.items() if bound != "+Inf"} == {
        bound: (1 if float(bound) >= took else 0) for bound in buckets if bound != "+Inf"
    }
    assert samples[f'spiderpool_ippool_total_ip_counts{{pool="{pool}"}}'] == 10
    assert samples[f'spiderpool_ippool_allocated_ip_counts{{pool="{pool}"}}'] == 1
    assert samples["spiderpool_status_writer_writes_total"] >= 1
    assert "spiderpool_ipam_allocation_update_ippool_conflict_counts_total" in samples
    assert "spiderpool_ipam_release_err_retries_exhausted_counts_total" in samples


async def test_not_ready_until_the_caches_sync(control_plane: ControlPlane, socket_dir: Path) -> None:
    """AS05: Against an API server that does not answer: STATUS is 50, ADD is "try again", healthy is 500."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead_port = closed.getsockname()[1]
    kubeconfig: Any = yaml.safe_load(control_plane.kubeconfig.read_text())
    for entry in kubeconfig["clusters"]:
        entry["cluster"]["server"] = f"https://127.0.0.1:{dead_port}"
    dead = socket_dir / "kubeconfig"
    dead.write_text(yaml.safe_dump(kubeconfig))
    path = socket_dir / "agent.sock"
    config = replace(agent_config(control_plane, "node-x", path), kubeconfig=dead)
    starting = asyncio.create_task(Agent(config, sync_timeout=30).start())
    try:
        await eventually(path.exists)
        status = await run_plugin("STATUS", netconf(path, version="1.1.0"))
        assert status.json() == {
            "cniVersion": "1.1.0", "code": CniCode.NOT_AVAILABLE, "msg": "spiderpool agent not ready",
            "details": "the agent's caches of pools, endpoints and pods have not synced yet"}
        async with unix_client(path) as http:
            healthy = await http.get("http://agent/v1/ipam/healthy")
            assert healthy.status == 500
            body = {"containerID": "c", "ifName": "eth0", "netNamespace": "/n", "podNamespace": "default",
                    "podName": "p", "podUID": "u"}
            add = await http.post("http://agent/v1/ipam/ip", data=orjson.dumps(body))
            assert (add.status, await add.json()) == (
                500, "spiderpool agent not ready: the agent's caches of pools, endpoints and pods have not synced yet")
    finally:
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starting
    # What the readiness probe asks once the agent runs: the dead server is unreachable, the real one is not.
    for kubeconfig, expected in ((dead, False), (control_plane.kubeconfig, True)):
        client = await make_api_client(kubeconfig=kubeconfig)
        try:
            assert await WorkloadReader(client).reachable(probe_seconds=2) is expected
        finally:
            await close_api_client(client)
