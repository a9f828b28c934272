"""``spiderpool-agent install-cni DIR``: put the CNI executable into a node's CNI bin directory.

The copy is atomic (temporary file in DIR, chmod 0755, rename over the old one), so a runtime exec'ing the plugin at
that moment runs either the old or the new binary, never a partial one, and a running old binary is not disturbed.
"""

from __future__ import annotations

import argparse
import importlib.resources
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

import spiderpool

EXECUTABLE_NAME: Final = "spiderpool"
# The chained plugin, the same C program posting to the agent's /v2/coordinator.
COORDINATOR_NAME: Final = "coordinator"
EXECUTABLE_NAMES: Final = (EXECUTABLE_NAME, COORDINATOR_NAME)
# Where scikit-build-core's editable install (build-dir build/editable) installs and builds the executables.
_EDITABLE_INSTALL: Final = Path("build/editable/install/platlib/spiderpool/bin")
_EDITABLE_BUILD: Final = Path("build/editable/cni")


def _candidate_paths(name: str) -> Iterator[Path]:
    resource = importlib.resources.files(spiderpool) / "bin" / name
    if isinstance(resource, Path):
        yield resource  # an installed wheel
    # An editable install lists its CMake install tree among the package's search locations.
    for location in spiderpool.__path__:
        yield Path(location) / "bin" / name
    source_root = Path(spiderpool.__file__).resolve().parent.parent
    yield source_root / _EDITABLE_INSTALL / name
    yield source_root / _EDITABLE_BUILD / name


def cni_executable_path(name: str = EXECUTABLE_NAME) -> Path:
    """A built CNI executable (``spiderpool`` or ``coordinator``), in an installed wheel or in the editable build;
    FileNotFoundError when absent."""
    candidates = list(dict.fromkeys(_candidate_paths(name)))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    looked = ", ".join(str(path) for path in candidates)
    raise FileNotFoundError(
        f"{name} CNI executable not built; looked in {looked}. Build it with "
        "`pip install --no-build-isolation -Ceditable.rebuild=true -Cbuild-dir=build/editable -e .`"
    )


def install_cni(dest_dir: Path, *, source: Path | None = None, name: str = EXECUTABLE_NAME) -> Path:
    """Copies the executable ``name`` (or ``source``) to ``dest_dir/name`` atomically; returns the installed path."""
    source = source if source is not None else cni_executable_path(name)
    destination = dest_dir / name
    descriptor, temporary = tempfile.mkstemp(prefix=f".{name}.", dir=dest_dir)
    try:
        with os.fdopen(descriptor, "wb") as target, source.open("rb") as origin:
            shutil.copyfileobj(origin, target)
            target.flush()
            os.fsync(target.fileno())
        os.chmod(temporary, 0o755)
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return destination


def main(argv: Sequence[str] | None = None) -> int:
    """``install-cni DIR [--source PATH]``: the agent CLI's subcommand (also ``python -m`` this module)."""
    parser = argparse.ArgumentParser(
        prog="spiderpool-agent install-cni",
        description="Install the CNI executables (spiderpool, and the chained coordinator) into DIR.",
    )
    parser.add_argument("dest_dir", type=Path, metavar="DIR", help="CNI bin directory, e.g. /opt/cni/bin")
    parser.add_argument("--source", type=Path,
                        help="install only this executable as `spiderpool` (default: both built with this package)")
    options = parser.parse_args(argv)
    if not options.dest_dir.is_dir():
        parser.error(f"DIR: {options.dest_dir} is not a directory")
    names = (EXECUTABLE_NAME,) if options.source is not None else EXECUTABLE_NAMES
    try:
        for name in names:
            print(install_cni(options.dest_dir, source=options.source, name=name))
    except OSError as err:
        print(f"install-cni: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
