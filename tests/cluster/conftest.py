"""The real node of tests/cluster (one for the package): control plane, containerd, kubelet, kube-scheduler, Multus,
and the chart installed from the working tree (spiderpool.devcluster.realnode).  Everything it needs is built or
located right after collection, before any test's timeout starts (cold: kubelet, Multus and the images take ~15 min
on 2 cores); a failure there fails every test here with its message: a missing part is never a skip."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from spiderpool.devcluster.binaries import BINARIES, NODE_BINARIES, BuildError, ensure_binaries
from spiderpool.devcluster.helm import ensure_helm
from spiderpool.devcluster.processes import raise_on_termination
from spiderpool.devcluster.realnode import chart
from spiderpool.devcluster.realnode.cleanup import remove_state
from spiderpool.devcluster.realnode.images import pause_image
from spiderpool.devcluster.realnode.layout import RealNodeError
from spiderpool.devcluster.realnode.multus import ensure_multus
from spiderpool.devcluster.realnode.node import RealNode
from spiderpool.devcluster.realnode.project_image import project_image

PROJECT = Path(__file__).resolve().parents[2]
_PREPARE_ERROR = pytest.StashKey[str]()


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly or not any(i.get_closest_marker("cluster") for i in session.items):
        return
    try:
        ensure_binaries([*BINARIES, *NODE_BINARIES])
        ensure_helm()
        ensure_multus()
        pause_image()
        project_image(PROJECT)
    except (BuildError, RealNodeError) as exc:
        session.config.stash[_PREPARE_ERROR] = str(exc)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="package")
def real_node(request: pytest.FixtureRequest) -> Iterator[RealNode]:
    """The node of tests/cluster, stopped after its last test (not at the end of a whole `pytest tests` session).
    Its state directory is not under pytest's basetemp: concurrent pytest sessions of the machine rotate those
    (rename, then delete) while this one still runs containers in it."""
    error = request.config.stash.get(_PREPARE_ERROR, None)
    if error is not None:
        pytest.fail(f"the real node's parts could not be built:\n{error}", pytrace=False)
    raise_on_termination(KeyboardInterrupt)
    node = RealNode(state_dir=Path(tempfile.mkdtemp(prefix="spiderpool-realnode-", dir="/tmp")), project=PROJECT)
    try:
        node.start()
        chart.install(node)
        yield node
    finally:
        node.stop()
        remove_state(node.layout.root)
        print(f"\nreal node timings (s): {node.timings.steps}")
