"""Fixtures of the agent's integration tests (helpers they build on: ``tests/agent_support.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
from agent_support import AgentLauncher, Cluster, running_agent
from kubernetes_asyncio.client import ApiClient

from spiderpool.agent.daemon import Agent
from spiderpool.devcluster.cluster import ControlPlane


@pytest.fixture
async def cluster(api: ApiClient) -> AsyncIterator[Cluster]:
    """The test's view of the API server; the pools the test created are deleted after it."""
    view = Cluster(api)
    yield view
    await view.delete_pools()


@pytest.fixture
def node_agent(control_plane: ControlPlane, socket_dir: Path) -> AgentLauncher:
    """``async with node_agent(node, *pools) as agent``: a node's in-process agent that has seen ``pools``.

    It runs the full mode (``enableStatelessSpiderEndpoint: true``, a SpiderEndpoint for every pod): these cases check
    the endpoints; the default lean mode has its own cases (``test_agent_lean_endpoints.py``).
    """

    def launch(node: str, *pools: str, socket: str = "a.sock",
               writer_linger: float = 0.0) -> AbstractAsyncContextManager[Agent]:
        return running_agent(control_plane, node, socket_dir / socket, pools=pools, writer_linger=writer_linger,
                             enable_stateless_spider_endpoint=True)

    return launch
