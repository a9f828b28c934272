"""The status upstream's controller keeps on the SpiderCoordinator (``updatePodAndServerCIDR``), as a pure decision.

The controller gathers the facts (kubeadm-config, kube-controller-manager / kube-apiserver static pods, ServiceCIDR
objects, Calico IPPools, Cilium's ConfigMap, the default CNI on the controller's host) and this module turns them
into ``status``: phase ``Synced`` or ``NotReady`` with the reason, ``overlayPodCIDR`` per ``podCIDRType``, and
``serviceCIDR``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import ip_network
from typing import Any, Final

from spiderpool.core.coordinator_spec import NOT_READY, SYNCED

_KUBEADM_POD: Final = re.compile(r"podSubnet:\s*(\S+)")
_KUBEADM_SERVICE: Final = re.compile(r"serviceSubnet:\s*(\S+)")
_CLUSTER_CIDR: Final = re.compile(r"--cluster-cidr=(.*)")
_SERVICE_RANGE: Final = re.compile(r"--service-cluster-ip-range=(.*)")


def _cidrs(text: str) -> list[str]:
    found = []
    for item in text.split(","):
        item = item.strip()
        try:
            ip_network(item, strict=False)
        except ValueError:
            continue
        found.append(item)
    return found


def kubeadm_cidrs(data: Mapping[str, str]) -> tuple[list[str], list[str]] | None:
    """(pod CIDRs, service CIDRs) of the ``kubeadm-config`` ConfigMap's ClusterConfiguration; None without it."""
    text = data.get("ClusterConfiguration")
    if text is None:
        return None
    pod, service = _KUBEADM_POD.search(text), _KUBEADM_SERVICE.search(text)
    return (_cidrs(pod.group(1)) if pod else []), (_cidrs(service.group(1)) if service else [])


def static_pod_cidrs(pod: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(``--cluster-cidr``, ``--service-cluster-ip-range``) from the first container's command, then its args."""
    containers = pod.get("spec", {}).get("containers") or [{}]
    found: dict[re.Pattern[str], str] = {}
    for words in (containers[0].get("command") or [], containers[0].get("args") or []):
        for word in words:
            for pattern in (_CLUSTER_CIDR, _SERVICE_RANGE):
                match = pattern.search(word)
                if match and pattern not in found:
                    found[pattern] = match.group(1)
    return _cidrs(found.get(_CLUSTER_CIDR, "")), _cidrs(found.get(_SERVICE_RANGE, ""))


def pod_cidr_type_of_cni(name: str) -> str:
    """Upstream's ``fetchType``: the podCIDRType that ``auto`` means for the default CNI's network name."""
    return {"calico": "calico", "k8s-pod-network": "calico", "cilium": "cilium", "flannel": "cluster"}.get(name, "none")


@dataclass(frozen=True, slots=True)
class ClusterFacts:
    """What the controller read. ``*_error``: why a source could not be read (the phase becomes NotReady)."""

    kubeadm: tuple[list[str], list[str]] | None = None
    controller_manager: tuple[list[str], list[str]] | None = None  # None: no kube-controller-manager pod
    apiserver_service_cidrs: list[str] = field(default_factory=list)
    pods_error: str = ""
    default_cni: str | None = None  # network name of the default CNI (for podCIDRType auto)
    default_cni_error: str = ""
    service_cidr_objects: Sequence[str] | None = None  # None: the ServiceCIDR API is not served
    calico_pools: Sequence[str] | None = None  # enabled Calico IPPool CIDRs, oldest first; None: not readable
    calico_error: str = ""
    cilium_config: Mapping[str, str] | None = None
    cilium_pools: Sequence[str] | None = None  # CiliumPodIPPool CIDRs; None: multi-pool not available


def _not_ready(reason: str) -> dict[str, Any]:
    return {"phase": NOT_READY, "reason": reason, "overlayPodCIDR": [], "serviceCIDR": []}


def plan_coordinator_status(spec: Mapping[str, Any], current: Mapping[str, Any], facts: ClusterFacts
                            ) -> dict[str, Any]:
    """The status to write (``current``: the status now, kept where upstream keeps it)."""
    kind = spec.get("podCIDRType") or "auto"
    if kind == "auto":
        if facts.default_cni_error:
            return _not_ready(facts.default_cni_error)
        kind = pod_cidr_type_of_cni(facts.default_cni or "")
    pod_cidrs, service_cidrs = facts.kubeadm or ([], [])
    if not pod_cidrs or not service_cidrs:
        if facts.pods_error:
            return _not_ready(facts.pods_error)
        if facts.controller_manager is None:
            return _not_ready("No kube-controller-manager pod found, unable to get clusterCIDR")
        pod_cidrs, service_cidrs = facts.controller_manager
        service_cidrs = service_cidrs or list(facts.apiserver_service_cidrs)
    status = {"phase": current.get("phase", ""), "reason": current.get("reason", ""),
              "overlayPodCIDR": list(current.get("overlayPodCIDR") or []),
              "serviceCIDR": list(current.get("serviceCIDR") or [])}
    overlay, error = _overlay(kind, pod_cidrs, facts)
    if error:
        return {**status, "phase": NOT_READY, "reason": error, "overlayPodCIDR": []}
    status["overlayPodCIDR"] = overlay
    objects = facts.service_cidr_objects
    status["serviceCIDR"] = list(objects) if objects is not None else service_cidrs
    return {**status, "phase": SYNCED, "reason": ""}


def _overlay(kind: str, pod_cidrs: list[str], facts: ClusterFacts) -> tuple[list[str], str]:
    if kind == "cluster":
        return pod_cidrs, ""
    if kind == "calico":
        if facts.calico_pools is None:
            return [], facts.calico_error or "Calico IPPools are not readable (is Calico installed?)"
        return list(facts.calico_pools), ""
    if kind == "cilium":
        return _cilium(pod_cidrs, facts)
    return [], ""


def _cilium(pod_cidrs: list[str], facts: ClusterFacts) -> tuple[list[str], str]:
    if facts.cilium_pools is None and (facts.cilium_config or {}).get("ipam") == "multi-pool":
        return [], "the cilium multi-pool feature is unavailable"
    config = facts.cilium_config
    if config is None:
        return [], "Cilium needs to be installed first (its ConfigMap is missing)"
    ipam = config.get("ipam", "")
    if ipam in ("cluster-pool", "cluster-pool-v2beta"):
        found = []
        for key in ("cluster-pool-ipv4-cidr", "cluster-pool-ipv6-cidr"):
            if key in config:
                value = config[key].strip()
                try:
                    ip_network(value, strict=False)
                except ValueError:
                    return [], f"{key}: invalid CIDR {value!r}"
                found.append(value)
        return found, ""
    if ipam == "multi-pool":
        return list(facts.cilium_pools or []), ""
    if ipam == "kubernetes":
        return pod_cidrs, ""
    return [], f"unsupported Cilium IPAM mode: {ipam}"
