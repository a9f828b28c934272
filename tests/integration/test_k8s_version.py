"""The control plane's binaries carry the release version: what ``helm install`` and kubectl read from ``/version``."""

from __future__ import annotations

from pathlib import Path

import pytest

from spiderpool.devcluster.binaries import K8S_VERSION
from spiderpool.devcluster.cluster import ControlPlane
from spiderpool.devcluster.helm import ensure_helm, run_helm

pytestmark = pytest.mark.integration
CHART = Path(__file__).resolve().parents[2] / "charts" / "spiderpool"


def test_v01_apiserver_version_is_the_pinned_release(control_plane: ControlPlane) -> None:
    """V01: kube-apiserver's /version answers the pinned release (v0.0.0-master before it was stamped)."""
    info = control_plane.sync_api().get("/version")
    major, minor = K8S_VERSION.removeprefix("v").split(".")[:2]
    assert (info["gitVersion"], info["major"], info["minor"]) == (K8S_VERSION, major, minor)


def test_v02_helm_accepts_the_chart_against_the_live_server(control_plane: ControlPlane) -> None:
    """V02: `helm install --dry-run=server` against the live apiserver passes the chart's kubeVersion constraint
    (unstamped: "chart requires kubeVersion: >=1.21.0-0 which is incompatible with Kubernetes v0.0.0-master")."""
    out = run_helm(["install", "v02", str(CHART), "--namespace", "kube-system", "--dry-run=server",
                    "--kubeconfig", str(control_plane.kubeconfig)], helm=ensure_helm())
    assert "STATUS: pending-install" in out, out
