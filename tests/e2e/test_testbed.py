"""The testbed itself: real macvlan sandboxes on the simulated fabric, and nothing left behind, even after SIGKILL."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from ipaddress import ip_address, ip_interface
from pathlib import Path

import pytest

from spiderpool.devcluster.cluster import ControlPlane
from spiderpool.k8s.api_errors import NotFound
from spiderpool.testbed.leftovers import RUN_ROOT
from spiderpool.testbed.netconf import host_local_ipam, macvlan_config
from spiderpool.testbed.netns import list_netns
from spiderpool.testbed.netns_state import default_gateway, interface_names, probe_tcp, read_routes
from spiderpool.testbed.testbed import Testbed

from .support import interface, result_ips

pytestmark = pytest.mark.e2e


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


async def test_t01_host_local_through_macvlan_on_two_nodes(bed: Testbed, namespace: str) -> None:
    """T01: Debian's macvlan with host-local on two nodes: addresses, routes and reachability across the fabric."""
    nodes = [await bed.add_node(f"{bed.prefix}-hl{i}", start_agent=False) for i in range(2)]
    ipam = host_local_ipam(
        data_dir=bed.run_dir / "host-local",
        ranges=[[{"subnet": "10.250.9.0/24", "gateway": "10.250.9.1"}], [{"subnet": "fd00:250:9::/64"}]],
    )
    config = macvlan_config(name="hl-net", master="ens192", ipam=ipam)
    pods = [await bed.create_pod(node, name=f"hl-{i}", namespace=namespace) for i, node in enumerate(nodes)]
    runs = [await bed.cni.add(pod, config) for pod in pods]
    assert all(run.ok for run in runs), [run.describe() for run in runs]

    for pod, run in zip(pods, runs, strict=True):
        state = interface(pod)
        assert state.kind == "macvlan"
        assert state.up
        assert sorted(map(str, state.addresses)) == sorted(result_ips(run.json()))
        assert str(default_gateway(pod.netns, version=4)) == "10.250.9.1"
        assert str(default_gateway(pod.netns, version=6)) == "fd00:250:9::1"
        assert {route.dst for route in read_routes(pod.netns, version=4)} == {"default", "10.250.9.0/24"}
        assert interface_names(pod.netns) == ["lo", "eth0"]
    other_v4 = interface(pods[1]).of_version(4)[0].ip
    other_v6 = interface(pods[1]).of_version(6)[0].ip
    assert probe_tcp(pods[0].netns, other_v4) == "answered"
    assert probe_tcp(pods[0].netns, other_v6) == "answered"
    assert probe_tcp(pods[0].netns, ip_address("10.250.9.250"), wait=0.5) != "answered"  # nobody holds that one

    deleted = await bed.remove_pod(pods[0])
    assert [run.ok for run in deleted] == [True]
    assert pods[0].netns not in list_netns(prefix=bed.prefix)
    assert ip_interface(result_ips(runs[0].json())[0]).ip == ip_interface("10.250.9.2/24").ip


def _run_dir_entries(prefix: str) -> list[str]:
    return sorted(entry.name for entry in (RUN_ROOT / prefix).iterdir()) if (RUN_ROOT / prefix).is_dir() else []


async def test_t02_close_removes_namespaces_veths_and_agents(e2e_ready: ControlPlane) -> None:
    """T02: closing a testbed removes its namespaces (and so every veth and macvlan), agents and run directory."""
    control_plane = e2e_ready
    async with Testbed(kubeconfig=control_plane.kubeconfig) as testbed:
        node = await testbed.add_node(f"{testbed.prefix}-n0")
        pod = await testbed.create_pod(node, name=f"{testbed.prefix}-pod")
        prefix, agent_pid = testbed.prefix, node.agent.pid if node.agent else None
        assert agent_pid is not None
        assert alive(agent_pid)
        assert set(list_netns(prefix=prefix)) == {f"{prefix}-fabric", node.netns, pod.netns}
        assert "ens192" in interface_names(node.netns)
    assert list_netns(prefix=prefix) == []
    assert not alive(agent_pid)
    assert not (RUN_ROOT / prefix).exists()
    assert await _pods_named(control_plane, f"{prefix}-pod") == []


async def _pods_named(control_plane: ControlPlane, name: str) -> list[str]:
    query = {"fieldSelector": f"metadata.name={name}"}
    reply = await asyncio.to_thread(control_plane.sync_api().get, "/api/v1/pods", query=query)
    return [item["metadata"]["name"] for item in reply["items"]]


_CRASHING_TESTBED = """
import asyncio, json, sys, time
from pathlib import Path
from spiderpool.testbed.testbed import Testbed

async def main():
    bed = Testbed(kubeconfig=Path(sys.argv[1]))
    await bed.start()
    node = await bed.add_node(bed.prefix + "-crash")
    await bed.create_pod(node, name=bed.prefix + "-p")
    print(json.dumps({"prefix": bed.prefix, "agent": node.agent.pid}), flush=True)
    time.sleep(600)

asyncio.run(main())
"""


async def test_t03_sigkilled_testbed_is_swept_by_the_next(e2e_ready: ControlPlane) -> None:
    """T03: a testbed process killed with SIGKILL: its agent dies with it; the next testbed removes its namespaces."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CRASHING_TESTBED, str(e2e_ready.kubeconfig), stdout=asyncio.subprocess.PIPE
    )
    try:
        assert child.stdout is not None
        started = json.loads(await asyncio.wait_for(child.stdout.readline(), 90))
        prefix, agent_pid = started["prefix"], started["agent"]
        assert len(list_netns(prefix=prefix)) == 3
    finally:
        child.kill()
        await child.wait()
    assert await asyncio.to_thread(gone_within, agent_pid, 10.0), "the agent outlived its SIGKILLed testbed"
    assert len(list_netns(prefix=prefix)) == 3  # nobody cleaned up yet ...
    assert await _pods_named(e2e_ready, f"{prefix}-p") == [f"{prefix}-p"]
    async with Testbed(kubeconfig=e2e_ready.kubeconfig):
        assert list_netns(prefix=prefix) == []  # ... the next testbed swept them on start,
        assert not (RUN_ROOT / prefix).exists()
        assert await _pods_named(e2e_ready, f"{prefix}-p") == []  # and the API objects it had made
        with pytest.raises(NotFound):
            await asyncio.to_thread(e2e_ready.sync_api().get, f"/api/v1/nodes/{prefix}-crash")
