"""SpiderCoordinator status planning and the agent's coordinator config (pure)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from swagger_check import decode_problems

from spiderpool.core.coordinator_config import CoordinatorNotReady, coordinator_config, ready_coordinator
from spiderpool.core.coordinator_status import (
    ClusterFacts,
    kubeadm_cidrs,
    plan_coordinator_status,
    static_pod_cidrs,
)

OPENAPI = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "coordinator" /
                      "upstream_agent_openapi.json").read_text())
KUBEADM = {"ClusterConfiguration": "networking:\n  dnsDomain: cluster.local\n  podSubnet: 10.244.0.0/16,fd00:10::/56\n"
                                   "  serviceSubnet: 10.96.0.0/12\n"}
KCM = {"spec": {"containers": [{"command": ["kube-controller-manager", "--cluster-cidr=10.10.0.0/16",
                                            "--service-cluster-ip-range=10.20.0.0/16,fd00:20::/108"]}]}}


def test_scc01_cidrs_from_kubeadm_config_and_static_pods() -> None:
    """SCC01: podSubnet/serviceSubnet of kubeadm-config (comma lists); --cluster-cidr and
    --service-cluster-ip-range of a static pod's command, else its args."""
    assert kubeadm_cidrs(KUBEADM) == (["10.244.0.0/16", "fd00:10::/56"], ["10.96.0.0/12"])
    assert kubeadm_cidrs({}) is None
    assert static_pod_cidrs(KCM) == (["10.10.0.0/16"], ["10.20.0.0/16", "fd00:20::/108"])
    args = {"spec": {"containers": [{"command": ["kcm"], "args": ["--cluster-cidr=10.1.0.0/16"]}]}}
    assert static_pod_cidrs(args) == (["10.1.0.0/16"], [])


STATUS_CASES: list[tuple[str, dict[str, Any], ClusterFacts, dict[str, Any]]] = [
    ("cluster from kubeadm", {"podCIDRType": "cluster"}, ClusterFacts(kubeadm=kubeadm_cidrs(KUBEADM)),
     {"phase": "Synced", "reason": "", "overlayPodCIDR": ["10.244.0.0/16", "fd00:10::/56"],
      "serviceCIDR": ["10.96.0.0/12"]}),
    ("ServiceCIDR objects win", {"podCIDRType": "cluster"},
     ClusterFacts(kubeadm=kubeadm_cidrs(KUBEADM), service_cidr_objects=["10.0.0.0/24"]),
     {"phase": "Synced", "reason": "", "overlayPodCIDR": ["10.244.0.0/16", "fd00:10::/56"],
      "serviceCIDR": ["10.0.0.0/24"]}),
    ("kcm when no kubeadm", {"podCIDRType": "cluster"}, ClusterFacts(controller_manager=static_pod_cidrs(KCM)),
     {"phase": "Synced", "reason": "", "overlayPodCIDR": ["10.10.0.0/16"],
      "serviceCIDR": ["10.20.0.0/16", "fd00:20::/108"]}),
    ("apiserver flags for the service range", {"podCIDRType": "none"},
     ClusterFacts(controller_manager=(["10.10.0.0/16"], []), apiserver_service_cidrs=["10.30.0.0/16"]),
     {"phase": "Synced", "reason": "", "overlayPodCIDR": [], "serviceCIDR": ["10.30.0.0/16"]}),
    ("nothing found", {"podCIDRType": "cluster"}, ClusterFacts(),
     {"phase": "NotReady", "reason": "No kube-controller-manager pod found, unable to get clusterCIDR",
      "overlayPodCIDR": [], "serviceCIDR": []}),
    ("calico pools", {"podCIDRType": "calico"},
     ClusterFacts(kubeadm=kubeadm_cidrs(KUBEADM), calico_pools=["192.168.0.0/16"]),
     {"phase": "Synced", "reason": "", "overlayPodCIDR": ["192.168.0.0/16"], "serviceCIDR": ["10.96.0.0/12"]}),
    ("calico missing", {"podCIDRType": "calico"},
     ClusterFacts(kubeadm=kubeadm_cidrs(KUBEADM), calico_error="no calico"),
     {"phase": "NotReady", "reason": "no calico", "overlayPodCIDR": [], "serviceCIDR": []}),
    ("cilium cluster-pool", {"podCIDRType": "cilium"},
     ClusterFacts(kubeadm=kubeadm_cidrs(KUBEADM), cilium_config={"ipam": "cluster-pool",
                                                                 "cluster-pool-ipv4-cidr": "10.0.0.0/8"}),
     {"phase": "Synced", "reason": "", "overlayPodCIDR": ["10.0.0.0/8"], "serviceCIDR": ["10.96.0.0/12"]}),
    ("cilium kubernetes ipam", {"podCIDRType": "cilium"},
     ClusterFacts(kubeadm=kubeadm_cidrs(KUBEADM), cilium_config={"ipam": "kubernetes"}),
     {"phase": "Synced", "reason": "", "overlayPodCIDR": ["10.244.0.0/16", "fd00:10::/56"],
      "serviceCIDR": ["10.96.0.0/12"]}),
    ("auto means flannel -> cluster", {"podCIDRType": "auto"},
     ClusterFacts(kubeadm=kubeadm_cidrs(KUBEADM), default_cni="flannel"),
     {"phase": "Synced", "reason": "", "overlayPodCIDR": ["10.244.0.0/16", "fd00:10::/56"],
      "serviceCIDR": ["10.96.0.0/12"]}),
    ("auto, unknown CNI -> none", {"podCIDRType": "auto"},
     ClusterFacts(kubeadm=kubeadm_cidrs(KUBEADM), default_cni="macvlan"),
     {"phase": "Synced", "reason": "", "overlayPodCIDR": [], "serviceCIDR": ["10.96.0.0/12"]}),
]


