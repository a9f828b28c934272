"""The field schemas and printer columns of each Spiderpool kind (``v2beta1``), assembled by ``crd_schema``.

Field names, printer columns, enums and defaults follow upstream Spiderpool so that upstream manifests and clients
work unchanged.  The schemas check shape (types, required fields, enums, integer bounds) only; semantic checks
belong to the admission webhooks (see ``crd_schema``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Schema = dict[str, Any]


# --- schema building blocks -------------------------------------------------------------------------------------


def _scalar(kind: str, **constraints: Any) -> Schema:
    """A leaf schema; ``None`` constraints are left out so the YAML shows only what is set."""
    return {"type": kind, **{key: value for key, value in constraints.items() if value is not None}}


def _string(*, enum: Sequence[str] | None = None, default: str | None = None) -> Schema:
    return _scalar("string", enum=list(enum) if enum else None, default=default)


def _integer(
    *, minimum: int | None = None, maximum: int | None = None, default: int | None = None, int64: bool = True
) -> Schema:
    fmt = "int64" if int64 else "int32"
    return _scalar("integer", format=fmt, minimum=minimum, maximum=maximum, default=default)


def _boolean(*, default: bool | None = None) -> Schema:
    return _scalar("boolean", default=default)


def _array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def _strings() -> Schema:
    return _array(_string())


def _object(properties: Mapping[str, Schema], *, required: Sequence[str] = ()) -> Schema:
    schema: Schema = {"type": "object", "properties": dict(properties)}
    if required:
        schema["required"] = list(required)
    return schema


def _ip_version() -> Schema:
    return _scalar("integer", format="int64", enum=[4, 6])


def _routes() -> Schema:
    return _array(_object({"dst": _string(), "gw": _string()}, required=["dst", "gw"]))


def _label_selector() -> Schema:
    """metav1.LabelSelector, atomic like upstream (a selector is replaced as a whole, never merged)."""
    requirement = _object(
        {"key": _string(), "operator": _string(), "values": {**_strings(), "x-kubernetes-list-type": "atomic"}},
        required=["key", "operator"],
    )
    selector = _object(
        {
            "matchExpressions": {**_array(requirement), "x-kubernetes-list-type": "atomic"},
            "matchLabels": {"type": "object", "additionalProperties": _string()},
        }
    )
    selector["x-kubernetes-map-type"] = "atomic"
    return selector


# --- per-kind schemas -------------------------------------------------------------------------------------------


def _address_spec() -> dict[str, Schema]:
    """The fields SpiderIPPool and SpiderSubnet share."""
    return {
        "ipVersion": _ip_version(),
        "subnet": _string(),
        "ips": _strings(),
        "excludeIPs": _strings(),
        "gateway": _string(),
        "routes": _routes(),
    }


def ippool_schema() -> tuple[Schema, Schema]:
    spec = _object(
        {
            **_address_spec(),
            "podAffinity": _label_selector(),
            "namespaceAffinity": _label_selector(),
            "namespaceName": _strings(),
            "nodeAffinity": _label_selector(),
            "nodeName": _strings(),
            "multusName": _strings(),
            "default": _boolean(default=False),
            "disable": _boolean(default=False),
        },
        required=["subnet"],
    )
    # allocatedIPs is a JSON-encoded string map IP -> {pod, podUid}: upstream's wire format, kept verbatim.
    status = _object(
        {"allocatedIPs": _string(), "totalIPCount": _integer(minimum=0), "allocatedIPCount": _integer(minimum=0)}
    )
    return spec, status


def subnet_schema() -> tuple[Schema, Schema]:
    spec = _object(_address_spec(), required=["subnet"])
    status = _object(
        {"controlledIPPools": _string(), "totalIPCount": _integer(minimum=0), "allocatedIPCount": _integer(minimum=0)}
    )
    return spec, status


def reserved_ip_schema() -> Schema:
    return _object({"ipVersion": _ip_version(), "ips": _strings()})


def endpoint_status_schema() -> Schema:
    nic = _object(
        {
            "interface": _string(),
            "ipv4": _string(),
            "ipv6": _string(),
            "ipv4Pool": _string(),
            "ipv6Pool": _string(),
            "vlan": _integer(minimum=0, maximum=4094, default=0),
            "ipv4Gateway": _string(),
            "ipv6Gateway": _string(),
            "cleanGateway": _boolean(),
            "routes": _routes(),
            "mac": _string(),
        },
        required=["interface"],
    )
    current = _object({"uid": _string(), "node": _string(), "ips": _array(nic)}, required=["uid", "node", "ips"])
    return _object(
        {"current": current, "ownerControllerType": _string(), "ownerControllerName": _string()},
        required=["current", "ownerControllerType", "ownerControllerName"],
    )


def coordinator_spec() -> Schema:
    return _object(
        {
            "mode": _string(enum=["auto", "underlay", "overlay", "disabled"], default="auto"),
            "podCIDRType": _string(enum=["auto", "cluster", "calico", "cilium", "none"]),
            "hijackCIDR": _strings(),
            "policyRoutes": _routes(),
            "podMACPrefix": _string(),
            "tunePodRoutes": _boolean(default=True),
            "podDefaultRouteNIC": _string(),
            "hostRuleTable": _integer(default=500),
            "podRPFilter": _integer(default=0),
            "txQueueLen": _integer(default=0),
            "vethLinkAddress": _string(),
            "vethMTU": _integer(),
        }
    )


def coordinator_status() -> Schema:
    return _object(
        {
            "phase": _string(enum=["Synced", "NotReady"]),
            "reason": _string(),
            "overlayPodCIDR": _strings(),
            "serviceCIDR": _strings(),
        },
        required=["phase"],
    )


def _multus_pools() -> Schema:
    return _object({"matchMasterSubnet": _boolean(default=False), "ipv4": _strings(), "ipv6": _strings()})


def _bond() -> Schema:
    return _object(
        {"name": _string(), "mode": _integer(minimum=0, maximum=6, int64=False), "options": _string()},
        required=["name", "mode"],
    )


def _vlan_id() -> Schema:
    return _integer(minimum=0, maximum=4094, int64=False)


def _master_nic_block(**extra: Schema) -> Schema:
    return _object(
        {
            "master": _strings(),
            "mtu": _integer(minimum=0, int64=False),
            "vlanID": _vlan_id(),
            "bond": _bond(),
            "rdmaResourceName": _string(),
            "ippools": _multus_pools(),
            **extra,
        },
        required=["master"],
    )


def multus_config_spec() -> Schema:
    trunk = _object({"minID": _vlan_id(), "maxID": _vlan_id(), "id": _vlan_id()})
    sriov = {
        "resourceName": _string(),
        "vlanID": _vlan_id(),
        "mtu": _integer(minimum=0, int64=False),
        "minTxRateMbps": _integer(minimum=0),
        "maxTxRateMbps": _integer(minimum=0),
        "rdmaIsolation": _boolean(default=False),
        "ippools": _multus_pools(),
    }
    ib_sriov = {
        "resourceName": _string(),
        "pkey": _string(),
        "linkState": _string(enum=["auto", "enable", "disable"], default="enable"),
        "rdmaIsolation": _boolean(default=True),
        "enableIbKubernetes": _boolean(default=False),
        "ippools": _multus_pools(),
    }
    ovs = {
        "bridge": _string(),
        "vlan": _integer(int64=False),
        "trunk": _array(trunk),
        "deviceID": _string(),
        "ippools": _multus_pools(),
    }
    return _object(
        {
            "cniType": _string(
                enum=["macvlan", "ipvlan", "vlan", "sriov", "ovs", "ib-sriov", "ipoib", "custom"], default="custom"
            ),
            "macvlan": _master_nic_block(),
            "ipvlan": _master_nic_block(),
            "vlan": _master_nic_block(vlanMode=_string(enum=["manual", "auto"])),
            "sriov": _object(sriov, required=["resourceName"]),
            "ibsriov": _object(ib_sriov, required=["resourceName"]),
            "ipoib": _object({"master": _string(), "ippools": _multus_pools()}),
            "ovs": _object(ovs, required=["bridge"]),
            "enableCoordinator": _boolean(default=True),
            "disableIPAM": _boolean(default=False),
            "coordinator": coordinator_spec(),
            "chainCNIJsonData": _strings(),
            "customCNI": _string(),
        }
    )


# --- printer columns: (NAME, jsonPath, type, shown only with -o wide); the description is the field name ---------

ColumnSpec = tuple[str, str, str, bool]
# VERSION is typed "string" although ipVersion is an integer: upstream's column, kept for identical `kubectl get`.
ADDRESS_COLUMNS: tuple[ColumnSpec, ...] = (
    ("VERSION", ".spec.ipVersion", "string", False),
    ("SUBNET", ".spec.subnet", "string", False),
    ("ALLOCATED-IP-COUNT", ".status.allocatedIPCount", "integer", False),
    ("TOTAL-IP-COUNT", ".status.totalIPCount", "integer", False),
)
IPPOOL_COLUMNS: tuple[ColumnSpec, ...] = (
    *ADDRESS_COLUMNS,
    ("DEFAULT", ".spec.default", "boolean", False),
    ("DISABLE", ".spec.disable", "boolean", True),
    ("NodeName", ".spec.nodeName", "string", True),
    ("MultusName", ".spec.multusName", "string", True),
    ("APP-NAMESPACE", ".spec.podAffinity.matchLabels['ipam\\.spidernet\\.io/app\\-namespace']", "string", True),
)
ENDPOINT_COLUMNS: tuple[ColumnSpec, ...] = tuple(
    (name, f".status.current.{path}", "string", False)
    for name, path in (
        ("INTERFACE", "ips[0].interface"),
        ("IPV4POOL", "ips[0].ipv4Pool"),
        ("IPV4", "ips[0].ipv4"),
        ("IPV6POOL", "ips[0].ipv6Pool"),
        ("IPV6", "ips[0].ipv6"),
        ("NODE", "node"),
    )
)


def printer_columns(specs: Sequence[ColumnSpec]) -> list[Schema]:
    columns = []
    for name, json_path, kind, wide in specs:
        description = "AppNamespace" if name == "APP-NAMESPACE" else json_path.rsplit(".", 1)[-1]
        column: Schema = {"name": name, "type": kind, "jsonPath": json_path, "description": description}
        columns.append({**column, "priority": 10} if wide else column)
    return columns


# --- the root of every kind ---------------------------------------------------------------------------------------


def root_schema(properties: Mapping[str, Schema]) -> Schema:
    return _object({"apiVersion": _string(), "kind": _string(), "metadata": {"type": "object"}, **properties})
