"""SpiderMultusConfig defaulting, as upstream's mutating webhook does it (``mutateSpiderMultusConfig``).

Works on the object as JSON (what the API server stores). An empty list is what Go's ``omitempty`` drops, so only
the defaults that survive a round trip through upstream's types are written: scalars and explicitly empty strings.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Final

CR_NAME: Final = "multus.spidernet.io/cr-name"
CNI_VERSION: Final = "multus.spidernet.io/cni-version"
CNI_CONFIG_NAME: Final = "cni.spidernet.io/cniconfig-name"
RESOURCE_NAME: Final = "k8s.v1.cni.cncf.io/resourceName"
RDMA_RESOURCE_INJECT: Final = "cni.spidernet.io/rdma-resource-inject"
NETWORK_RESOURCE_INJECT: Final = "cni.spidernet.io/network-resource-inject"
DEFAULT_CNI_VERSION: Final = "0.3.1"
SUPPORTED_CNI_VERSIONS: Final = ("0.3.0", "0.3.1", "0.4.0", "1.0.0")

CNI_TYPES: Final = ("macvlan", "ipvlan", "vlan", "sriov", "ovs", "ib-sriov", "ipoib", "custom")
# cniType -> the spec key of its configuration block.
CONFIG_BLOCKS: Final = {
    "macvlan": "macvlan", "ipvlan": "ipvlan", "vlan": "vlan", "sriov": "sriov", "ovs": "ovs",
    "ib-sriov": "ibsriov", "ipoib": "ipoib", "custom": "customCNI",
}

_MASTER_NIC_DEFAULTS: Final = {"vlanID": 0, "mtu": 0, "rdmaResourceName": ""}
_BLOCK_DEFAULTS: Final[Mapping[str, Mapping[str, object]]] = {
    "macvlan": _MASTER_NIC_DEFAULTS,
    "ipvlan": _MASTER_NIC_DEFAULTS,
    "vlan": {"mtu": 0, "rdmaResourceName": ""},
    "sriov": {"vlanID": 0, "mtu": 0, "minTxRateMbps": 0, "maxTxRateMbps": 0, "rdmaIsolation": False,
              "resourceName": ""},
    "ib-sriov": {"pkey": "", "enableIbKubernetes": False, "rdmaIsolation": True, "resourceName": "",
                 "linkState": "enable"},
    "ipoib": {},
    "ovs": {"vlan": 0, "deviceID": ""},  # deviceID: a Go string without omitempty
}
_COORDINATOR_WHEN_ABSENT: Final = {"mode": "auto", "vethLinkAddress": "", "podMACPrefix": "", "podDefaultRouteNIC": "",
                                   "podRPFilter": 0, "tunePodRoutes": True}
_COORDINATOR_WHEN_PRESENT: Final = {"mode": "auto", "podMACPrefix": "", "podDefaultRouteNIC": "",
                                    "tunePodRoutes": False, "txQueueLen": 0, "podRPFilter": 0}


def default_multus_config(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the SpiderMultusConfig ``obj`` with upstream's webhook defaults applied."""
    result = copy.deepcopy(dict(obj))
    spec: dict[str, Any] = result.setdefault("spec", {})
    cni_type = spec.setdefault("cniType", "custom")
    block = spec.get(CONFIG_BLOCKS.get(cni_type, ""))
    if cni_type == "custom":
        spec.setdefault("customCNI", "")
        spec.pop("coordinator", None)
        spec["enableCoordinator"] = False
    else:
        if isinstance(block, dict):
            _fill_block(cni_type, block)
        spec["coordinator"] = _default_coordinator(spec.get("coordinator"))
    if spec.get("chainCNIJsonData") is None:
        spec["chainCNIJsonData"] = []
    _inject_labels(result)
    return result


def _fill_block(cni_type: str, block: dict[str, Any]) -> None:
    for key, value in _BLOCK_DEFAULTS.get(cni_type, {}).items():
        block.setdefault(key, value)
    if cni_type == "vlan":
        mode = block.setdefault("vlanMode", "manual")
        if mode == "manual":
            block.setdefault("vlanID", 0)
    bond = block.get("bond")
    if isinstance(bond, dict):
        bond.setdefault("options", "")
    pools = block.get("ippools")
    if not isinstance(pools, dict):
        block["ippools"] = pools = {}
    if cni_type == "sriov":
        pools.setdefault("matchMasterSubnet", False)


def _default_coordinator(coordinator: object) -> dict[str, Any]:
    if not isinstance(coordinator, dict):
        return dict(_COORDINATOR_WHEN_ABSENT)
    for key, value in _COORDINATOR_WHEN_PRESENT.items():
        coordinator.setdefault(key, value)
    return coordinator


def _inject_labels(obj: dict[str, Any]) -> None:
    metadata = obj.setdefault("metadata", {})
    annotations = metadata.get("annotations") or {}
    for key in (RDMA_RESOURCE_INJECT, NETWORK_RESOURCE_INJECT):
        if key in annotations:
            metadata.setdefault("labels", {})[key] = annotations[key]
