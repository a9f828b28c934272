"""The chart installed by helm on the real node: the agent DaemonSet and the controller Deployment become ready and
the agent's init container installs the CNI executable into the node's CNI directory."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

from cluster_support import get, wait_for

from spiderpool.devcluster.realnode.chart import NAMESPACE
from spiderpool.devcluster.realnode.node import RealNode


def test_rn01_helm_install_ready_and_cni_executable_installed(real_node: RealNode) -> None:
    """RN01: `helm install` (defaults + the machine's values): DaemonSet 1/1 ready on the node, Deployment 1/1 ready,
    the controller passed its startup probe, the init container `install-cni` exited 0 and left an executable
    `spiderpool` that answers CNI VERSION, and the controller created the chart's default SpiderCoordinator."""
    ds = get(real_node, "daemonset", "spiderpool-agent", "-n", NAMESPACE)
    assert (ds["status"]["desiredNumberScheduled"], ds["status"]["numberReady"]) == (1, 1), ds["status"]
    deploy = get(real_node, "deployment", "spiderpool-controller", "-n", NAMESPACE)
    assert deploy["status"].get("readyReplicas") == 1, deploy["status"]
    controller_label = "app.kubernetes.io/name=spiderpool-controller"
    (controller,) = get(real_node, "pods", "-n", NAMESPACE, "-l", controller_label)["items"]
    (main,) = controller["status"]["containerStatuses"]
    assert main["started"] is True, main  # the startup probe passed (a controller failing it is restarted by kubelet)
    (agent,) = get(real_node, "pods", "-n", NAMESPACE, "-l", "app.kubernetes.io/name=spiderpool-agent")["items"]
    assert agent["spec"]["nodeName"] == real_node.node_name
    (init,) = agent["status"]["initContainerStatuses"]
    assert init["name"] == "install-cni", init
    assert init["state"]["terminated"]["exitCode"] == 0, init
    executable = real_node.layout.cni_bin / "spiderpool"
    assert executable.is_file(), f"{executable} not installed"
    assert os.access(executable, os.X_OK), f"{executable} not executable"
    env = {"CNI_COMMAND": "VERSION", "PATH": "/usr/bin:/bin"}
    reply = subprocess.run([str(executable)], input=b'{"cniVersion": "1.0.0"}', env=env, capture_output=True,
                           check=True, timeout=10)
    assert "0.3.1" in json.loads(reply.stdout)["supportedVersions"], reply.stdout
    # the controller creates the chart's default SpiderCoordinator once it leads (helm could not: no webhook served yet)
    coordinator = wait_for(lambda: _coordinator(real_node), timeout=120, what="the default SpiderCoordinator")
    assert coordinator["spec"]["mode"] == "auto", coordinator["spec"]


def _coordinator(node: RealNode) -> dict[str, Any] | None:
    found: dict[str, Any] = get(node, "spidercoordinators")
    return next((item for item in found["items"] if item["metadata"]["name"] == "default"), None)
