"""Compile the CNI executable of an editable checkout once per session, before any test runs.

Tests must run the current C code, but a unit test must not build: ``tests/conftest.py`` calls ``rebuild_editable_cni``
from ``pytest_collection_finish`` (outside every test's timeout) and stashes a failure, which the tests that exec the
executable turn into a failure with the build's message (``require_cni_build``).
"""

from __future__ import annotations

import fcntl
import subprocess
from pathlib import Path

import pytest

import spiderpool

CNI_BUILD_ERROR = pytest.StashKey[str]()


def rebuild_editable_cni() -> str | None:
    """In a checkout with an editable build, compile and install cni/ now; the error text if that failed.

    Only the executable's target and install component, so a half-edited Cython module elsewhere does not matter.
    The lock is the one scikit-build-core's import-time rebuild takes.
    """
    build_dir = Path(spiderpool.__file__).resolve().parent.parent / "build" / "editable"
    if not (build_dir / "CMakeCache.txt").is_file():
        return None  # an installed wheel: nothing to rebuild
    prefix = build_dir / "install" / "platlib"
    with (build_dir / "editable_rebuild.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for command in (
            ["cmake", "--build", str(build_dir), "--target", "spiderpool_cni", "spiderpool_coordinator"],
            ["cmake", "--install", str(build_dir), "--component", "cni", "--prefix", str(prefix)],
        ):
            done = subprocess.run(command, check=False, capture_output=True, text=True)
            if done.returncode != 0:
                return f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    return None


def require_cni_build(config: pytest.Config) -> None:
    """Fail the calling test with the session's CNI build error, if there was one."""
    error = config.stash.get(CNI_BUILD_ERROR, None)
    if error is not None:
        pytest.fail(f"the CNI executable could not be built:\n{error}", pytrace=False)
