"""Multus (thin plugin) v4.2.3 as the node's primary CNI configuration, with a cluster network and the NAD CRD.

Built from the Go module proxy (``gopkg.in/k8snetworkplumbingwg/multus-cni.v4``: the module path its go.mod
declares; the proxy refuses the version list, so the exact version is asked for) in a scratch module, cached by
version like the Kubernetes binaries.  containerd's CNI configuration directory holds only Multus' configuration;
Multus gives every pod ``eth0`` from the cluster network (Debian's ptp + host-local, a file outside that directory)
and the networks the pod's ``k8s.v1.cni.cncf.io/networks`` annotation names from NetworkAttachmentDefinitions.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from spiderpool.devcluster.apiserver import SERVICE_CLUSTER_IP_RANGE
from spiderpool.devcluster.binaries import BuildError, build_lock, cache_root, go_build_with_progress, run_go
from spiderpool.devcluster.realnode.layout import NodeLayout

MULTUS_VERSION = "v4.2.3"
_MODULE = "gopkg.in/k8snetworkplumbingwg/multus-cni.v4"
_PACKAGE = f"{_MODULE}/cmd/multus"
CLUSTER_SUBNET = "10.250.200.0/24"
DEBIAN_PLUGINS = Path("/usr/lib/cni")


def multus_dir(version: str = MULTUS_VERSION) -> Path:
    return cache_root() / "multus" / version


def ensure_multus(version: str = MULTUS_VERSION) -> Path:
    out = multus_dir(version) / "bin" / "multus"
    if out.is_file():
        return out
    if shutil.which("go") is None:
        raise BuildError("the `go` toolchain is not on PATH; install Go >= 1.24 to build Multus")
    root = multus_dir(version)
    with build_lock(root):
        if out.is_file():
            return out
        print(f"[multus] building the thin plugin {version} into {out.parent} (cached afterwards)", file=sys.stderr)
        src = root / "src"
        src.mkdir(parents=True, exist_ok=True)
        (src / "go.mod").write_text(
            f"module spiderpool.local/multusbuild\n\ngo 1.24.0\n\nrequire {_MODULE} {version}\n\ntool {_PACKAGE}\n")
        run_go(["go", "mod", "tidy"], src)
        tmp = root / "bin.partial"
        tmp.mkdir(parents=True, exist_ok=True)
        ldflags = f"-s -w -X {_MODULE}/pkg/multus.version={version}"
        go_build_with_progress(["go", "build", "-v", "-trimpath", f"-ldflags={ldflags}", "-o", str(tmp / "multus"),
                                _PACKAGE], cwd=src, label="multus")
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp / "multus", out)
    return out


def install_plugins(layout: NodeLayout, multus: Path) -> None:
    """The node's CNI bin directory: Debian's plugins linked in, Multus copied (the chart's agent adds ours)."""
    layout.cni_bin.mkdir(parents=True, exist_ok=True)
    if not DEBIAN_PLUGINS.is_dir():
        raise BuildError(f"{DEBIAN_PLUGINS} is missing: apt install containernetworking-plugins (`make setup`)")
    for plugin in DEBIAN_PLUGINS.iterdir():
        link = layout.cni_bin / plugin.name
        if not link.exists():
            link.symlink_to(plugin)
    shutil.copy2(multus, layout.cni_bin / "multus")


def cluster_network(layout: NodeLayout) -> dict[str, Any]:
    """One plugin, not a list: Multus v4.2.3 caches a `.conflist` delegate re-encoded through its own structs, which
    drops the plugins' fields (ptp's `ipam.ranges`), so every CNI DEL of eth0 failed ("no IP ranges specified") and
    kubelet could never remove a pod; a single `.conf` is cached verbatim."""
    return {
        "cniVersion": "0.3.1",
        "name": "cluster",
        "type": "ptp",
        "ipMasq": False,
        "ipam": {"type": "host-local", "dataDir": str(layout.cni_state / "host-local"),
                 "ranges": [[{"subnet": CLUSTER_SUBNET}]], "routes": [{"dst": "0.0.0.0/0"}]},
    }


def write_cni_config(layout: NodeLayout, kubeconfig: Path) -> None:
    """Multus as the only configuration containerd reads; the cluster network beside it, outside that directory."""
    layout.cni_state.mkdir(parents=True, exist_ok=True)
    cluster = layout.cni_state / "cluster.conf"
    cluster.write_text(json.dumps(cluster_network(layout), indent=2))
    multus = {
        "cniVersion": "0.3.1",
        "name": "multus-cni-network",
        "type": "multus",
        "kubeconfig": str(kubeconfig),
        "clusterNetwork": str(cluster),
        "cniDir": str(layout.cni_state / "multus"),
        "binDir": str(layout.cni_bin),
        "confDir": str(layout.cni_conf),
        "logFile": str(layout.log("multus")),
        "logLevel": "verbose",
    }
    layout.cni_conf.mkdir(parents=True, exist_ok=True)
    # containerd made it 0700; a node's /etc/cni/net.d is 0755, and the controller (not root) reads the default
    # network's name there for the SpiderCoordinator's podCIDRType auto (NotReady, "Permission denied", otherwise).
    layout.cni_conf.chmod(0o755)
    partial = layout.cni_conf / "00-multus.conf.partial"
    partial.write_text(json.dumps(multus, indent=2))
    os.replace(partial, layout.cni_conf / "00-multus.conf")


def nad_crd() -> dict[str, Any]:
    """The NetworkAttachmentDefinition CRD (k8s.cni.cncf.io/v1), as the Network Plumbing Working Group defines it."""
    config = {"type": "string", "description": "a CNI configuration (JSON) for the network"}
    schema = {"type": "object", "properties": {
        "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
        "spec": {"type": "object", "properties": {"config": config}}}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "network-attachment-definitions.k8s.cni.cncf.io"},
        "spec": {
            "group": "k8s.cni.cncf.io",
            "scope": "Namespaced",
            "names": {"plural": "network-attachment-definitions", "singular": "network-attachment-definition",
                      "kind": "NetworkAttachmentDefinition", "shortNames": ["net-attach-def"]},
            "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": schema}}],
        },
    }


def kubeadm_config() -> dict[str, Any]:
    """ConfigMap kube-system/kubeadm-config as kubeadm writes it (only its networking): where the controller reads
    the cluster's pod and Service CIDRs for the SpiderCoordinator's status, as upstream's does. Without it (no
    kubeadm, kube-controller-manager not a pod) the default SpiderCoordinator stays NotReady and every coordinator
    ADD fails."""
    text = (f"apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nnetworking:\n"
            f"  podSubnet: {CLUSTER_SUBNET}\n  serviceSubnet: {SERVICE_CLUSTER_IP_RANGE}\n")
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kubeadm-config", "namespace": "kube-system"},
            "data": {"ClusterConfiguration": text}}
