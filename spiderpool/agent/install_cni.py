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
# Where scikit-build-core's editable install (build-dir build/editable) installs and builds the executable.
_EDITABLE_INSTALL: Final = Path("build/editable/install/platlib/spiderpool/bin") / EXECUTABLE_NAME
_EDITABLE_BUILD: Final = Path("build/editable/cni") / EXECUTABLE_NAME


def _candidate_paths() -> Iterator[Path]:
    resource = importlib.resources.files(spiderpool) / "bin" / EXECUTABLE_NAME
    if isinstance(resource, Path):
        yield resource  # an installed wheel
    # An editable install lists its CMake install tree among the package's search locations.
    for location in spiderpool.__path__:
        yield Path(location) / "bin" / EXECUTABLE_NAME
    source_root = Path(spiderpool.__file__).resolve().parent.parent
    yield source_root / _EDITABLE_INSTALL
    yield source_root / _EDITABLE_BUILD


def cni_executable_path() -> Path:
    """The built CNI executable, in an installed wheel or in the editable build; FileNotFoundError when absent."""
    candidates = list(dict.fromkeys(_candidate_paths()))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    looked = ", ".join(str(path) for path in candidates)
    raise FileNotFoundError(
        f"spiderpool CNI executable not built; looked in {looked}. Build it with "
        "`pip install --no-build-isolation -Ceditable.rebuild=true -Cbuild-dir=build/editable -e .`"
    )


def install_cni(dest_dir: Path, *, source: Path | None = None) -> Path:
    """Copies the executable (or ``source``) to ``dest_dir/spiderpool`` atomically; returns the installed path."""
    source = source if source is not None else cni_executable_path()
    destination = dest_dir / EXECUTABLE_NAME
    descriptor, temporary = tempfile.mkstemp(prefix=f".{EXECUTABLE_NAME}.", dir=dest_dir)
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
        prog="spiderpool-agent install-cni", description="Install the spiderpool CNI executable into DIR."
    )
    parser.add_argument("dest_dir", type=Path, metavar="DIR", help="CNI bin directory, e.g. /opt/cni/bin")
    parser.add_argument("--source", type=Path, help="executable to install (default: the one built with this package)")
    options = parser.parse_args(argv)
    if not options.dest_dir.is_dir():
        parser.error(f"DIR: {options.dest_dir} is not a directory")
    try:
        installed = install_cni(options.dest_dir, source=options.source)
    except OSError as err:
        print(f"install-cni: {err}", file=sys.stderr)
        return 1
    print(installed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
