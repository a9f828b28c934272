"""The real node's generated configurations: what this machine kind needs, and every path under the state dir."""

from __future__ import annotations

import json
from pathlib import Path

from spiderpool.core.coordinator_status import kubeadm_cidrs
from spiderpool.devcluster.apiserver import SERVICE_CLUSTER_IP_RANGE
from spiderpool.devcluster.realnode.chart import machine_values
from spiderpool.devcluster.realnode.containerd import config_toml
from spiderpool.devcluster.realnode.kubelet import kubelet_config
from spiderpool.devcluster.realnode.layout import NodeLayout
from spiderpool.devcluster.realnode.multus import CLUSTER_SUBNET, cluster_network, kubeadm_config

STATE = Path("/state/node")


def _paths(value: object) -> list[str]:
    if isinstance(value, dict):
        return [p for v in value.values() for p in _paths(v)]
    if isinstance(value, list):
        return [p for v in value for p in _paths(v)]
    text = str(value).removeprefix("unix://")
    return [text] if text.startswith("/") else []


def test_ru01_containerd_config_clamps_oom_score_and_keeps_state_inside() -> None:
    """RU01: containerd's CRI config has restrict_oom_score_adj (root here lacks CAP_SYS_RESOURCE), the cgroupfs
    driver, and root, state, socket, runc root and CNI directories all under the node's state directory."""
    text = config_toml(NodeLayout(STATE))
    assert "restrict_oom_score_adj = true" in text
    assert "SystemdCgroup = false" in text
    paths = [line.split('"')[1] for line in text.splitlines() if '"/' in line]
    assert len(paths) >= 8, paths
    assert all(p.startswith(f"{STATE}/") for p in paths), paths


def test_ru02_kubelet_config_allows_cgroup_v1_and_keeps_state_inside() -> None:
    """RU02: kubelet allows cgroup v1, no QoS tree, no allocatable enforcement, x509 clients of the node's CA only,
    and every path it is given is under the state directory."""
    config = kubelet_config(NodeLayout(STATE), address="192.0.2.2", port=10250)
    assert (config["failCgroupV1"], config["cgroupsPerQOS"], config["enforceNodeAllocatable"]) == (False, False, [])
    assert config["authentication"] == {"anonymous": {"enabled": False}, "webhook": {"enabled": False},
                                        "x509": {"clientCAFile": f"{STATE}/pki/kubelet-client-ca.crt"}}
    paths = [p for p in _paths(config) if p != "/etc/resolv.conf"]
    assert paths
    assert all(p.startswith(f"{STATE}/") for p in paths), paths


def test_ru03_chart_values_change_only_the_documented_deviations() -> None:
    """RU03: the values the machine adds to the chart's defaults are exactly the CNI directories and the apiserver
    address for both components, no surge for the controller's hostNetwork pod on one node, and the agent's netns
    directory as /run/netns (docs/real-node.md lists these)."""
    values = machine_values(NodeLayout(STATE), 6443)
    env = [{"name": "KUBERNETES_SERVICE_HOST", "value": "127.0.0.1"}, {"name": "KUBERNETES_SERVICE_PORT",
                                                                       "value": "6443"}]
    assert values == {
        "global": {"cniBinHostPath": f"{STATE}/cni/bin", "cniConfHostPath": f"{STATE}/cni/net.d"},
        "spiderpoolAgent": {"extraEnv": env, "netnsHostPath": "/run/netns"},
        "spiderpoolController": {"extraEnv": env, "updateStrategy": {
            "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}},
    }
    network = cluster_network(NodeLayout(STATE))
    assert json.loads(json.dumps(network))["ipam"]["dataDir"].startswith(f"{STATE}/")


def test_ru04_kubeadm_config_gives_the_coordinator_the_cluster_cidrs() -> None:
    """RU04: the node publishes kube-system/kubeadm-config as kubeadm does, so the controller reads the cluster
    network's pod CIDR and the apiserver's Service range from it (the default SpiderCoordinator is then Synced)."""
    config = kubeadm_config()
    assert (config["metadata"]["namespace"], config["metadata"]["name"]) == ("kube-system", "kubeadm-config")
    assert kubeadm_cidrs(config["data"]) == ([CLUSTER_SUBNET], [SERVICE_CLUSTER_IP_RANGE])
