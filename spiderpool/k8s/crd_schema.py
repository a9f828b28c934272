"""The project's CustomResourceDefinitions as Python data: the one source of the YAML in ``charts/spiderpool/crds``.

Field names, scopes, short names, printer columns, enums and defaults follow upstream Spiderpool's ``v2beta1`` API so
that upstream manifests and clients work unchanged.  The schemas check shape (types, required fields, enums, integer
bounds); semantic checks (CIDR syntax, ranges inside the subnet, overlaps, immutability) belong to the admission
webhooks, as upstream does it, so that both report the same errors.

``python -m spiderpool.k8s.crd_schema --write`` regenerates the YAML files; ``--check`` exits 1 when they drift.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

GROUP = "spiderpool.spidernet.io"
VERSION = "v2beta1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "spiderpool"
DEFAULT_CRD_DIR = Path(__file__).resolve().parents[2] / "charts" / "spiderpool" / "crds"
_HEADER = "# Generated from spiderpool/k8s/crd_schema.py by `python -m spiderpool.k8s.crd_schema --write`.\n"

Schema = dict[str, Any]


@dataclass(frozen=True)
class CrdKind:
    """How one kind is named and served."""

    kind: str
    plural: str
    short_name: str
    namespaced: bool
    status_subresource: bool

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"

    @property
    def file_name(self) -> str:
        return f"{GROUP}_{self.plural}.yaml"


IPPOOL = CrdKind("SpiderIPPool", "spiderippools", "sp", namespaced=False, status_subresource=True)
SUBNET = CrdKind("SpiderSubnet", "spidersubnets", "ss", namespaced=False, status_subresource=True)
RESERVED_IP = CrdKind("SpiderReservedIP", "spiderreservedips", "sr", namespaced=False, status_subresource=False)
ENDPOINT = CrdKind("SpiderEndpoint", "spiderendpoints", "se", namespaced=True, status_subresource=False)
MULTUS_CONFIG = CrdKind("SpiderMultusConfig", "spidermultusconfigs", "smc", namespaced=True, status_subresource=False)
COORDINATOR = CrdKind("SpiderCoordinator", "spidercoordinators", "scc", namespaced=False, status_subresource=True)
KINDS: tuple[CrdKind, ...] = (IPPOOL, SUBNET, RESERVED_IP, ENDPOINT, MULTUS_CONFIG, COORDINATOR)


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


def _ippool_schema() -> tuple[Schema, Schema]:
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


def _subnet_schema() -> tuple[Schema, Schema]:
    spec = _object(_address_spec(), required=["subnet"])
    status = _object(
        {"controlledIPPools": _string(), "totalIPCount": _integer(minimum=0), "allocatedIPCount": _integer(minimum=0)}
    )
    return spec, status


def _reserved_ip_schema() -> Schema:
    return _object({"ipVersion": _ip_version(), "ips": _strings()})


def _endpoint_status_schema() -> Schema:
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


def _coordinator_spec() -> Schema:
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


def _coordinator_status() -> Schema:
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


def _multus_config_spec() -> Schema:
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
            "coordinator": _coordinator_spec(),
            "chainCNIJsonData": _strings(),
            "customCNI": _string(),
        }
    )


# --- printer columns: (NAME, jsonPath, type, shown only with -o wide); the description is the field name ---------

_ColumnSpec = tuple[str, str, str, bool]
# VERSION is typed "string" although ipVersion is an integer: upstream's column, kept for identical `kubectl get`.
_ADDRESS_COLUMNS: tuple[_ColumnSpec, ...] = (
    ("VERSION", ".spec.ipVersion", "string", False),
    ("SUBNET", ".spec.subnet", "string", False),
    ("ALLOCATED-IP-COUNT", ".status.allocatedIPCount", "integer", False),
    ("TOTAL-IP-COUNT", ".status.totalIPCount", "integer", False),
)
_IPPOOL_COLUMNS: tuple[_ColumnSpec, ...] = (
    *_ADDRESS_COLUMNS,
    ("DEFAULT", ".spec.default", "boolean", False),
    ("DISABLE", ".spec.disable", "boolean", True),
    ("NodeName", ".spec.nodeName", "string", True),
    ("MultusName", ".spec.multusName", "string", True),
    ("APP-NAMESPACE", ".spec.podAffinity.matchLabels['ipam\\.spidernet\\.io/app\\-namespace']", "string", True),
)
_ENDPOINT_COLUMNS: tuple[_ColumnSpec, ...] = tuple(
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


def _columns(specs: Sequence[_ColumnSpec]) -> list[Schema]:
    columns = []
    for name, json_path, kind, wide in specs:
        description = "AppNamespace" if name == "APP-NAMESPACE" else json_path.rsplit(".", 1)[-1]
        column: Schema = {"name": name, "type": kind, "jsonPath": json_path, "description": description}
        columns.append({**column, "priority": 10} if wide else column)
    return columns


# --- assembly ----------------------------------------------------------------------------------------------------


def _root_schema(properties: Mapping[str, Schema]) -> Schema:
    return _object({"apiVersion": _string(), "kind": _string(), "metadata": {"type": "object"}, **properties})


def _crd(kind: CrdKind, properties: Mapping[str, Schema], columns: Sequence[Schema] = ()) -> Schema:
    version: Schema = {"name": VERSION, "served": True, "storage": True}
    if columns:
        version["additionalPrinterColumns"] = list(columns)
    version["schema"] = {"openAPIV3Schema": _root_schema(properties)}
    if kind.status_subresource:
        version["subresources"] = {"status": {}}
    names = {
        "kind": kind.kind,
        "listKind": f"{kind.kind}List",
        "plural": kind.plural,
        "singular": kind.plural.removesuffix("s"),
        "shortNames": [kind.short_name],
        "categories": [CATEGORY],
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": kind.crd_name},
        "spec": {
            "group": GROUP,
            "names": names,
            "scope": "Namespaced" if kind.namespaced else "Cluster",
            "versions": [version],
        },
    }


def custom_resource_definitions() -> list[Schema]:
    """Every CRD of the project, in the order of ``KINDS`` (fresh objects: callers may mutate them)."""
    ippool_spec, ippool_status = _ippool_schema()
    subnet_spec, subnet_status = _subnet_schema()
    return [
        _crd(IPPOOL, {"spec": ippool_spec, "status": ippool_status}, _columns(_IPPOOL_COLUMNS)),
        _crd(SUBNET, {"spec": subnet_spec, "status": subnet_status}, _columns(_ADDRESS_COLUMNS)),
        _crd(RESERVED_IP, {"spec": _reserved_ip_schema()}, _columns(_ADDRESS_COLUMNS[:1])),
        _crd(ENDPOINT, {"status": _endpoint_status_schema()}, _columns(_ENDPOINT_COLUMNS)),
        _crd(MULTUS_CONFIG, {"spec": _multus_config_spec()}),
        _crd(COORDINATOR, {"spec": _coordinator_spec(), "status": _coordinator_status()}),
    ]


def render_yaml(crd: Mapping[str, Any]) -> str:
    """The file text of one CRD: deterministic (key order as built), so the drift test can compare bytes."""
    return _HEADER + yaml.safe_dump(dict(crd), sort_keys=False, width=120, default_flow_style=False)


def expected_files() -> dict[str, str]:
    """File name -> content for every CRD."""
    return {kind.file_name: render_yaml(crd) for kind, crd in zip(KINDS, custom_resource_definitions(), strict=True)}


def drifted_files(directory: Path) -> list[str]:
    """Names of CRD files in ``directory`` that are missing or differ from the source."""
    drifted = []
    for name, text in expected_files().items():
        path = directory / name
        if not path.is_file() or path.read_text() != text:
            drifted.append(name)
    return drifted


def write_files(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in expected_files().items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render the project's CRDs (source: spiderpool/k8s/crd_schema.py).")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true", help="write one YAML file per kind into --dir")
    action.add_argument("--check", action="store_true", help="exit 1 if the files in --dir differ from the source")
    parser.add_argument("--dir", type=Path, default=DEFAULT_CRD_DIR)
    args = parser.parse_args(argv)
    if args.write:
        for path in write_files(args.dir):
            print(path)
        return 0
    if args.check:
        drifted = drifted_files(args.dir)
        for name in drifted:
            print(f"{args.dir / name} is stale: run `python -m spiderpool.k8s.crd_schema --write`", file=sys.stderr)
        return 1 if drifted else 0
    sys.stdout.write("---\n".join(expected_files().values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
