from __future__ import annotations

from typing import Any

import pytest
from upstream_examples import object_params

from spiderpool.core.addressing import parse_cidr, parse_ip_ranges
from spiderpool.core.errors import InvalidSpec
from spiderpool.core.specs import parse_ippool_spec
from spiderpool.core.validation import (
    AUTO_POOL_AFFINITY_KEYS,
    LABEL_OWNER_APPLICATION_NAME,
    is_auto_pool,
    ranges_outside,
    validate_ippool_spec,
    validate_ippool_update,
    validate_reservedip_spec,
    validate_subnet_spec,
)


@pytest.mark.parametrize("obj", object_params("SpiderIPPool"))
def test_every_upstream_format_ippool_validates(obj: dict[str, Any]) -> None:
    """VA01: Every upstream format IPPool validates."""
    spec = validate_ippool_spec(obj["spec"], labels=obj["metadata"].get("labels"))
    # What the mutating webhook writes back must validate as well (canonical subnet, merged ranges).
    assert validate_ippool_spec(spec.to_dict()) == spec


@pytest.mark.parametrize("obj", object_params("SpiderSubnet"))
def test_every_upstream_format_subnet_validates(obj: dict[str, Any]) -> None:
    """VA02: Every upstream format subnet validates."""
    spec = validate_subnet_spec(obj["spec"])
    assert validate_subnet_spec(spec.to_dict()) == spec


@pytest.mark.parametrize("obj", object_params("SpiderReservedIP"))
def test_every_upstream_format_reservedip_validates(obj: dict[str, Any]) -> None:
    """VA03: Every upstream format reservedip validates."""
    assert validate_reservedip_spec(obj["spec"]).ips


def _errors(spec: dict[str, Any], **kwargs: Any) -> list[tuple[str, object]]:
    with pytest.raises(InvalidSpec) as caught:
        validate_ippool_spec(spec, **kwargs)
    return [(error.field, error.value) for error in caught.value.errors]


BASE = {"subnet": "10.0.0.0/24", "ips": ["10.0.0.10-10.0.0.20"]}


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"ips": ["10.0.0.10", "10.0.1.5", "10.0.0.250-10.0.1.2"]},
         [("spec.ips[1]", "10.0.1.5"), ("spec.ips[2]", "10.0.0.250-10.0.1.2")]),
        ({"excludeIPs": ["10.0.0.11", "10.1.0.1"]}, [("spec.excludeIPs[1]", "10.1.0.1")]),
        ({"gateway": "10.0.1.1"}, [("spec.gateway", "10.0.1.1")]),
        ({"gateway": "10.0.0.15"}, [("spec.ips[0]", "10.0.0.10-10.0.0.20")]),
        ({"gateway": "10.0.0.15", "ips": ["10.0.0.10-10.0.0.20", "10.0.0.15"]},
         [("spec.ips[0]", "10.0.0.10-10.0.0.20"), ("spec.ips[1]", "10.0.0.15")]),
        ({"routes": [{"dst": "0.0.0.0/0", "gw": "10.0.0.1"}]}, [("spec.routes[0].dst", "0.0.0.0/0")]),
        ({"routes": [{"dst": "1.2.3.4/0", "gw": "10.0.0.1"}]}, [("spec.routes[0].dst", "0.0.0.0/0")]),
        ({"routes": [{"dst": "10.1.0.0/16", "gw": "10.0.0.1"}, {"dst": "10.1.0.7/16", "gw": "10.0.0.2"}]},
         [("spec.routes[1].dst", "10.1.0.0/16")]),
        ({"routes": [{"dst": "10.1.0.0/16", "gw": "10.9.0.1"}]}, [("spec.routes[0].gw", "10.9.0.1")]),
        ({"podAffinity": {}}, [("spec.podAffinity", {})]),
        ({"podAffinity": {"matchLabels": {"bad key!": "x"}}}, [("spec.podAffinity.matchLabels", "bad key!")]),
        ({"nodeAffinity": {"matchExpressions": [{"key": "k", "operator": "Is", "values": ["x"]}]}},
         [("spec.nodeAffinity.matchExpressions[0].operator", "Is")]),
        ({"namespaceAffinity": {"matchExpressions": [{"key": "k", "operator": "In"}]}},
         [("spec.namespaceAffinity.matchExpressions[0].values", [])]),
        ({"nodeName": ["", "n1"], "namespaceName": [""]}, [("spec.nodeName[0]", ""), ("spec.namespaceName[0]", "")]),
        ({"multusName": ["ok", "ns/ok", "a/b/c", "/x", "x/"]},
         [("spec.multusName[2]", "a/b/c"), ("spec.multusName[3]", "/x"), ("spec.multusName[4]", "x/")]),
    ],
)
def test_ippool_rules_name_the_field_and_value(extra: dict[str, Any], expected: list[tuple[str, object]]) -> None:
    """VA04: IPPool rules name the field and value."""
    assert _errors({**BASE, **extra}) == expected


