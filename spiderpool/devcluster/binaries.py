"""Locate or build the pinned Kubernetes binaries, cached by version outside the work tree.

Resolution order for each binary: ``SPIDERPOOL_K8S_BIN_DIR``, then ``KUBEBUILDER_ASSETS`` (envtest ships etcd and
kube-apiserver), then the cache, then a build from the Go module proxy into the cache.  The build happens in a
scratch Go module that pins every ``k8s.io/*`` staging module to the release's ``v0.Y.Z`` (a dependency's own
``replace`` lines are ignored by Go, so they must be restated).

Every Kubernetes binary is version-stamped (``-X k8s.io/component-base/version.*``, as the release build does): an
unstamped kube-apiserver answers ``/version`` with ``v0.0.0-master`` and ``helm install`` refuses any chart with a
``kubeVersion`` constraint.  Next to each cached binary, ``.<name>.build`` records the flags it was linked with; a
cached binary whose record differs (or is missing: an older, unstamped build) is rebuilt, a relink once the Go build
cache is warm.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

K8S_VERSION = "v1.36.3"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager")
# What a real node adds (spiderpool.devcluster.realnode): the kubelet, a scheduler, and kubectl for logs/exec.
NODE_BINARIES = ("kubelet", "kube-scheduler", "kubectl")
_PACKAGES = {
    "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
    "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
    "etcd": "go.etcd.io/etcd/server/v3",
    "kubelet": "k8s.io/kubernetes/cmd/kubelet",
    "kube-scheduler": "k8s.io/kubernetes/cmd/kube-scheduler",
    "kubectl": "k8s.io/kubernetes/cmd/kubectl",
}
_STAGING = re.compile(r"^\s*(k8s\.io/[\w.\-/]+)\s+=>\s+\./staging/", re.MULTILINE)
_GODEBUG = re.compile(r"^godebug\s.*$", re.MULTILINE)


class BuildError(RuntimeError):
    """The Kubernetes binaries could not be built; the message carries the failing command's output."""


def cache_root() -> Path:
    explicit = os.environ.get("SPIDERPOOL_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "spiderpool"


def version_dir(version: str = K8S_VERSION) -> Path:
    return cache_root() / "k8s" / version


def _log(message: str) -> None:
    print(f"[k8s-binaries] {message}", file=sys.stderr, flush=True)


def _candidate_dirs(version: str) -> Iterator[Path]:
    for var in ("SPIDERPOOL_K8S_BIN_DIR", "KUBEBUILDER_ASSETS"):
        value = os.environ.get(var)
        if value:
            yield Path(value)
    yield version_dir(version) / "bin"


def ldflags(name: str, version: str = K8S_VERSION) -> str:
    """The linker flags of ``name``: stripped, and for Kubernetes' own commands stamped with the release version."""
    if not _PACKAGES[name].startswith("k8s.io/kubernetes/"):
        return "-s -w"
    major, minor = version.removeprefix("v").split(".")[:2]
    stamps = {
        "k8s.io/component-base/version.gitVersion": version,
        "k8s.io/component-base/version.gitMajor": major,
        "k8s.io/component-base/version.gitMinor": minor,
        "k8s.io/component-base/version.gitTreeState": "clean",
        "k8s.io/client-go/pkg/version.gitVersion": version,
        "k8s.io/client-go/pkg/version.gitMajor": major,
        "k8s.io/client-go/pkg/version.gitMinor": minor,
    }
    return " ".join(["-s -w", *(f"-X {var}={value}" for var, value in stamps.items())])


def _build_record(out: Path, name: str) -> Path:
    return out / f".{name}.build"


def _cached_is_current(path: Path, name: str, version: str) -> bool:
    record = _build_record(path.parent, name)
    return record.is_file() and record.read_text() == ldflags(name, version)


def find_binary(name: str, version: str = K8S_VERSION) -> Path | None:
    cache = version_dir(version) / "bin"
    for directory in _candidate_dirs(version):
        path = directory / name
        if not (path.is_file() and os.access(path, os.X_OK)):
            continue
        if directory == cache and not _cached_is_current(path, name, version):
            continue  # built with other flags (an unstamped build of an older checkout): rebuild
        return path
    return None


def ensure_binaries(names: Sequence[str] = BINARIES, version: str = K8S_VERSION) -> dict[str, Path]:
    """Return a path for every binary in ``names``, building the missing ones (slow when cold: ~20-30 min)."""
    found = {name: find_binary(name, version) for name in names}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        build(missing, version)
    result: dict[str, Path] = {}
    for name in names:
        path = find_binary(name, version)
        if path is None:
            raise BuildError(f"{name} still missing after a build into {version_dir(version) / 'bin'}")
        result[name] = path
    return result


@contextmanager
def build_lock(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def go_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"GOTOOLCHAIN": "local", "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod -buildvcs=false"})
    return env


