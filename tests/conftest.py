"""Shared fixtures: the real local control plane (one per session), an API client connected to it (one per test),
and a short directory for unix sockets.

Tests that need the control plane are marked ``@pytest.mark.integration`` (or ``e2e``).  The Kubernetes binaries are
located or built right after collection, before any test's timeout starts (a cold build takes 20-30 minutes); if
that fails, every test using ``control_plane`` fails with the build error: a missing control plane is never a skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from cni_build import CNI_BUILD_ERROR, rebuild_editable_cni
from cni_sanitized import BUILD_ERROR as SANITIZED_BUILD_ERROR
from cni_sanitized import SanitizedBuildError, build_sanitized_cni
from hypothesis import settings
from kubernetes_asyncio import client as k8s_client

from spiderpool.devcluster.binaries import BINARIES, BuildError, ensure_binaries
from spiderpool.devcluster.cluster import ControlPlane
from spiderpool.devcluster.helm import ensure_helm
from spiderpool.devcluster.processes import raise_on_termination
from spiderpool.k8s.client import close_api_client, make_api_client
from spiderpool.k8s.crds import install_crds

# Tests check correctness, never wall-clock time: Hypothesis's per-example deadline (200 ms by default) is a
# wall-clock bound that a loaded machine breaks (test_pool_filters failed with DeadlineExceeded at 256 ms under load).
settings.register_profile("spiderpool", deadline=None)
settings.load_profile("spiderpool")

_REAL_CLUSTER_MARKERS = ("integration", "e2e")
# Unit tests are pure and fast: 30 s each (the 300 s default of pyproject.toml is for the suites that start
# processes); a unit test may still set its own limit with @pytest.mark.timeout.
UNIT_TIMEOUT_SECONDS = 30.0
_UNIT_DIR = Path(__file__).resolve().parent / "unit"
_BINARIES_ERROR = pytest.StashKey[str]()


def pytest_sessionstart(session: pytest.Session) -> None:
    """No implicit event loop in the main thread (R07): looptime's plugin asks the policy for the current loop around
    every test, sync ones included, and Python 3.11's policy then creates one that nothing closes; the next
    ``asyncio.run`` (the control plane's fixture) drops it, and its "unclosed event loop" ResourceWarning fails
    whichever async test collects it.  Once the loop is set explicitly (to none), the policy raises instead, which
    looptime expects; pytest-asyncio sets its own loops for async tests and restores none afterwards."""
    asyncio.set_event_loop(None)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(_UNIT_DIR) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(UNIT_TIMEOUT_SECONDS))


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly:
        return
    if any(item.path.name == "test_cni_fuzz.py" for item in session.items):
        try:  # outside any test's timeout too; a failure resurfaces, with the compiler's message, in the fuzz fixture
            build_sanitized_cni()
        except SanitizedBuildError as build_error:
            session.config.stash[SANITIZED_BUILD_ERROR] = str(build_error)
    if any(_runs_the_cni_executable(item) for item in session.items):
        error = rebuild_editable_cni()  # here, not in a unit test: tests run the current C code, unit tests never build
        if error is not None:
            session.config.stash[CNI_BUILD_ERROR] = error
    if not any(item.get_closest_marker(m) for item in session.items for m in _REAL_CLUSTER_MARKERS):
        return
    try:
        ensure_binaries(BINARIES)
    except BuildError as exc:
        session.config.stash[_BINARIES_ERROR] = str(exc)
    if any(item.path.name.startswith("test_chart") for item in session.items):
        # Built here, outside any test's timeout; a failure resurfaces, with its message, in the chart tests' fixture.
        with contextlib.suppress(BuildError):
            ensure_helm()


def _runs_the_cni_executable(item: pytest.Item) -> bool:
    fixtures = getattr(item, "fixturenames", ())
    return "cni_binary" in fixtures or any(item.get_closest_marker(m) for m in _REAL_CLUSTER_MARKERS)


def _require_binaries(config: pytest.Config) -> None:
    error = config.stash.get(_BINARIES_ERROR, None)
    if error is None:
        try:
            ensure_binaries(BINARIES)  # instant when cached; builds here only if the collection hook did not run
        except BuildError as exc:
            error = str(exc)
    if error is not None:
        pytest.fail(f"the Kubernetes control-plane binaries could not be built or found:\n{error}", pytrace=False)


async def _install_project_crds(plane: ControlPlane) -> None:
    client = await make_api_client(kubeconfig=plane.kubeconfig)
    try:
        await install_crds(client)
    finally:
        await close_api_client(client)


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    """A fresh directory for unix sockets, removed afterwards."""
    # Short path: sun_path holds 107 bytes, pytest's tmp_path can be longer.
    path = Path(tempfile.mkdtemp(prefix="spsock", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def control_plane(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """etcd + kube-apiserver on 127.0.0.1 with the project's CRDs Established; stopped after the session.

    ``control_plane.start_controller_manager()`` adds the workload, garbage-collector and namespace controllers for
    the tests that need them; they then run until the end of the session.
    """
    _require_binaries(request.config)
    raise_on_termination(KeyboardInterrupt)  # SIGTERM ends the session through every teardown
    plane = ControlPlane(state_dir=tmp_path_factory.mktemp("control-plane"))
    plane.start()
    try:
        asyncio.run(_install_project_crds(plane))
        yield plane
    finally:
        plane.stop()


@pytest.fixture
async def api(control_plane: ControlPlane) -> AsyncIterator[k8s_client.ApiClient]:
    """A ``kubernetes_asyncio`` ApiClient with the admin token, closed after the test."""
    client = await make_api_client(kubeconfig=control_plane.kubeconfig)
    try:
        yield client
    finally:
        await close_api_client(client)


@pytest.fixture(autouse=True)
def _collect_garbage_after_each_test() -> Iterator[None]:
    """Collect garbage right after each test, so a leaked socket or transport is reported against the test that
    leaked it (pytest turns the ResourceWarning into an error) instead of against whichever test runs next."""
    yield
    gc.collect()
