from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from upstream_examples import object_params

from spiderpool.core.addressing import parse_ip
from spiderpool.core.errors import InvalidSpec
from spiderpool.core.specs import (
    IPPoolSpec,
    PoolView,
    parse_ippool_object,
    parse_ippool_spec,
    parse_reservedip_spec,
    parse_subnet_spec,
)


@pytest.mark.parametrize("obj", object_params("SpiderIPPool"))
def test_every_upstream_format_ippool_parses_and_round_trips(obj: dict[str, Any]) -> None:
    """SP01: Every upstream format IPPool parses and round trips."""
    pool = parse_ippool_object(obj)
    assert pool.name == obj["metadata"]["name"]
    assert pool.spec.ip_version in (4, 6)
    assert pool.spec.total_ip_count > 0
    canonical = pool.spec.to_dict()
    assert parse_ippool_spec(canonical) == pool.spec
    assert parse_ippool_spec(canonical).to_dict() == canonical


@pytest.mark.parametrize("obj", object_params("SpiderSubnet"))
def test_every_upstream_format_subnet_parses_and_round_trips(obj: dict[str, Any]) -> None:
    """SP02: Every upstream format subnet parses and round trips."""
    spec = parse_subnet_spec(obj["spec"])
    assert spec.total_ip_count > 0
    assert parse_subnet_spec(spec.to_dict()) == spec


@pytest.mark.parametrize("obj", object_params("SpiderReservedIP"))
def test_every_upstream_format_reservedip_parses(obj: dict[str, Any]) -> None:
    """SP03: Every upstream format reservedip parses."""
    spec = parse_reservedip_spec(obj["spec"])
    assert spec.ip_version == 4
    assert parse_reservedip_spec(spec.to_dict()) == spec


def test_ippool_fields_are_typed() -> None:
    """SP04: IPPool fields are typed."""
    spec = parse_ippool_spec({
        "subnet": "172.18.41.0/24",
        "ips": ["172.18.41.40-172.18.41.50", "172.18.41.60"],
        "excludeIPs": ["172.18.41.45"],
        "gateway": "172.18.41.1",
        "routes": [{"dst": "172.18.42.0/24", "gw": "172.18.41.1"}],
        "podAffinity": {"matchLabels": {"app": "static"}},
        "nodeName": ["node-1"],
        "namespaceName": ["ns-1"],
        "multusName": ["kube-system/macvlan"],
        "default": True,
        "disable": False,
        "vlan": 0,  # removed upstream; the API server prunes it, we ignore it
    })
    assert spec.ip_version == 4
    assert spec.subnet.text == "172.18.41.0/24"
    assert spec.gateway_text == "172.18.41.1"
    assert spec.total_ip_count == 11  # 12 addresses minus the excluded one
    assert spec.routes[0].to_dict() == {"dst": "172.18.42.0/24", "gw": "172.18.41.1"}
    assert spec.pod_affinity is not None
    assert spec.pod_affinity.matches({"app": "static"})
    assert (spec.node_name, spec.namespace_name, spec.multus_name) == (("node-1",), ("ns-1",),
                                                                       ("kube-system/macvlan",))
    assert spec.default
    assert not spec.disable
    assert spec.to_dict()["excludeIPs"] == ["172.18.41.45"]


def test_reserved_ips_are_not_subtracted_from_the_total() -> None:
    """SP05: Reserved ips are not subtracted from the total."""
    spec = parse_ippool_spec({"subnet": "10.0.0.0/24", "ips": ["10.0.0.1-10.0.0.10"], "excludeIPs": ["10.0.0.1"]})
    assert spec.total_ip_count == 9
    assert spec.usable_ranges == [(parse_ip("10.0.0.2", version=4, field="f"), parse_ip("10.0.0.10", version=4,
                                                                                         field="f"))]


def test_ip_version_is_derived_from_the_subnet_or_checked_against_it() -> None:
    """SP06: IP version is derived from the subnet or checked against it."""
    assert parse_ippool_spec({"subnet": "fd00::/64"}).ip_version == 6
    assert parse_ippool_spec({"subnet": "fd00::/64", "ipVersion": 6}).ip_version == 6
    with pytest.raises(InvalidSpec) as caught:
        parse_ippool_spec({"subnet": "fd00::/64", "ipVersion": 4})
    assert caught.value.fields == ("spec.subnet",)


