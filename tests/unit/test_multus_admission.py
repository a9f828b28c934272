"""SpiderMultusConfig and SpiderCoordinator admission rules (pure): upstream's defaults and validation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from structural_defaults import apply_defaults, crd_schema

from spiderpool.core.coordinator_spec import coordinator_spec_errors, default_coordinator
from spiderpool.core.multus_admission import multus_config_errors
from spiderpool.core.multus_defaults import default_multus_config

GOLDENS = Path(__file__).resolve().parents[1] / "fixtures" / "multus" / "upstream_goldens.json"
SCHEMA = crd_schema("SpiderMultusConfig")


def smc(spec: dict[str, Any], annotations: dict[str, str] | None = None, name: str = "net") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "ns"}
    if annotations is not None:
        meta["annotations"] = annotations
    result: dict[str, Any] = apply_defaults(
        default_multus_config(apply_defaults({"metadata": meta, "spec": spec}, SCHEMA)), SCHEMA)
    return result


INVALID = [
    ({"cniType": "macvlan"}, "spec.macvlan", "Required"),
    ({"cniType": "macvlan", "macvlan": {"master": []}}, "spec.macvlan.master", "master can't be empty"),
    ({"cniType": "macvlan", "macvlan": {"master": ["a", "b"]}}, "spec.macvlan.bond", "bond is required"),
    ({"cniType": "ipvlan", "ipvlan": {"master": ["a", "b"], "bond": {"name": "", "mode": 1}}},
     "spec.ipvlan.bond.name", "bond name"),
    ({"cniType": "macvlan", "macvlan": {"master": ["a"], "vlanID": 4095}}, "spec.macvlan.vlanID", "4095"),
    ({"cniType": "ipvlan", "ipvlan": {"master": ["a"], "vlanID": -1}}, "spec.ipvlan.vlanID", "-1"),
    ({"cniType": "sriov", "sriov": {"resourceName": "r", "vlanID": 5000}}, "spec.sriov.vlanID", "5000"),
    ({"cniType": "macvlan", "macvlan": {"master": ["a"], "ippools": {"matchMasterSubnet": True}}},
     "spec.macvlan.ippools.matchMasterSubnet", "not supported for macvlan"),
    ({"cniType": "macvlan", "macvlan": {"master": ["a"]}, "ipvlan": {"master": ["b"]}}, "spec.cniType",
     "remove spec.ipvlan"),
    ({"cniType": "sriov", "sriov": {}}, "spec.sriov.resourceName", "Required"),
    ({"cniType": "sriov", "sriov": {"resourceName": "r", "minTxRateMbps": 10, "maxTxRateMbps": 5}},
     "spec.sriov.minTxRateMbps", "10"),
    ({"cniType": "ib-sriov", "ibsriov": {}}, "spec.ibsriov.resourceName", "Required"),
    ({"cniType": "ipoib", "ipoib": {}}, "spec.ipoib.master", "Required"),
    ({"cniType": "ovs", "ovs": {"bridge": "br", "vlan": 4095}}, "spec.ovs.vlan", "4095"),
    ({"cniType": "ovs", "ovs": {"bridge": "br", "trunk": [{"minID": 20, "maxID": 10}]}}, "spec.ovs.trunk[0]",
     "minID is greater than maxID"),
    ({"cniType": "vlan", "vlan": {"master": ["a"], "vlanMode": "auto", "vlanID": 3}}, "spec.vlan.vlanID",
     "must not be set when vlanMode is auto"),
    ({"cniType": "custom", "customCNI": "{not json"}, "spec.customCNI", "{not json"),
    ({"cniType": "custom", "macvlan": {"master": ["a"]}}, "spec.cniType", "remove spec.macvlan"),
    ({"cniType": "macvlan", "macvlan": {"master": ["a"]}, "chainCNIJsonData": ["{\"x\":1}"]},
     "spec.chainCNIJsonData[0]", "missing 'type'"),
    ({"cniType": "macvlan", "macvlan": {"master": ["a"]}, "chainCNIJsonData": ["nope"]},
     "spec.chainCNIJsonData[0]", "nope"),
    ({"cniType": "macvlan", "macvlan": {"master": ["a"]}, "coordinator": {"podMACPrefix": "0b:00"}},
     "spec.coordinator.podMACPrefix", "not a unicast MAC"),
    ({"cniType": "macvlan", "macvlan": {"master": ["a"]}, "coordinator": {"podCIDRType": "flannel"}},
     "spec.coordinator.podCIDRType", "flannel"),
]


@pytest.mark.parametrize(("spec", "field", "detail"), INVALID, ids=[i[1] + ":" + i[2] for i in INVALID])
def test_smc10_invalid_specs_are_refused_naming_field_and_value(spec: dict[str, Any], field: str, detail: str) -> None:
    """SMC10: each of upstream's rules refuses, with a message naming the field and the value."""
    errors = multus_config_errors(smc(spec))
    assert len(errors) == 1
    assert errors[0].field == field
    assert detail in str(errors[0])