@pytest.mark.parametrize(
    "extra",
    [
        {"gateway": "10.0.0.1"},
        {"gateway": "10.0.0.15", "excludeIPs": ["10.0.0.15"]},
        {"gateway": "10.0.0.15", "excludeIPs": ["10.0.0.14-10.0.0.16"]},
        {"routes": [{"dst": "10.1.0.0/16", "gw": "10.0.0.1"}, {"dst": "10.2.0.0/16", "gw": "10.0.0.1"}]},
        {"podAffinity": {"matchExpressions": [{"key": "app", "operator": "Exists"}]}},
        {"ips": ["10.0.0.0-10.0.0.255"], "gateway": "10.0.0.1", "excludeIPs": ["10.0.0.1"]},
    ],
)
def test_valid_ippools(extra: dict[str, Any]) -> None:
    """VA05: Valid IPPools."""
    assert validate_ippool_spec({**BASE, **extra}).subnet.text == "10.0.0.0/24"


def test_every_broken_rule_is_reported_at_once() -> None:
    """VA06: Every broken rule is reported at once."""
    errors = _errors({"subnet": "10.0.0.0/24", "ips": ["10.0.1.1"], "gateway": "10.0.2.1",
                      "routes": [{"dst": "0.0.0.0/0", "gw": "10.0.3.1"}]})
    assert [field for field, _ in errors] == ["spec.ips[0]", "spec.gateway", "spec.routes[0].dst",
                                              "spec.routes[0].gw"]


def test_disabled_family_is_rejected() -> None:
    """VA07: Disabled family is rejected."""
    assert _errors({"subnet": "fd00::/64"}, enable_ipv6=False) == [("spec.ipVersion", 6)]
    with pytest.raises(InvalidSpec, match="IPv4 is disabled"):
        validate_subnet_spec({"subnet": "10.0.0.0/8"}, enable_ipv4=False)
    with pytest.raises(InvalidSpec, match="IPv4 is disabled"):
        validate_reservedip_spec({"ips": ["10.0.0.1"]}, enable_ipv4=False)


AUTO_LABELS = {LABEL_OWNER_APPLICATION_NAME: "web"}
AUTO_AFFINITY = dict(zip(AUTO_POOL_AFFINITY_KEYS, ("apps", "v1", "Deployment", "default", "web"), strict=True))


def test_auto_pool_affinity_may_only_hold_the_application_keys() -> None:
    """VA08: Auto pool affinity may only hold the application keys."""
    assert is_auto_pool(AUTO_LABELS)
    assert validate_ippool_spec({**BASE, "podAffinity": {"matchLabels": AUTO_AFFINITY}}, labels=AUTO_LABELS)
    errors = _errors({**BASE, "podAffinity": {"matchLabels": {**AUTO_AFFINITY, "extra": "x"},
                                              "matchExpressions": [{"key": "a", "operator": "Exists"}]}},
                     labels=AUTO_LABELS)
    assert errors == [("spec.podAffinity.matchLabels", "extra"), ("spec.podAffinity.matchExpressions", 1)]


def test_subnet_rules() -> None:
    """VA09: Subnet rules."""
    with pytest.raises(InvalidSpec) as caught:
        validate_subnet_spec({"subnet": "10.6.0.0/16", "ips": ["10.7.0.1"], "gateway": "10.6.0.5",
                              "excludeIPs": ["10.8.0.1"]})
    assert caught.value.fields == ("spec.ips[0]", "spec.excludeIPs[0]")
    assert validate_subnet_spec({"subnet": "10.6.0.0/16", "ips": ["10.6.0.2-10.6.0.9"], "gateway": "10.6.0.1"})


def test_update_keeps_version_and_subnet_and_every_allocated_ip() -> None:
    """VA10: Update keeps version and subnet and every allocated IP."""
    old = parse_ippool_spec({"subnet": "10.0.0.0/24", "ips": ["10.0.0.1-10.0.0.10"]})
    shrunk = parse_ippool_spec({"subnet": "10.0.0.0/24", "ips": ["10.0.0.1-10.0.0.5"], "excludeIPs": ["10.0.0.2"]})
    validate_ippool_update(old, shrunk, allocated={"10.0.0.1": "ns/a", "10.0.0.5": "ns/b"})
    with pytest.raises(InvalidSpec) as caught:
        validate_ippool_update(old, shrunk, allocated={"10.0.0.2": "ns/a", "10.0.0.7": "ns/b", "10.0.0.3": "ns/c"})
    assert [(e.field, e.value) for e in caught.value.errors] == [("spec.ips", "10.0.0.2"), ("spec.ips", "10.0.0.7")]
    assert "in use by Pod ns/a" in str(caught.value)
    moved = parse_ippool_spec({"subnet": "10.0.1.0/24"})
    with pytest.raises(InvalidSpec) as caught:
        validate_ippool_update(old, moved, allocated={})
    assert caught.value.fields == ("spec.subnet",)
    v6 = parse_ippool_spec({"subnet": "fd00::/64"})
    with pytest.raises(InvalidSpec) as caught:
        validate_ippool_update(old, v6, allocated={})
    assert caught.value.fields == ("spec.ipVersion", "spec.subnet")


def test_ranges_outside() -> None:
    """VA11: Ranges outside."""
    ranges = parse_ip_ranges(["10.0.0.250-10.0.1.5", "10.0.3.1"], version=4, field="f")
    outside = ranges_outside(ranges, parse_cidr("10.0.0.0/24", field="f"))
    assert outside == parse_ip_ranges(["10.0.1.0-10.0.1.5", "10.0.3.1"], version=4, field="f")