@pytest.mark.parametrize(
    ("spec", "fields"),
    [
        (None, ("spec",)),
        ([], ("spec",)),
        ({}, ("spec.subnet",)),
        ({"subnet": "10.0.0.0/24", "ipVersion": 5}, ("spec.ipVersion",)),
        ({"subnet": "10.0.0.0", "ipVersion": "4"}, ("spec.ipVersion", "spec.subnet")),
        ({"subnet": "10.0.0.0"}, ("spec.subnet",)),
        ({"subnet": "10.0.0.0/24", "ips": ["10.0.0.1", "fd00::1", "x-y"], "excludeIPs": "10.0.0.1"},
         ("spec.ips[1]", "spec.ips[2]", "spec.excludeIPs")),
        ({"subnet": "10.0.0.0/24", "gateway": "fd00::1"}, ("spec.gateway",)),
        ({"subnet": "10.0.0.0/24", "routes": [{"dst": "10.1.0.0/16"}, {"gw": "10.0.0.1"}, "x",
                                              {"dst": "fd00::/64", "gw": "10.0.0.1"}]},
         ("spec.routes[0].gw", "spec.routes[1].dst", "spec.routes[2]", "spec.routes[3].dst")),
        ({"subnet": "10.0.0.0/24", "routes": {}}, ("spec.routes",)),
        ({"subnet": "10.0.0.0/24", "nodeAffinity": "x", "podAffinity": {"matchLabels": []}},
         ("spec.podAffinity.matchLabels", "spec.nodeAffinity")),
        ({"subnet": "10.0.0.0/24", "nodeName": "n", "namespaceName": [1], "multusName": [None]},
         ("spec.namespaceName[0]", "spec.nodeName", "spec.multusName[0]")),
        ({"subnet": "10.0.0.0/24", "default": "true", "disable": 1}, ("spec.default", "spec.disable")),
    ],
)
def test_parse_reports_every_malformed_field(spec: object, fields: tuple[str, ...]) -> None:
    """SP07: Parse reports every malformed field."""
    with pytest.raises(InvalidSpec) as caught:
        parse_ippool_spec(spec)
    assert sorted(caught.value.fields) == sorted(fields)


@pytest.mark.parametrize(
    ("spec", "fields"),
    [
        ({}, ("spec.ips",)),
        ({"ips": []}, ("spec.ips",)),
        ({"ips": ["bogus"]}, ("spec.ips[0]",)),
        ({"ips": ["10.0.0.1", "fd00::1"]}, ("spec.ips[1]",)),
        ({"ips": ["10.0.0.1"], "ipVersion": 6}, ("spec.ips[0]",)),
        ({"ips": ["10.0.0.1"], "ipVersion": 7}, ("spec.ipVersion",)),
        ({"ips": [7]}, ("spec.ips[0]",)),
    ],
)
def test_reservedip_errors(spec: dict[str, object], fields: tuple[str, ...]) -> None:
    """SP08: Reservedip errors."""
    with pytest.raises(InvalidSpec) as caught:
        parse_reservedip_spec(spec)
    assert caught.value.fields == fields


def test_reservedip_version_from_first_item() -> None:
    """SP09: Reservedip version from first item."""
    spec = parse_reservedip_spec({"ips": ["fd00::5-fd00::9", "fd00::1"]})
    assert spec.ip_version == 6
    assert spec.to_dict() == {"ipVersion": 6, "ips": ["fd00::1", "fd00::5-fd00::9"]}


def test_subnet_spec_has_no_pool_only_fields() -> None:
    """SP10: Subnet spec has no pool only fields."""
    spec = parse_subnet_spec({"subnet": "10.6.0.1/16", "ips": ["10.6.168.171-10.6.168.180"], "gateway": "10.6.0.1",
                              "nodeName": ["ignored"]})
    assert spec.to_dict() == {"ipVersion": 4, "subnet": "10.6.0.0/16", "ips": ["10.6.168.171-10.6.168.180"],
                              "gateway": "10.6.0.1"}


def test_parse_ippool_object_reads_metadata() -> None:
    """SP11: Parse IPPool object reads metadata."""
    pool = parse_ippool_object({
        "metadata": {"name": "p", "labels": {"a": "b"}, "deletionTimestamp": "2024-01-01T00:00:00Z"},
        "spec": {"subnet": "10.0.0.0/24"},
    })
    assert pool == PoolView(name="p", spec=IPPoolSpec(ip_version=4, subnet=pool.spec.subnet), labels={"a": "b"},
                            deleting=True)
    with pytest.raises(InvalidSpec, match=r"metadata\.name"):
        parse_ippool_object({"spec": {"subnet": "10.0.0.0/24"}})


@given(st.lists(st.tuples(st.integers(1, 250), st.integers(0, 4)), max_size=8),
       st.lists(st.integers(1, 254), max_size=4))
def test_to_dict_is_a_fixed_point(ranges: list[tuple[int, int]], excluded: list[int]) -> None:
    """SP12: To dict is a fixed point."""
    raw = {
        "subnet": "10.1.0.0/24",
        "ips": [f"10.1.0.{first}-10.1.0.{min(first + size, 254)}" for first, size in ranges],
        "excludeIPs": [f"10.1.0.{value}" for value in excluded],
    }
    spec = parse_ippool_spec(raw)
    assert parse_ippool_spec(spec.to_dict()) == spec
    assert parse_ippool_spec(spec.to_dict()).to_dict() == spec.to_dict()