def run_go(cmd: Sequence[str], cwd: Path) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=go_env(), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BuildError(f"`{' '.join(cmd)}` failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc.stdout


def _write_module(src: Path, version: str) -> None:
    if shutil.which("go") is None:
        raise BuildError("the `go` toolchain is not on PATH; install Go >= 1.26 (apt: golang-go is too old)")
    src.mkdir(parents=True, exist_ok=True)
    info = json.loads(run_go(["go", "mod", "download", "-json", f"k8s.io/kubernetes@{version}"], src))
    upstream = Path(info["GoMod"]).read_text()
    staging_version = "v0" + version[version.index(".") :]
    replaces = "\n".join(f"\t{m} => {m} {staging_version}" for m in sorted(set(_STAGING.findall(upstream))))
    godebug = "\n".join(_GODEBUG.findall(upstream))
    tools = "\n".join(f"\t{pkg}" for pkg in _PACKAGES.values())
    (src / "go.mod").write_text(
        f"module spiderpool.local/k8sbuild\n\ngo 1.26.0\n\n{godebug}\n\n"
        f"require k8s.io/kubernetes {version}\n\nreplace (\n{replaces}\n)\n\ntool (\n{tools}\n)\n"
    )


def go_build_with_progress(cmd: Sequence[str], *, cwd: Path, label: str) -> None:
    """Run ``go build -v ...``, logging progress every 15 s (a cold build takes minutes) and the tail on failure."""
    started = time.monotonic()
    proc = subprocess.Popen(list(cmd), cwd=cwd, env=go_env(), stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    tail: deque[str] = deque(maxlen=40)
    last_report = started
    for count, line in enumerate(proc.stderr, start=1):
        tail.append(line.rstrip())
        now = time.monotonic()
        if now - last_report >= 15:
            _log(f"{label}: {count} packages compiled, {now - started:.0f}s elapsed (last: {line.strip()})")
            last_report = now
    if proc.wait() != 0:
        raise BuildError(f"`{' '.join(cmd)}` failed:\n" + "\n".join(tail))
    _log(f"{label}: built in {time.monotonic() - started:.0f}s")


def _go_build(src: Path, out: Path, name: str, version: str) -> None:
    flags = f"-ldflags={ldflags(name, version)}"
    cmd = ["go", "build", "-v", "-trimpath", flags, "-o", str(out / name), _PACKAGES[name]]
    go_build_with_progress(cmd, cwd=src, label=name)


def build(names: Sequence[str], version: str = K8S_VERSION) -> None:
    root = version_dir(version)
    with build_lock(root):
        out = root / "bin"
        todo = [n for n in names if not ((out / n).is_file() and _cached_is_current(out / n, n, version))]
        if not todo:
            return
        _log(f"building {', '.join(todo)} {version} into {out} (cold: 20-30 min on 2 cores; cached afterwards)")
        src = root / "src"
        _write_module(src, version)
        _log("resolving modules (go mod tidy)")
        run_go(["go", "mod", "tidy"], src)
        tmp = root / "bin.partial"
        tmp.mkdir(parents=True, exist_ok=True)
        for name in todo:
            _go_build(src, tmp, name, version)
            out.mkdir(parents=True, exist_ok=True)
            os.replace(tmp / name, out / name)
            _build_record(out, name).write_text(ldflags(name, version))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build or locate the pinned Kubernetes binaries.")
    parser.add_argument("names", nargs="*", default=list(BINARIES))
    parser.add_argument("--version", default=K8S_VERSION)
    args = parser.parse_args(argv)
    try:
        paths = ensure_binaries(args.names or BINARIES, args.version)
    except BuildError as exc:
        _log(f"error: {exc}")
        return 1
    for name, path in paths.items():
        print(f"{name}\t{path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
