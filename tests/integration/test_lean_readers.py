"""Every reader answers a lean pod (no SpiderEndpoint, the default) from its pool records, NIC included.

One pod with two NICs of two networks (``eth0`` dual-stack from two pools, ``net1`` from a third), added by the real
agent in its default mode: its records name their NIC (``"nic"``, a key upstream's decoder ignores), and
``spiderpoolctl who-has`` / ``describe pod`` / ``check``, upstream's ``GET /v1/workloadendpoint``, CNI CHECK and CNI
GC all answer it as they answer a pod with an endpoint.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from agent_support import NAMESPACE, Cluster, cni_request, eventually, running_agent, span
from kubernetes_asyncio.client import V1Pod

from spiderpool.agent.daemon import Agent
from spiderpool.core.cni_types import Attachment
from spiderpool.devcluster.cluster import ControlPlane

pytestmark = pytest.mark.integration


def spiderpoolctl(kubeconfig: Path, *args: str) -> tuple[int, Any]:
    done = subprocess.run([sys.executable, "-m", "spiderpool.cli", *args, "-o", "json", "--kubeconfig",
                           str(kubeconfig)], capture_output=True, text=True, timeout=60, check=False)
    return done.returncode, orjson.loads(done.stdout) if done.stdout.strip() else done.stderr


@asynccontextmanager
async def lean_pod(cluster: Cluster, control_plane: ControlPlane, socket_dir: Path, octet: int
                   ) -> AsyncIterator[tuple[Agent, V1Pod, str, dict[str, str]]]:
    """The default agent of a fresh node, and one pod it served on eth0 (IPv4 + IPv6) and net1 (IPv4), from pools
    of 10.``octet``.0.0/24, fd00:``octet``::/64 and 10.``octet + 1``.0.0/24."""
    node = await cluster.node()
    pools = {"v4": await cluster.pool(subnet=f"10.{octet}.0.0/24", ips=[span(f"10.{octet}.0.2", 4)],
                                      gateway=f"10.{octet}.0.1"),
             "v6": await cluster.pool(subnet=f"fd00:{octet}::/64", ips=[span(f"fd00:{octet}::2", 4)]),
             "net1": await cluster.pool(subnet=f"10.{octet + 1}.0.0/24", ips=[span(f"10.{octet + 1}.0.2", 4)])}
    pod = await cluster.pod(node)
    async with running_agent(control_plane, node, socket_dir / "lean.sock", pools=pools.values()) as agent:
        await agent.service.add(cni_request("ADD", pod, default_ipv4_ippool=[pools["v4"]],
                                            default_ipv6_ippool=[pools["v6"]]))
        await agent.service.add(cni_request("ADD", pod, ifname="net1", default_ipv4_ippool=[pools["net1"]]))
        yield agent, pod, node, pools
    await cluster.force_delete(pod.metadata.name)


async def test_records_name_their_nic_and_the_cli_reads_them(
    cluster: Cluster, control_plane: ControlPlane, socket_dir: Path
) -> None:
    """LR01: A lean pod's records name their NIC; who-has, describe pod and check answer it without an endpoint."""
    async with lean_pod(cluster, control_plane, socket_dir, 140) as (_, pod, node, pools):
        raw = orjson.loads((await cluster.stores.ippools.get(pools["net1"]))["status"]["allocatedIPs"])
        assert raw == {"10.141.0.2": {"nic": "net1", "pod": f"{NAMESPACE}/{pod.metadata.name}",
                                     "podUid": pod.metadata.uid}}
        assert await cluster.endpoint(pod.metadata.name) is None
        kubeconfig = control_plane.kubeconfig
        code, holders = spiderpoolctl(kubeconfig, "who-has", "10.141.0.2")
        assert code == 0, holders
        assert holders == [{"ip": "10.141.0.2", "pool": pools["net1"], "pod": f"{NAMESPACE}/{pod.metadata.name}",
                            "podUid": pod.metadata.uid, "node": node, "interface": "net1"}]
        code, described = spiderpoolctl(kubeconfig, "describe", "pod", f"{NAMESPACE}/{pod.metadata.name}")
        assert code == 0, described
        assert described["endpointUid"] is None
        assert described["nics"] == [
            {"interface": "eth0", "ipv4": "10.140.0.2", "ipv4Pool": pools["v4"], "ipv6": "fd00:140::2",
             "ipv6Pool": pools["v6"]},
            {"interface": "net1", "ipv4": "10.141.0.2", "ipv4Pool": pools["net1"]}]
        code, checked = spiderpoolctl(kubeconfig, "check")
        mine = [f for f in checked["findings"] if f["pod"] == f"{NAMESPACE}/{pod.metadata.name}"]
        assert mine == [], checked


async def test_workload_endpoint_check_and_gc_answer_a_lean_pod(
    cluster: Cluster, control_plane: ControlPlane, socket_dir: Path
) -> None:
    """LR02: Upstream's GET /v1/workloadendpoint, CNI CHECK (per NIC) and CNI GC answer a lean pod."""
    async with lean_pod(cluster, control_plane, socket_dir, 142) as (agent, pod, node, pools):
        connector = aiohttp.UnixConnector(path=str(agent.config.socket_path))
        async with aiohttp.ClientSession(connector=connector) as http:
            answer = await http.get("http://agent/v1/workloadendpoint",
                                    params={"podNamespace": NAMESPACE, "podName": pod.metadata.name})
            assert answer.status == 200
            document = await answer.json()
        assert document == {
            "podNamespace": NAMESPACE, "podName": pod.metadata.name, "podUID": pod.metadata.uid, "node": node,
            "interfaces": [
                {"interface": "eth0", "ipv4": "10.142.0.2/24", "ipv6": "fd00:142::2/64", "vlan": 0,
                 "ipv4Pool": pools["v4"], "ipv6Pool": pools["v6"], "ipv4Gateway": "10.142.0.1"},
                {"interface": "net1", "ipv4": "10.143.0.2/24", "vlan": 0, "ipv4Pool": pools["net1"]}]}
        previous = {"cniVersion": "1.0.0", "ips": [{"address": "10.143.0.2/24"}]}
        net1 = await agent.service.check(cni_request("CHECK", pod, ifname="net1", extra={"prevResult": previous},
                                                     default_ipv4_ippool=[pools["net1"]]))
        assert [str(ip.address) for ip in net1.ips] == ["10.143.0.2/24"], "CHECK of net1 answers net1's address only"
        previous = {"cniVersion": "1.0.0", "ips": [{"address": "10.142.0.2/24"}, {"address": "fd00:142::2/64"}]}
        eth0 = await agent.service.check(cni_request("CHECK", pod, extra={"prevResult": previous},
                                                     default_ipv4_ippool=[pools["v4"]]))
        assert sorted(str(ip.address) for ip in eth0.ips) == ["10.142.0.2/24", "fd00:142::2/64"]

        await cluster.core.patch_namespaced_pod_status(pod.metadata.name, NAMESPACE,
                                                       {"status": {"phase": "Failed", "reason": "Evicted"}})

        def evicted_seen() -> bool:
            seen = agent.service.context.pods.cached(NAMESPACE, pod.metadata.name)
            return seen is not None and seen.get("status", {}).get("reason") == "Evicted"

        await eventually(evicted_seen)
        gc = cni_request("GC", pod, version="1.1.0", extra={"cni.dev/valid-attachments": []})
        await agent.service.gc(gc, list[Attachment]())
        for pool in pools.values():
            assert await cluster.records(pool) == {}, f"GC released the lean pod's records of {pool}"
