"""whereabouts v0.9.2, the peer IPAM of the head-to-head (``perf/bench_peers.py``): built, installed, configured.

Built from the Go module proxy (``github.com/k8snetworkplumbingwg/whereabouts@v0.9.2``, its ``cmd`` package: the
executable a CNI plugin execs) in a scratch module, and cached by version outside the tree, like the Kubernetes
binaries (``~/.cache/spiderpool/whereabouts/v0.9.2/bin/whereabouts``; ``SPIDERPOOL_CACHE_DIR`` moves it).  Its CRDs
come from the same module (``doc/crds/``).  It runs with its own defaults: the Kubernetes backend in the kubeconfig
context's namespace (``kube-system``), the cluster-wide leader Lease (1500 / 1000 / 500 ms), overlapping-range
reservations on.  Only the executable runs: its ``ip-control-loop`` (pod-deletion cleanup, a daily reconciler) is
leak collection, outside the CNI path measured here.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import yaml

from spiderpool.devcluster.binaries import BuildError, build_lock, cache_root, go_build_with_progress, run_go
from spiderpool.k8s.routes import ObjectRoute

WHEREABOUTS_VERSION: Final = "v0.9.2"
MODULE: Final = "github.com/k8snetworkplumbingwg/whereabouts"
_PACKAGE: Final = f"{MODULE}/cmd"
# its go.mod replaces this one module; a dependency's replace lines are ignored by Go, so the scratch module restates it
_REPLACES: Final = "replace github.com/gogo/protobuf => github.com/gogo/protobuf v1.3.2\n"
NAMESPACE: Final = "kube-system"  # the kubeconfig context names none: whereabouts' default
GROUP: Final = "whereabouts.cni.cncf.io"


def whereabouts_dir(version: str = WHEREABOUTS_VERSION) -> Path:
    return cache_root() / "whereabouts" / version


def _log(message: str) -> None:
    print(f"[whereabouts] {message}", file=sys.stderr, flush=True)


def ensure_whereabouts(version: str = WHEREABOUTS_VERSION) -> Path:
    """The cached executable, built first when missing (a cold build takes a few minutes, with progress)."""
    out = whereabouts_dir(version) / "bin" / "whereabouts"
    if out.is_file():
        return out
    if shutil.which("go") is None:
        raise BuildError("the `go` toolchain is not on PATH; install Go >= 1.24 to build whereabouts")
    root = whereabouts_dir(version)
    with build_lock(root):
        if out.is_file():
            return out
        _log(f"building {MODULE}@{version} into {out.parent} (cached afterwards)")
        src = root / "src"
        src.mkdir(parents=True, exist_ok=True)
        (src / "go.mod").write_text(
            f"module spiderpool.local/whereaboutsbuild\n\ngo 1.24.0\n\nrequire {MODULE} {version}\n\n"
            f"{_REPLACES}\ntool {_PACKAGE}\n"
        )
        _log("resolving modules (go mod tidy)")
        run_go(["go", "mod", "tidy"], src)
        tmp = root / "bin.partial"
        tmp.mkdir(parents=True, exist_ok=True)
        stamp = f"-X {MODULE}/pkg/version.Version={version} -X {MODULE}/pkg/version.ReleaseStatus=released"
        go_build_with_progress(["go", "build", "-v", "-trimpath", f"-ldflags=-s -w {stamp}", "-o",
                                str(tmp / "whereabouts"), _PACKAGE], cwd=src, label="whereabouts")
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp / "whereabouts", out)
    return out


def module_dir(version: str = WHEREABOUTS_VERSION) -> Path:
    """The module's source in the Go module cache (downloaded from the proxy when missing)."""
    scratch = whereabouts_dir(version) / "src"
    scratch.mkdir(parents=True, exist_ok=True)
    info = json.loads(run_go(["go", "mod", "download", "-json", f"{MODULE}@{version}"], scratch))
    return Path(info["Dir"])


def crds(version: str = WHEREABOUTS_VERSION) -> list[dict[str, Any]]:
    """The CRDs whereabouts ships (IPPool, OverlappingRangeIPReservation, NodeSlicePool), as in its module."""
    found = sorted((module_dir(version) / "doc" / "crds").glob(f"{GROUP}_*.yaml"))
    if not found:
        raise BuildError(f"no CRDs under doc/crds of {MODULE}@{version}")
    return [doc for path in found for doc in yaml.safe_load_all(path.read_text()) if doc]


def write_flat_file(path: Path, *, kubeconfig: Path) -> Path:
    """``whereabouts.conf`` as its DaemonSet's install script writes it on a node (the executable refuses to run
    without one): the Kubernetes datastore, the kubeconfig, the default reconciler schedule."""
    path.write_text(json.dumps({"datastore": "kubernetes", "kubernetes": {"kubeconfig": str(kubeconfig)},
                                "reconciler_cron_expression": "30 4 * * *"}, indent=2))
    path.chmod(0o600)
    return path


def network_config(*, name: str, master: str, flat_file: Path, subnet: str, first: str, last: str) -> dict[str, Any]:
    """A macvlan network whose IPAM is whereabouts over ``first``-``last`` of ``subnet``, as a NAD would give it
    (``configuration_path``: the node's flat file; the DaemonSet's default path is under /etc/cni); every other
    setting its default."""
    ipam = {"type": "whereabouts", "range": subnet, "range_start": first, "range_end": last,
            "configuration_path": str(flat_file)}
    return {"cniVersion": "1.0.0", "name": name, "type": "macvlan", "master": master, "ipam": ipam}


IPPOOLS: Final = ObjectRoute(f"{GROUP}/v1alpha1", "IPPool", "ippools", True)
RESERVATIONS: Final = ObjectRoute(f"{GROUP}/v1alpha1", "OverlappingRangeIPReservation",
                                  "overlappingrangeipreservations", True)


def allocations_of(pools: Sequence[Mapping[str, Any]]) -> int:
    """Records in IPPools (``spec.allocations``: offset -> pod)."""
    return sum(len((pool.get("spec") or {}).get("allocations") or {}) for pool in pools)
