"""End-to-end fixtures: a testbed of simulated nodes (network namespaces + agents) against the session's control plane.

Prerequisites are root, iproute2 with ``ip netns``, ``nsenter`` and Debian's CNI plugins in /usr/lib/cni; a missing one
fails the test with a message, never skips it.  Case IDs are in docs/e2e-cases.md; each test's docstring starts with
its ID.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from spiderpool.devcluster.cluster import ControlPlane
from spiderpool.testbed.prerequisites import missing_prerequisites
from spiderpool.testbed.testbed import Testbed

from .support import Pools, unique


@pytest.fixture
def e2e_ready(control_plane: ControlPlane) -> ControlPlane:
    """The control plane, once the machine is known to have what the e2e tests need (else the test fails)."""
    missing = missing_prerequisites()
    if missing:
        pytest.fail("the e2e tests need: " + "; ".join(missing), pytrace=False)
    return control_plane


@pytest.fixture
async def bed(e2e_ready: ControlPlane, tmp_path: Path) -> AsyncIterator[Testbed]:
    """A started testbed without nodes; closed (everything it made removed) after the test.  The agents' logs stay
    in the test's ``tmp_path`` for a post-mortem.

    Its agents run the full mode (``enableStatelessSpiderEndpoint: true``): these cases check and audit every pod's
    SpiderEndpoint.  The default lean mode has its own cases (LE* in the integration suite).
    """
    async with Testbed(kubeconfig=e2e_ready.kubeconfig, log_dir=tmp_path,
                       conf_yml="enableStatelessSpiderEndpoint: true\n") as testbed:
        yield testbed


@pytest.fixture
async def lean_bed(e2e_ready: ControlPlane, tmp_path: Path) -> AsyncIterator[Testbed]:
    """A started testbed whose agents run their defaults (lean endpoints: ``enableStatelessSpiderEndpoint: false``)."""
    async with Testbed(kubeconfig=e2e_ready.kubeconfig, log_dir=tmp_path) as testbed:
        yield testbed


@pytest.fixture
async def namespace(bed: Testbed) -> AsyncIterator[str]:
    """A fresh namespace for the test's pods; deleted afterwards (the testbed has removed the pods by then)."""
    name = unique("e2e")
    await bed.core.create_namespace(name)
    yield name
    await bed.core.delete_namespace(name)


@pytest.fixture
async def pools(bed: Testbed) -> AsyncIterator[Pools]:
    """Pools created by the test, deleted afterwards."""
    made = Pools(bed)
    yield made
    await made.delete_all()
