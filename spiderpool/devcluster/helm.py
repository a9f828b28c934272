"""Locate or build the pinned helm v3 binary, cached by version next to the Kubernetes binaries.

Resolution order: ``SPIDERPOOL_HELM``, then the cache, then ``helm`` on PATH, then a build from the Go module proxy into
the cache (``go build helm.sh/helm/v3/cmd/helm`` in a scratch module; a few minutes cold on 2 cores).  The cache comes
before PATH so every test session uses the pinned version whatever the machine happens to have installed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from spiderpool.devcluster.binaries import BuildError, build_lock, cache_root, go_build_with_progress, run_go

HELM_VERSION = "v3.21.4"
_PACKAGE = "helm.sh/helm/v3/cmd/helm"


def _log(message: str) -> None:
    print(f"[helm] {message}", file=sys.stderr, flush=True)


def helm_dir(version: str = HELM_VERSION) -> Path:
    return cache_root() / "helm" / version


def find_helm(version: str = HELM_VERSION) -> Path | None:
    explicit = os.environ.get("SPIDERPOOL_HELM")
    candidates = [Path(explicit)] if explicit else []
    candidates.append(helm_dir(version) / "bin" / "helm")
    on_path = shutil.which("helm")
    if on_path:
        candidates.append(Path(on_path))
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    return None


def ensure_helm(version: str = HELM_VERSION) -> Path:
    """Return a helm executable, building it into the cache when none is found."""
    found = find_helm(version)
    if found is not None:
        return found
    build_helm(version)
    built = helm_dir(version) / "bin" / "helm"
    if not built.is_file():
        raise BuildError(f"helm still missing after a build into {built.parent}")
    return built


def run_helm(args: Sequence[str], *, helm: Path | None = None) -> str:
    """``helm ARGS``'s stdout; BuildError carrying helm's stderr when it fails."""
    executable = helm if helm is not None else ensure_helm()
    proc = subprocess.run([str(executable), *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BuildError(f"`helm {' '.join(args)}` failed ({proc.returncode}):\n{proc.stderr.strip()}")
    return proc.stdout


def render_chart(chart: Path, *, release: str, namespace: str, values: Sequence[Path] = (),
                 kube_version: str = "", helm: Path | None = None) -> list[dict[str, Any]]:
    """``helm template`` of ``chart`` as manifests (CRDs from ``crds/`` included), empty documents dropped."""
    args = ["template", release, str(chart), "--namespace", namespace, "--include-crds"]
    args += [item for path in values for item in ("--values", str(path))]
    if kube_version:
        args += ["--kube-version", kube_version]
    return [doc for doc in yaml.safe_load_all(run_helm(args, helm=helm)) if doc]


def _write_module(src: Path, version: str) -> None:
    if shutil.which("go") is None:
        raise BuildError("the `go` toolchain is not on PATH; install Go >= 1.24 to build helm")
    src.mkdir(parents=True, exist_ok=True)
    (src / "go.mod").write_text(
        f"module spiderpool.local/helmbuild\n\ngo 1.24.0\n\nrequire helm.sh/helm/v3 {version}\n\ntool {_PACKAGE}\n"
    )


def _kubernetes_ldflags(src: Path) -> str:
    """As helm's Makefile: the default Kubernetes version (``helm template``, lint) is the client-go it is built with;
    without these flags it would be v1.20 and refuse charts that require a newer one."""
    client_go = run_go(["go", "list", "-m", "-f", "{{.Version}}", "k8s.io/client-go"], src).strip()
    minor = client_go.removeprefix("v0.").split(".")[0]
    return " ".join(f"-X helm.sh/helm/v3/pkg/{package}.k8sVersion{part}={value}"
                    for package in ("chartutil", "lint/rules") for part, value in (("Major", "1"), ("Minor", minor)))


def _go_build(src: Path, out: Path, version: str) -> None:
    ldflags = f"-s -w -X helm.sh/helm/v3/internal/version.version={version} {_kubernetes_ldflags(src)}"
    cmd = ["go", "build", "-v", "-trimpath", f"-ldflags={ldflags}", "-o", str(out / "helm"), _PACKAGE]
    go_build_with_progress(cmd, cwd=src, label="helm")


def build_helm(version: str = HELM_VERSION) -> None:
    root = helm_dir(version)
    with build_lock(root):
        out = root / "bin"
        if (out / "helm").is_file():
            return
        _log(f"building helm {version} into {out} (cold: a few minutes on 2 cores; cached afterwards)")
        src = root / "src"
        _write_module(src, version)
        _log("resolving modules (go mod tidy)")
        run_go(["go", "mod", "tidy"], src)
        tmp = root / "bin.partial"
        tmp.mkdir(parents=True, exist_ok=True)
        _go_build(src, tmp, version)
        out.mkdir(parents=True, exist_ok=True)
        os.replace(tmp / "helm", out / "helm")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build or locate the pinned helm binary.")
    parser.add_argument("--version", default=HELM_VERSION)
    args = parser.parse_args(argv)
    try:
        path = ensure_helm(args.version)
    except BuildError as exc:
        _log(f"error: {exc}")
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
