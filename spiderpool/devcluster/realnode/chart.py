"""The project's Helm chart on the real node, from the working tree, with only what this machine needs changed.

Deviations from the chart's defaults (docs/real-node.md lists them): the CNI directories are the node's own (under
its state directory, so containerd and the agent share them), the agent's netns directory is /run/netns, and both
components reach the apiserver at 127.0.0.1:<port> through ``KUBERNETES_SERVICE_HOST``/``_PORT`` in ``extraEnv`` (no
kube-proxy routes the ClusterIP; kubelet lets a container's env override the service variables).  Image, pull
policy, ports, probes and the socket path are the defaults: the image is imported into containerd under the chart's
own name, so ``IfNotPresent`` never pulls.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import yaml

from spiderpool.devcluster.helm import ensure_helm, run_helm
from spiderpool.devcluster.realnode.layout import NETNS_RUN_DIR, NodeLayout, RealNodeError

if TYPE_CHECKING:
    from spiderpool.devcluster.realnode.node import RealNode

RELEASE = "spiderpool"
NAMESPACE = "kube-system"


def chart_dir(project: Path) -> Path:
    return project / "charts" / "spiderpool"


def machine_values(layout: NodeLayout, apiserver_port: int) -> dict[str, Any]:
    """The values this machine needs on top of the chart's defaults (and nothing else)."""
    port = apiserver_port
    env = [{"name": "KUBERNETES_SERVICE_HOST", "value": "127.0.0.1"},
           {"name": "KUBERNETES_SERVICE_PORT", "value": str(port)}]
    return {
        "global": {"cniBinHostPath": str(layout.cni_bin), "cniConfHostPath": str(layout.cni_conf)},
        # containerd 1.6 checks HostToContainer propagation on the path as given: /var/run is a symlink on this
        # machine's private root mount, /run/netns a shared mount of its own (made by node.shared_netns_dir).
        "spiderpoolAgent": {"extraEnv": env, "netnsHostPath": str(NETNS_RUN_DIR)},
        # One node: a surge pod (hostNetwork, the same ports) could never be scheduled beside its predecessor.
        "spiderpoolController": {"extraEnv": env,
                                 "updateStrategy": {"type": "RollingUpdate",
                                                    "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}},
    }


def helm(node: RealNode, *args: str, values: dict[str, Any] | None = None) -> str:
    files: list[str] = []
    if values is not None:
        path = node.layout.root / "chart-values.yaml"
        path.write_text(yaml.safe_dump(values))
        files = ["--values", str(path)]
    return run_helm([*args, "--kubeconfig", str(node.kubeconfig), "--namespace", NAMESPACE, *files],
                    helm=ensure_helm())


def install(node: RealNode, extra: dict[str, Any] | None = None, *, timeout: int = 240) -> None:
    """``helm upgrade --install`` with the machine's values (plus ``extra``), then wait until both are ready."""
    port = urlsplit(node.running_plane().server).port
    if port is None:
        raise RealNodeError(f"no port in the apiserver URL {node.running_plane().server}")
    values = machine_values(node.layout, port)
    for key, more in (extra or {}).items():
        values[key] = {**values.get(key, {}), **more}
    with node.timings.step("helm upgrade --install"):
        helm(node, "upgrade", "--install", RELEASE, str(chart_dir(node.project)), values=values)
    with node.timings.step("agent DaemonSet and controller Deployment ready"):
        wait_ready(node, timeout=timeout)


def wait_ready(node: RealNode, *, timeout: int = 240) -> None:
    deadline = time.monotonic() + timeout
    for kind in ("daemonset/spiderpool-agent", "deployment/spiderpool-controller"):
        left = max(int(deadline - time.monotonic()), 1)
        try:
            node.kubectl("rollout", "status", "-n", NAMESPACE, kind, f"--timeout={left}s", timeout=left + 30)
        except RealNodeError as exc:
            pods = node.kubectl("get", "pods", "-n", NAMESPACE, "-o", "wide")
            raise RealNodeError(f"{kind} not ready after {timeout}s:\n{pods}\n{exc}") from exc


def uninstall(node: RealNode) -> None:
    helm(node, "uninstall", RELEASE, "--wait")
