"""The CRD source: generated files in sync, upstream names and shapes, structural schemas."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from spiderpool.k8s import crd_schema
from spiderpool.k8s.crd_schema import (
    DEFAULT_CRD_DIR,
    KINDS,
    custom_resource_definitions,
    drifted_files,
    expected_files,
    main,
)

# Upstream Spiderpool v2beta1 (reference section 2): kind -> (plural, short name, scope, status subresource).
UPSTREAM_NAMES = {
    "SpiderIPPool": ("spiderippools", "sp", "Cluster", True),
    "SpiderSubnet": ("spidersubnets", "ss", "Cluster", True),
    "SpiderReservedIP": ("spiderreservedips", "sr", "Cluster", False),
    "SpiderEndpoint": ("spiderendpoints", "se", "Namespaced", False),
    "SpiderMultusConfig": ("spidermultusconfigs", "smc", "Namespaced", False),
    "SpiderCoordinator": ("spidercoordinators", "scc", "Cluster", True),
}


def _by_kind() -> dict[str, dict[str, Any]]:
    return {crd["spec"]["names"]["kind"]: crd for crd in custom_resource_definitions()}


def _root(kind: str) -> dict[str, Any]:
    schema: dict[str, Any] = _by_kind()[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def _at(kind: str, path: str) -> dict[str, Any]:
    """The schema node at a dotted path of properties (``[]`` steps into array items)."""
    node = _root(kind)
    for step in path.split("."):
        node = node["items"] if step == "[]" else node["properties"][step]
    return node


def test_files_on_disk_match_the_source() -> None:
    """CS01: Files on disk match the source."""
    drifted = drifted_files(DEFAULT_CRD_DIR)
    assert drifted == [], f"stale CRD files {drifted}: run `python -m spiderpool.k8s.crd_schema --write`"


def test_no_stray_crd_files_in_the_chart() -> None:
    """CS02: No stray CRD files in the chart."""
    on_disk = {path.name for path in DEFAULT_CRD_DIR.glob("spiderpool.spidernet.io_*.yaml")}
    assert on_disk == set(expected_files())


def test_check_detects_drift_and_write_repairs_it(tmp_path: Path) -> None:
    """CS03: Check detects drift and write repairs it."""
    assert main(["--check", "--dir", str(tmp_path)]) == 1
    assert main(["--write", "--dir", str(tmp_path)]) == 0
    assert main(["--check", "--dir", str(tmp_path)]) == 0
    victim = tmp_path / KINDS[0].file_name
    victim.write_text(victim.read_text().replace("- 6", "- 7"))
    assert main(["--check", "--dir", str(tmp_path)]) == 1


def test_written_yaml_parses_back_to_the_source(tmp_path: Path) -> None:
    """CS04: Written YAML parses back to the source."""
    crd_schema.write_files(tmp_path)
    for kind, crd in zip(KINDS, custom_resource_definitions(), strict=True):
        assert yaml.safe_load((tmp_path / kind.file_name).read_text()) == crd


@pytest.mark.parametrize("kind", sorted(UPSTREAM_NAMES))
def test_names_scope_and_subresources_follow_upstream(kind: str) -> None:
    """CS05: Names scope and subresources follow upstream."""
    plural, short, scope, has_status = UPSTREAM_NAMES[kind]
    crd = _by_kind()[kind]
    spec = crd["spec"]
    assert crd["metadata"]["name"] == f"{plural}.spiderpool.spidernet.io"
    assert spec["group"] == "spiderpool.spidernet.io"
    assert spec["names"]["plural"] == plural
    assert spec["names"]["shortNames"] == [short]
    assert spec["names"]["listKind"] == f"{kind}List"
    assert spec["scope"] == scope
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v2beta1", True, True)
    assert ("status" in version.get("subresources", {})) is has_status


def test_ippool_printer_columns_follow_upstream() -> None:
    """CS06: IPPool printer columns follow upstream."""
    columns = _by_kind()["SpiderIPPool"]["spec"]["versions"][0]["additionalPrinterColumns"]
    normal = [c["name"] for c in columns if "priority" not in c]
    wide = [c["name"] for c in columns if c.get("priority") == 10]
    assert normal == ["VERSION", "SUBNET", "ALLOCATED-IP-COUNT", "TOTAL-IP-COUNT", "DEFAULT"]
    assert wide == ["DISABLE", "NodeName", "MultusName", "APP-NAMESPACE"]
    app_namespace = columns[-1]["jsonPath"]
    assert app_namespace == ".spec.podAffinity.matchLabels['ipam\\.spidernet\\.io/app\\-namespace']"


def test_ippool_spec_fields_enums_and_defaults() -> None:
    """CS07: IPPool spec fields enums and defaults."""
    spec = _at("SpiderIPPool", "spec")
    assert spec["required"] == ["subnet"]
    assert "vlan" not in spec["properties"], "spec.vlan was removed upstream (938eeb7e)"
    assert _at("SpiderIPPool", "spec.ipVersion")["enum"] == [4, 6]
    assert _at("SpiderIPPool", "spec.default")["default"] is False
    assert _at("SpiderIPPool", "spec.disable")["default"] is False
    assert _at("SpiderIPPool", "spec.routes.[]")["required"] == ["dst", "gw"]
    assert _at("SpiderIPPool", "spec.podAffinity")["x-kubernetes-map-type"] == "atomic"


def test_status_formats_are_upstream_wire_formats() -> None:
    """CS08: Status formats are upstream wire formats."""
    assert _at("SpiderIPPool", "status.allocatedIPs")["type"] == "string"  # JSON-encoded map, not an object
    assert _at("SpiderIPPool", "status.allocatedIPCount")["minimum"] == 0
    assert _at("SpiderSubnet", "status.controlledIPPools")["type"] == "string"
    endpoint = _at("SpiderEndpoint", "status")
    assert endpoint["required"] == ["current", "ownerControllerType", "ownerControllerName"]
    vlan = _at("SpiderEndpoint", "status.current.ips.[].vlan")
    assert (vlan["minimum"], vlan["maximum"], vlan["default"]) == (0, 4094, 0)


def test_multus_config_and_coordinator_enums_and_defaults() -> None:
    """CS09: Multus config and coordinator enums and defaults."""
    cni_type = _at("SpiderMultusConfig", "spec.cniType")
    assert cni_type["enum"] == ["macvlan", "ipvlan", "vlan", "sriov", "ovs", "ib-sriov", "ipoib", "custom"]
    assert cni_type["default"] == "custom"
    assert _at("SpiderMultusConfig", "spec.enableCoordinator")["default"] is True
    assert _at("SpiderMultusConfig", "spec.macvlan")["required"] == ["master"]
    bond_mode = _at("SpiderMultusConfig", "spec.macvlan.bond.mode")
    assert (bond_mode["minimum"], bond_mode["maximum"]) == (0, 6)
    assert _at("SpiderMultusConfig", "spec.vlan.vlanMode")["enum"] == ["manual", "auto"]
    assert _at("SpiderMultusConfig", "spec.ibsriov.linkState")["enum"] == ["auto", "enable", "disable"]
    for kind, prefix in (("SpiderCoordinator", "spec"), ("SpiderMultusConfig", "spec.coordinator")):
        assert _at(kind, f"{prefix}.mode")["enum"] == ["auto", "underlay", "overlay", "disabled"]
        assert _at(kind, f"{prefix}.podCIDRType")["enum"] == ["auto", "cluster", "calico", "cilium", "none"]
        assert _at(kind, f"{prefix}.hostRuleTable")["default"] == 500
        assert _at(kind, f"{prefix}.tunePodRoutes")["default"] is True
    assert _at("SpiderCoordinator", "status.phase")["enum"] == ["Synced", "NotReady"]


def _walk(node: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from _walk(child, f"{path}.{name}")
    if "items" in node:
        yield from _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("kind", sorted(UPSTREAM_NAMES))
def test_schemas_are_structural(kind: str) -> None:
    """CS10: The apiextensions rules: every node typed, required names exist, defaults match their type and enum."""
    python_types = {"string": str, "integer": int, "boolean": bool, "object": dict, "array": list}
    for path, node in _walk(_root(kind), kind):
        assert node.get("type") in python_types, f"{path} has no valid type"
        for name in node.get("required", []):
            assert name in node["properties"], f"{path} requires unknown {name}"
        if "default" in node:
            assert type(node["default"]) is python_types[node["type"]], f"{path} default has the wrong type"
            assert node["default"] in node.get("enum", [node["default"]]), f"{path} default outside its enum"
        if node["type"] == "object":
            assert not ("properties" in node and "additionalProperties" in node), f"{path} mixes both"