def test_smc11_annotation_rules() -> None:
    """SMC11: cr-name must be a DNS-1123 subdomain, cannot change or appear on update, must not name a NAD of another
    SpiderMultusConfig; cni-version must be supported."""
    spec = {"cniType": "macvlan", "macvlan": {"master": ["a"]}}
    bad_name = multus_config_errors(smc(spec, {"multus.spidernet.io/cr-name": "Bad_Name"}))
    assert "Bad_Name" in str(bad_name[0])
    version = multus_config_errors(smc(spec, {"multus.spidernet.io/cni-version": "0.2.0"}))
    assert version[0].field == "metadata.annotations[multus.spidernet.io/cni-version]"
    assert "0.2.0" in str(version[0])
    old, new = smc(spec, {"multus.spidernet.io/cr-name": "a"}), smc(spec, {"multus.spidernet.io/cr-name": "b"})
    assert "from 'a' to 'b'" in str(multus_config_errors(new, old=old)[0])
    assert "custom name" in str(multus_config_errors(new, old=smc(spec))[0])
    taken = multus_config_errors(smc(spec), existing_owner="other")
    assert "managed by SpiderMultusConfig other" in str(taken[0])
    assert multus_config_errors(smc(spec), existing_owner="net") == []


def test_smc12_defaults_follow_upstreams_webhook() -> None:
    """SMC12: the defaulted object equals what upstream's webhook stored, for every golden case (spec compared)."""
    cases = json.loads(GOLDENS.read_text())
    for case in cases:
        ours = apply_defaults(default_multus_config(apply_defaults(case["input"], SCHEMA)), SCHEMA)
        assert ours["spec"] == case["stored"]["spec"], case["case"]


def test_smc13_refused_exactly_where_upstreams_webhook_refuses() -> None:
    """SMC13: for every golden case (upstream's doc examples included), our validation refuses exactly when
    upstream's validation code refused the same stored object (two of upstream's own doc examples are refused by it:
    a macvlan with RDMA injection and no pool, an SR-IOV minTxRateMbps above the defaulted maxTxRateMbps 0)."""
    cases = json.loads(GOLDENS.read_text())
    ours = {c["case"]: [str(e) for e in multus_config_errors(c["stored"])] for c in cases}
    upstream = {c["case"]: [c["validation"]] if c["validation"] else [] for c in cases}
    assert {k for k, v in ours.items() if v} == {k for k, v in upstream.items() if v}
    assert len([k for k, v in upstream.items() if v]) == 4


COORDINATOR_INVALID = [
    ({"podRPFilter": 0}, "spec.podCIDRType", "''"),
    ({"podCIDRType": "cluster"}, "spec.podRPFilter", "null"),
    ({"podCIDRType": "cluster", "podRPFilter": 3}, "spec.podRPFilter", "3"),
    ({"podCIDRType": "cluster", "podRPFilter": 0, "hijackCIDR": ["10.0.0.0/33"]}, "spec.extraCIDR[0]", "10.0.0.0/33"),
    ({"podCIDRType": "cluster", "podRPFilter": 0, "policyRoutes": [{"dst": "10.0.0.0/8", "gw": "fd00::1"}]},
     "spec.policyRoutes[0]", "same IP family"),
    ({"podCIDRType": "cluster", "podRPFilter": 0, "policyRoutes": [{"dst": "10.0.0.0/8", "gw": "x"}]},
     "spec.policyRoutes[0].gw", "'x'"),
    ({"podCIDRType": "cluster", "podRPFilter": 0, "txQueueLen": -1}, "spec.txQueueLen", "-1"),
    ({"podCIDRType": "cluster", "podRPFilter": 0, "vethLinkAddress": "300.1.1.1"}, "spec.vethLinkAddress",
     "300.1.1.1"),
    ({"podCIDRType": "cluster", "podRPFilter": 0, "vethMTU": 0}, "spec.vethMTU", "0"),
    ({"podCIDRType": "cluster", "podRPFilter": 0, "podMACPrefix": "zz:00"}, "spec.podMACPrefix", "zz:00"),
]


@pytest.mark.parametrize(("spec", "field", "value"), COORDINATOR_INVALID, ids=[c[1] for c in COORDINATOR_INVALID])
def test_scc10_coordinator_validation(spec: dict[str, Any], field: str, value: str) -> None:
    """SCC10: upstream's SpiderCoordinator validation, the error naming the field and the value."""
    errors = coordinator_spec_errors(spec, require_optional=True)
    assert [e.field for e in errors] == [field]
    assert value.strip("'") in str(errors[0])


def test_scc11_coordinator_defaults_and_finalizer() -> None:
    """SCC11: upstream's defaults (mode auto, tunePodRoutes, hostRuleTable 500, vethMTU 1500 ...), bare hijack
    addresses completed to /32 and /128, route destinations normalised, the finalizer added; without podCIDRType
    only the scalar defaults (upstream's defaulter stops there and admits)."""
    result = default_coordinator({"metadata": {"name": "default"}, "spec": {
        "podCIDRType": "cluster", "hijackCIDR": ["10.0.0.1", "fd00::1", "10.1.0.0/16"],
        "policyRoutes": [{"dst": "192.0.2.7", "gw": "192.0.2.1"}]}})
    spec = result["spec"]
    assert (spec["mode"], spec["tunePodRoutes"], spec["hostRuleTable"], spec["vethMTU"]) == ("auto", True, 500, 1500)
    assert spec["hijackCIDR"] == ["10.0.0.1/32", "fd00::1/128", "10.1.0.0/16"]
    assert spec["policyRoutes"][0]["dst"] == "192.0.2.7/32"
    assert result["metadata"]["finalizers"] == ["spiderpool.spidernet.io"]
    bare = default_coordinator({"metadata": {"name": "default"}, "spec": {}})
    assert "finalizers" not in bare["metadata"]
    assert bare["spec"]["podRPFilter"] == 0