@pytest.mark.parametrize(("spec", "facts", "want"), [c[1:] for c in STATUS_CASES], ids=[c[0] for c in STATUS_CASES])
def test_scc02_status_per_pod_cidr_type(spec: dict[str, Any], facts: ClusterFacts, want: dict[str, Any]) -> None:
    """SCC02: phase, reason, overlayPodCIDR and serviceCIDR as upstream decides them for each podCIDRType."""
    assert plan_coordinator_status(spec, {}, facts) == want


def coordinator(phase: str = "Synced", **spec: Any) -> dict[str, Any]:
    base = {"mode": "auto", "podCIDRType": "cluster", "tunePodRoutes": True, "hostRuleTable": 500, "podRPFilter": 0,
            "txQueueLen": 0, "vethLinkAddress": "", "vethMTU": 1500, "hijackCIDR": ["169.254.0.0/16"]}
    return {"metadata": {"name": "default"}, "spec": {**base, **spec},
            "status": {"phase": phase, "overlayPodCIDR": ["10.244.0.0/16"], "serviceCIDR": ["10.96.0.0/12"]}}


def test_scc03_config_has_upstreams_fields_and_decodes_into_its_model() -> None:
    """SCC03: the agent's coordinator config has upstream's fields (zero values omitted as go-swagger does), the
    pod's default-route-nic annotation wins, and it decodes into upstream's CoordinatorConfig model."""
    coord = coordinator(podDefaultRouteNIC="net1", podMACPrefix="0a:1b",
                        policyRoutes=[{"dst": "198.51.100.0/24", "gw": "192.0.2.1"}])
    config = coordinator_config(coord, {"ipam.spidernet.io/default-route-nic": "net2"})
    assert config == {"hijackCIDR": ["169.254.0.0/16"], "hostRuleTable": 500, "mode": "auto",
                      "overlayPodCIDR": ["10.244.0.0/16"], "podDefaultRouteNIC": "net2", "podMACPrefix": "0a:1b",
                      "policyRoutes": [{"dst": "198.51.100.0/24", "gw": "192.0.2.1"}],
                      "serviceCIDR": ["10.96.0.0/12"], "tunePodRoutes": True, "vethMTU": 1500}
    schema = OPENAPI["path"]["get"]["responses"]["200"]["schema"]
    assert decode_problems(config, schema, OPENAPI["definitions"]) == []
    assert coordinator_config(coord, {})["podDefaultRouteNIC"] == "net1"


def test_scc04_not_synced_or_missing_coordinator_fails_as_upstream() -> None:
    """SCC04: no SpiderCoordinator, or the first one not Synced: upstream's error messages."""
    with pytest.raises(CoordinatorNotReady, match="coordinator config not found"):
        ready_coordinator([])
    with pytest.raises(CoordinatorNotReady, match="spidercoordinator: default no ready"):
        ready_coordinator([coordinator(phase="NotReady")])
    assert ready_coordinator([coordinator()])["metadata"]["name"] == "default"
