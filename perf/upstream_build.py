"""Build and cache upstream Spiderpool's executables (for the side-by-side benchmarks; never used by the tests).

``ensure_upstream_binaries()`` returns the paths of upstream's ``spiderpool-agent``, ``spiderpool`` (its IPAM CNI
executable) and ``coordinator`` at :data:`UPSTREAM_VERSION`, building them when the cache lacks them:

1. ``go mod download -json github.com/spidernet-io/spiderpool@<version>`` fetches the release's source from the Go
   module proxy (the module zip has no ``vendor/``, so its dependencies come from the proxy too);
2. the source is copied to ``~/.cache/spiderpool/upstream/<version>/src`` (the module cache is read-only) and
   ``go mod download`` fetches every dependency its ``go.sum`` pins;
3. ``go build -v`` with upstream's release flags (``CGO_ENABLED=0``, ``-tags=osusergo``, ``-ldflags=-s -w``; see its
   ``Makefile.defs``) writes the three commands to ``~/.cache/spiderpool/upstream/<version>/bin``, showing progress
   every 15 s (cold: ~10-20 min on 2 cores; the Go build cache makes a rebuild a relink).

Beside each binary ``.<name>.build`` records the flags it was built with; a binary whose record differs is rebuilt.
``SPIDERPOOL_CACHE_DIR`` moves the cache (as for the Kubernetes binaries, :mod:`spiderpool.devcluster.binaries`).
Build by hand: ``python perf/upstream_build.py`` (prints ``name<TAB>path``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import stat
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from spiderpool.devcluster.binaries import BuildError, build_lock, cache_root, go_build_with_progress, run_go

UPSTREAM_MODULE: Final = "github.com/spidernet-io/spiderpool"
UPSTREAM_VERSION: Final = "v1.2.2"
COMMANDS: Final = ("spiderpool-agent", "spiderpool", "coordinator")
BUILD_FLAGS: Final = ("-trimpath", "-tags=osusergo", "-ldflags=-s -w")  # upstream's Makefile.defs, minus vendor


def _log(message: str) -> None:
    print(f"[upstream-build] {message}", file=sys.stderr, flush=True)


def upstream_dir(version: str = UPSTREAM_VERSION) -> Path:
    """``~/.cache/spiderpool/upstream/<version>``: ``src/`` (the release's source) and ``bin/``."""
    return cache_root() / "upstream" / version


def source_dir(version: str = UPSTREAM_VERSION) -> Path:
    """The cached copy of the release's source (its chart's CRDs are read from here); present after a build."""
    return upstream_dir(version) / "src"


def _record(path: Path) -> Path:
    return path.parent / f".{path.name}.build"


def _current(path: Path) -> bool:
    record = _record(path)
    executable = path.is_file() and os.access(path, os.X_OK)
    return executable and record.is_file() and record.read_text() == " ".join(BUILD_FLAGS)


def find_upstream_binaries(version: str = UPSTREAM_VERSION) -> dict[str, Path] | None:
    """The cached binaries, or None when any is missing or was built with other flags."""
    paths = {name: upstream_dir(version) / "bin" / name for name in COMMANDS}
    if all(_current(path) for path in paths.values()) and (source_dir(version) / "go.mod").is_file():
        return paths
    return None


def ensure_upstream_binaries(version: str = UPSTREAM_VERSION) -> dict[str, Path]:
    """Paths of ``spiderpool-agent``, ``spiderpool`` and ``coordinator``; builds them first when not cached."""
    found = find_upstream_binaries(version)
    if found is not None:
        return found
    build(version)
    found = find_upstream_binaries(version)
    if found is None:
        raise BuildError(f"upstream binaries still missing after a build into {upstream_dir(version) / 'bin'}")
    return found


def _fetch_source(src: Path, version: str) -> None:
    """Copy the release's module from the Go module cache (downloading it first) to ``src``, writable."""
    if shutil.which("go") is None:
        raise BuildError("the `go` toolchain is not on PATH; install Go >= 1.25 (upstream's go.mod)")
    scratch = src.parent
    info = json.loads(run_go(["go", "mod", "download", "-json", f"{UPSTREAM_MODULE}@{version}"], scratch))
    if "Error" in info:
        raise BuildError(f"go mod download {UPSTREAM_MODULE}@{version}: {info['Error']}")
    shutil.rmtree(src, ignore_errors=True)
    shutil.copytree(info["Dir"], src, symlinks=True)
    for directory, _, files in os.walk(src):
        os.chmod(directory, 0o755)
        for name in files:
            path = Path(directory) / name
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | stat.S_IWUSR)


def build(version: str = UPSTREAM_VERSION) -> None:
    """Fetch the source and build every command into the cache (under a lock: concurrent callers wait)."""
    root = upstream_dir(version)
    with build_lock(root):
        if find_upstream_binaries(version) is not None:
            return
        src, out, partial = root / "src", root / "bin", root / "bin.partial"
        _log(f"building upstream {', '.join(COMMANDS)} {version} into {out} (cold: 10-20 min on 2 cores)")
        if not (src / "go.mod").is_file():
            _fetch_source(src, version)
        _log("downloading the modules upstream's go.sum pins (go mod download)")
        run_go(["go", "mod", "download"], src)
        partial.mkdir(parents=True, exist_ok=True)
        packages = [f"./cmd/{name}" for name in COMMANDS]
        cmd = ["go", "build", "-v", *BUILD_FLAGS, "-o", f"{partial}/", *packages]
        go_build_with_progress(cmd, cwd=src, label=f"upstream {version}")
        out.mkdir(parents=True, exist_ok=True)
        for name in COMMANDS:
            os.replace(partial / name, out / name)
            _record(out / name).write_text(" ".join(BUILD_FLAGS))
        partial.rmdir()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build or locate upstream Spiderpool's executables.")
    parser.add_argument("--version", default=UPSTREAM_VERSION)
    args = parser.parse_args(argv)
    try:
        paths: Mapping[str, Path] = ensure_upstream_binaries(args.version)
    except BuildError as exc:
        _log(f"error: {exc}")
        return 1
    for name, path in paths.items():
        print(f"{name}\t{path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
