"""The CNI executable built with AddressSanitizer and UndefinedBehaviorSanitizer, as ``make cni-sanitize`` builds it.

``cni/`` configures on its own (no Python, no Cython), so the build takes a couple of seconds and is incremental
afterwards.  Built into ``build/cni-sanitize`` of the checkout; tests/conftest.py builds it right after collection,
outside any test's timeout, and the fuzz tests' fixture fails with the compiler's message when it could not.
"""

from __future__ import annotations

import fcntl
import subprocess
from pathlib import Path
from typing import Final

import pytest

ROOT: Final = Path(__file__).resolve().parents[1]
BUILD_DIR: Final = ROOT / "build" / "cni-sanitize"
# The same two commands as the Makefile's cni-sanitize target.
CONFIGURE: Final = ("cmake", "-S", str(ROOT / "cni"), "-B", str(BUILD_DIR), "-DSPIDERPOOL_CNI_SANITIZE=ON",
                    "-DCMAKE_BUILD_TYPE=Debug")
BUILD: Final = ("cmake", "--build", str(BUILD_DIR))
SANITIZED_BINARY: Final = BUILD_DIR / "spiderpool"
# The chained plugin: the same program, built a second time posting to the agent's /v2/coordinator.
SANITIZED_COORDINATOR: Final = BUILD_DIR / "coordinator"
# Where tests/conftest.py leaves the build's failure for the fuzz tests' fixture.
BUILD_ERROR: Final = pytest.StashKey[str]()
# Every finding ends the run with this status (besides the report on stderr), leaks included.
SANITIZER_EXIT_CODE: Final = 86
SANITIZER_ENV: Final = {
    "ASAN_OPTIONS": f"detect_leaks=1:abort_on_error=0:exitcode={SANITIZER_EXIT_CODE}",
    "UBSAN_OPTIONS": f"halt_on_error=1:print_stacktrace=1:exitcode={SANITIZER_EXIT_CODE}",
}


class SanitizedBuildError(RuntimeError):
    """cmake or the compiler failed; the message holds their output."""


def build_sanitized_cni() -> Path:
    """Configures (once) and builds the sanitized executable; returns its path."""
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    with (BUILD_DIR / ".build.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        steps = [BUILD] if (BUILD_DIR / "CMakeCache.txt").is_file() else [CONFIGURE, BUILD]
        for command in steps:
            try:
                subprocess.run(command, check=True, capture_output=True, text=True)
            except FileNotFoundError as error:
                raise SanitizedBuildError(f"{command[0]} not found (make setup installs it): {error}") from None
            except subprocess.CalledProcessError as error:
                raise SanitizedBuildError(f"{' '.join(command)} failed:\n{error.stdout}{error.stderr}") from None
    return SANITIZED_BINARY
