"""The NetworkAttachmentDefinition a SpiderMultusConfig generates, as upstream's controller renders it.

Input is the stored (defaulted) SpiderMultusConfig as JSON; output the NAD's name, annotations and ``spec.config``.
The plugin chain is ``[ifacer?] + main plugin + [rdma?] + chainCNIJsonData + [coordinator?] + [tuning?]``; every
plugin's keys are emitted in upstream's struct order with Go's ``omitempty`` rules (a pointer that is set is
emitted even when zero, e.g. ``"mtu": 0``), so the JSON matches upstream's byte for byte where Go's encoder allows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from spiderpool.core.multus_defaults import CNI_CONFIG_NAME, CNI_VERSION, CR_NAME, DEFAULT_CNI_VERSION, RESOURCE_NAME

OVS_RESOURCE_PREFIX: Final = "ovs-cni.network.kubevirt.io"
Json = dict[str, Any]


class MultusRenderError(ValueError):
    """The spec cannot be rendered (upstream's controller fails or panics on it); the message names the field."""


@dataclass(frozen=True, slots=True)
class NetworkAttachment:
    name: str
    namespace: str
    annotations: Mapping[str, str]
    config: str  # "" when the NAD has no spec.config (custom without customCNI)

    def body(self, owner: Mapping[str, Any] | None = None) -> Json:
        """The NAD object; ``owner``: the SpiderMultusConfig to name as controlling owner."""
        metadata: Json = {"name": self.name, "namespace": self.namespace, "annotations": dict(self.annotations)}
        if owner is not None:
            metadata["ownerReferences"] = [owner_reference(owner)]
        return {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition", "metadata": metadata,
                "spec": {"config": self.config}}


def owner_reference(smc: Mapping[str, Any]) -> Json:
    meta = smc["metadata"]
    return {"apiVersion": "spiderpool.spidernet.io/v2beta1", "kind": "SpiderMultusConfig", "name": meta["name"],
            "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}


def attachment_name(smc: Mapping[str, Any]) -> str:
    """The NAD name: the ``multus.spidernet.io/cr-name`` annotation, else the SpiderMultusConfig's name."""
    annotations = smc.get("metadata", {}).get("annotations") or {}
    name = annotations.get(CR_NAME)
    return name if isinstance(name, str) else str(smc["metadata"]["name"])


def render_network_attachment(smc: Mapping[str, Any]) -> NetworkAttachment:
    metadata = smc.get("metadata", {})
    spec: Mapping[str, Any] = smc.get("spec") or {}
    annotations = {str(k): str(v) for k, v in (metadata.get("annotations") or {}).items()}
    name = attachment_name(smc)
    cni_type = spec.get("cniType") or "custom"
    chain = _chain_plugins(spec)
    if cni_type == "custom":
        custom = spec.get("customCNI") or ""
        if custom:
            _parse_json(custom, "spec.customCNI")
        return NetworkAttachment(name=name, namespace=metadata.get("namespace", ""), annotations=annotations,
                                 config=custom)
    plugins, resource = _main_plugins(cni_type, spec, chain)
    if resource is not None:
        annotations[RESOURCE_NAME] = resource
    config = {"cniVersion": annotations.get(CNI_VERSION, DEFAULT_CNI_VERSION),
              "name": annotations.get(CNI_CONFIG_NAME) or name, "plugins": plugins}
    return NetworkAttachment(name=name, namespace=metadata.get("namespace", ""), annotations=annotations,
                             config=orjson.dumps(config).decode())


def _chain_plugins(spec: Mapping[str, Any]) -> list[Any]:
    plugins = [_sorted_keys(_parse_json(text, "spec.chainCNIJsonData")) for text in spec.get("chainCNIJsonData") or []]
    if spec.get("enableCoordinator", True):
        plugins.append(coordinator_plugin(spec.get("coordinator")))
    return plugins


def _sorted_keys(value: Any) -> Any:
    """As Go re-encodes JSON decoded into ``interface{}``: object keys sorted, at every level."""
    if isinstance(value, dict):
        return {key: _sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(item) for item in value]
    return value


def _parse_json(text: str, field: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise MultusRenderError(f"{field}: {text!r} is not valid JSON ({error})") from None


def _main_plugins(cni_type: str, spec: Mapping[str, Any], chain: list[Any]) -> tuple[list[Any], str | None]:
    block_key = {"ib-sriov": "ibsriov"}.get(cni_type, cni_type)
    block = spec.get(block_key)
    if not isinstance(block, Mapping):
        raise MultusRenderError(f"spec.{block_key}: required for cniType {cni_type!r}")
    ipam = None if spec.get("disableIPAM") else _ipam(block, match_master_subnet=cni_type == "sriov")
    if cni_type in ("macvlan", "ipvlan", "vlan"):
        # No resourceName annotation here: upstream injects the RDMA resource into pods instead.
        return _vlan_family(cni_type, block, ipam, chain), None
    if cni_type == "sriov":
        return _sriov(block, ipam, chain), str(block.get("resourceName") or "")
    if cni_type == "ib-sriov":
        return [_ib_sriov(block, ipam), *chain], str(block.get("resourceName") or "")
    if cni_type == "ipoib":
        master = block.get("master") or ""
        return [_drop_none({"type": "ipoib", "master": master or None, "ipam": ipam}), *chain], None
    if cni_type == "ovs":
        return [_ovs(block, ipam), *chain], _ovs_resource(block)
    raise MultusRenderError(f"spec.cniType: unrecognized CNI type {cni_type!r}")


def _ipam(block: Mapping[str, Any], *, match_master_subnet: bool) -> Json:
    pools = block.get("ippools") or {}
    ipam: Json = {"type": "spiderpool"}
    for key, field in (("default_ipv4_ippool", "ipv4"), ("default_ipv6_ippool", "ipv6")):
        if pools.get(field):
            ipam[key] = list(pools[field])
    if match_master_subnet and pools.get("matchMasterSubnet"):
        ipam["match_master_subnet"] = True
    return ipam


def _master_name(block: Mapping[str, Any], *, cni_type: str, with_vlan: bool) -> str:
    masters: Sequence[str] = block.get("master") or []
    if len(masters) == 1:
        name = masters[0]
    else:
        bond = block.get("bond")
        if not isinstance(bond, Mapping) or not bond.get("name"):
            raise MultusRenderError(f"spec.{cni_type}.bond: required with {len(masters)} master interfaces")
        name = str(bond["name"])
    vlan_id = block.get("vlanID")
    return f"{name}.{vlan_id}" if with_vlan and vlan_id else name


def _vlan_family(cni_type: str, block: Mapping[str, Any], ipam: Json | None, chain: list[Any]) -> list[Any]:
    master = _master_name(block, cni_type=cni_type, with_vlan=cni_type != "vlan")
    plugin: Json = {"type": cni_type, "master": master}
    if cni_type == "macvlan":
        plugin["mode"] = "bridge"
    if cni_type == "vlan":
        plugin["vlanMode"] = block.get("vlanMode")
        plugin["vlanId"] = block.get("vlanID") if block.get("vlanMode") == "manual" else None
    plugin["mtu"] = block.get("mtu")
    plugin["ipam"] = ipam
    plugins: list[Any] = [_drop_none(plugin), *chain]
    masters = block.get("master") or []
    vlan_id = 0 if cni_type == "vlan" else int(block.get("vlanID") or 0)
    if vlan_id or len(masters) >= 2:
        plugins.insert(0, _ifacer(masters, vlan_id, block.get("bond")))
    return plugins


def _ifacer(masters: Sequence[str], vlan_id: int, bond: object) -> Json:
    plugin: Json = {"vlanID": vlan_id or None, "type": "ifacer", "interfaces": list(masters) or None}
    if isinstance(bond, Mapping):
        plugin["bond"] = _drop_none({"name": bond.get("name", ""), "mode": bond.get("mode", 0),
                                     "options": bond.get("options")})
    return _drop_none(plugin)


def _sriov(block: Mapping[str, Any], ipam: Json | None, chain: list[Any]) -> list[Any]:
    plugin = _drop_none({"vlan": block.get("vlanID"), "min_tx_rate": block.get("minTxRateMbps"),
                         "max_tx_rate": block.get("maxTxRateMbps"), "type": "sriov", "ipam": ipam})
    plugins: list[Any] = [plugin]
    if block.get("rdmaIsolation"):
        plugins.append({"type": "rdma"})
    plugins.extend(chain)
    mtu = block.get("mtu")
    if isinstance(mtu, int) and mtu > 0:
        plugins.append({"type": "tuning", "mtu": mtu})
    return plugins


def _ib_sriov(block: Mapping[str, Any], ipam: Json | None) -> Json:
    return _drop_none({"type": "ib-sriov", "pkey": block.get("pkey"), "link_state": block.get("linkState"),
                       "rdmaIsolation": block.get("rdmaIsolation"),
                       "ibKubernetesEnabled": block.get("enableIbKubernetes"), "ipam": ipam})


def _ovs(block: Mapping[str, Any], ipam: Json | None) -> Json:
    trunks = [_drop_none({"minID": t.get("minID"), "maxID": t.get("maxID"), "id": t.get("id")})
              for t in block.get("trunk") or []]
    return _drop_none({"vlan": block.get("vlan"), "type": "ovs", "bridge": block.get("bridge", ""),
                       "deviceID": block.get("deviceID") or None, "ipam": ipam, "trunk": trunks or None})


def _ovs_resource(block: Mapping[str, Any]) -> str | None:
    return f"{OVS_RESOURCE_PREFIX}/{block.get('bridge', '')}" if block.get("deviceID") else None


def coordinator_plugin(coordinator: object) -> Json:
    """Upstream's coordinator entry. As upstream, ``podRPFilter`` is only emitted when ``podCIDRType`` is set."""
    spec: Mapping[str, Any] = coordinator if isinstance(coordinator, Mapping) else {}
    return _drop_none({
        "txQueueLen": spec.get("txQueueLen"),
        "vethLinkAddress": spec.get("vethLinkAddress") or None,
        "vethMTU": spec.get("vethMTU"),
        "tunePodRoutes": spec.get("tunePodRoutes"),
        "podMACPrefix": spec.get("podMACPrefix") or None,
        "mode": spec.get("mode") or None,
        "type": "coordinator",
        "podDefaultRouteNic": spec.get("podDefaultRouteNIC") or None,
        "podRPFilter": spec.get("podRPFilter") if spec.get("podCIDRType") is not None else None,
        "hijackCIDR": list(spec.get("hijackCIDR") or []) or None,
        "policyRoutes": [{"dst": r.get("dst", ""), "gw": r.get("gw", "")} for r in spec.get("policyRoutes") or []]
        or None,
    })


def _drop_none(fields: Json) -> Json:
    return {key: value for key, value in fields.items() if value is not None}
