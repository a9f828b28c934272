"""Upstream's ``GET /v1/coordinator/config`` on the agent's socket, answered from the real API server
(case IDs in docs/multus.md)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from agent_support import AgentLauncher, Cluster
from swagger_check import decode_problems

from spiderpool.k8s.client import ApiClient
from spiderpool.k8s.store import SpiderStores

pytestmark = pytest.mark.integration
OPENAPI = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "coordinator" /
                      "upstream_agent_openapi.json").read_text())


@asynccontextmanager
async def unix_client(path: Path) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(path))) as session:
        yield session


async def _get_config(http: aiohttp.ClientSession, namespace: str, name: str) -> tuple[int, Any]:
    # upstream's client sends the arguments as a JSON body of a GET
    response = await http.get("http://agent/v1/coordinator/config",
                              data=json.dumps({"podNamespace": namespace, "podName": name}),
                              headers={"Content-Type": "application/json"})
    return response.status, await response.json()


async def test_scc21_agent_serves_the_coordinator_config(api: ApiClient, cluster: Cluster,
                                                         node_agent: AgentLauncher) -> None:
    """SCC21: no SpiderCoordinator: 500 "coordinator config not found"; NotReady: 500 "... no ready"; Synced: the
    config from spec and status, the pod's default-route-nic annotation overriding podDefaultRouteNIC; the JSON
    decodes into upstream's generated CoordinatorConfig model."""
    coordinators: Any = SpiderStores(api).coordinators
    node = await cluster.node()
    pod = await cluster.pod(node, annotations={"ipam.spidernet.io/default-route-nic": "net1"})
    name = pod.metadata.name
    async with node_agent(node) as agent, unix_client(agent.config.socket_path) as http:
        assert await _get_config(http, "default", name) == (500, "coordinator config not found")
        spec = {"mode": "underlay", "podCIDRType": "cluster", "tunePodRoutes": False, "hostRuleTable": 600,
                "podRPFilter": 2, "txQueueLen": 0, "vethMTU": 1500, "vethLinkAddress": "", "podMACPrefix": "0a:1b",
                "hijackCIDR": ["169.254.0.0/16"], "podDefaultRouteNIC": "eth0",
                "policyRoutes": [{"dst": "198.51.100.0/24", "gw": "192.0.2.1"}]}
        created: Any = await coordinators.create({"metadata": {"name": "default"}, "spec": spec})
        try:
            created = await coordinators.replace_status({**created, "status": {
                "phase": "NotReady", "reason": "x", "overlayPodCIDR": [], "serviceCIDR": []}})
            assert await _get_config(http, "default", name) == (500, "spidercoordinator: default no ready")
            await coordinators.replace_status({**created, "status": {
                "phase": "Synced", "overlayPodCIDR": ["10.244.0.0/16"], "serviceCIDR": ["10.96.0.0/12"]}})
            status, config = await _get_config(http, "default", name)
            assert status == 200
            assert config == {"hijackCIDR": ["169.254.0.0/16"], "hostRuleTable": 600, "mode": "underlay",
                              "overlayPodCIDR": ["10.244.0.0/16"], "podDefaultRouteNIC": "net1",
                              "podMACPrefix": "0a:1b", "podRPFilter": 2,
                              "policyRoutes": [{"dst": "198.51.100.0/24", "gw": "192.0.2.1"}],
                              "serviceCIDR": ["10.96.0.0/12"], "tunePodRoutes": False, "vethMTU": 1500}
            schema = OPENAPI["path"]["get"]["responses"]["200"]["schema"]
            assert decode_problems(config, schema, OPENAPI["definitions"]) == []
            assert await _get_config(http, "default", "no-such-pod") == (500, "failed to get pod default/no-such-pod")
        finally:
            await coordinators.delete("default")
