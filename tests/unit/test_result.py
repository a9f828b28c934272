from __future__ import annotations

from typing import Any

import pytest

from spiderpool.core.addressing import parse_ip
from spiderpool.core.annotations import ROUTES, parse_routes_annotation
from spiderpool.core.errors import AnnotationError
from spiderpool.core.result import AllocatedAddress, AssignedIP, AssignedRoute, assemble_result, routes_from_annotations
from spiderpool.core.specs import PoolView, parse_ippool_spec


def pool(name: str, **spec: Any) -> PoolView:
    return PoolView(name=name, spec=parse_ippool_spec(spec))


ETH0_V4 = pool("v4", subnet="10.6.0.0/16", ips=["10.6.1.1-10.6.1.9"], gateway="10.6.0.1",
               routes=[{"dst": "172.18.42.0/24", "gw": "10.6.0.254"}])
ETH0_V6 = pool("v6", subnet="fd00:10:6::/64", ips=["fd00:10:6::1-fd00:10:6::9"], gateway="fd00:10:6::ffff")
NET1_V4 = pool("net1", subnet="10.7.0.0/16", ips=["10.7.1.1-10.7.1.9"], gateway="10.7.0.1")
NO_GATEWAY = pool("plain", subnet="192.168.0.0/24", ips=["192.168.0.2"])


def address(text: str, version: int = 4) -> int:
    return parse_ip(text, version=version, field="ip")


def test_address_carries_the_pool_prefix_and_gateway() -> None:
    """RE01: Address carries the pool prefix and gateway."""
    result = assemble_result([AllocatedAddress("eth0", ETH0_V4, address("10.6.1.5"))])
    assert result.ips == (AssignedIP(version=4, address="10.6.1.5/16", nic="eth0", pool="v4", gateway="10.6.0.1"),)
    assert result.routes == (AssignedRoute("eth0", "172.18.42.0/24", "10.6.0.254"),
                             AssignedRoute("eth0", "0.0.0.0/0", "10.6.0.1"))


def test_dual_stack_default_routes_per_family_and_clean_gateway() -> None:
    """RE02: Dual stack default routes per family and clean gateway."""
    result = assemble_result([
        AllocatedAddress("eth0", ETH0_V4, address("10.6.1.5")),
        AllocatedAddress("eth0", ETH0_V6, address("fd00:10:6::3", 6)),
        AllocatedAddress("net1", NET1_V4, address("10.7.1.2"), clean_gateway=True),
    ])
    assert [ip.address for ip in result.ips] == ["10.6.1.5/16", "fd00:10:6::3/64", "10.7.1.2/16"]
    assert [(r.nic, r.dst, r.gw) for r in result.routes] == [
        ("eth0", "172.18.42.0/24", "10.6.0.254"),
        ("eth0", "0.0.0.0/0", "10.6.0.1"),
        ("eth0", "::/0", "fd00:10:6::ffff"),
    ]


def test_no_gateway_no_default_route() -> None:
    """RE03: No gateway no default route."""
    result = assemble_result([AllocatedAddress("eth0", NO_GATEWAY, address("192.168.0.2"))])
    assert result.ips[0].gateway is None
    assert result.routes == ()
    assert "gateway" not in result.ips[0].to_dict()


def test_annotation_routes_go_to_the_nic_that_reaches_their_gateway() -> None:
    """RE04: Annotation routes go to the NIC that reaches their gateway."""
    annotation_routes = parse_routes_annotation(
        '[{"dst": "10.100.0.0/16", "gw": "10.7.0.254"}, {"dst": "10.200.0.0/16", "gw": "10.6.0.253"},'
        ' {"dst": "fd99::/64", "gw": "fd00:10:6::1"}, {"dst": "10.250.0.0/16", "gw": "192.0.2.1"}]')
    result = assemble_result([
        AllocatedAddress("eth0", ETH0_V4, address("10.6.1.5")),
        AllocatedAddress("eth0", ETH0_V6, address("fd00:10:6::3", 6)),
        AllocatedAddress("net1", NET1_V4, address("10.7.1.2")),
    ], annotation_routes=annotation_routes)
    assert [(r.nic, r.dst, r.gw) for r in result.routes] == [
        ("eth0", "172.18.42.0/24", "10.6.0.254"),
        ("eth0", "10.200.0.0/16", "10.6.0.253"),
        ("eth0", "0.0.0.0/0", "10.6.0.1"),
        ("eth0", "fd99::/64", "fd00:10:6::1"),
        ("eth0", "::/0", "fd00:10:6::ffff"),
        ("net1", "10.100.0.0/16", "10.7.0.254"),
        ("net1", "0.0.0.0/0", "10.7.0.1"),
    ]
    assert [route.to_dict() for route in result.dropped_routes] == [{"dst": "10.250.0.0/16", "gw": "192.0.2.1"}]


def test_upstream_response_body_and_per_nic_view() -> None:
    """RE05: Upstream response body and per NIC view."""
    result = assemble_result([
        AllocatedAddress("eth0", ETH0_V4, address("10.6.1.5")),
        AllocatedAddress("net1", NET1_V4, address("10.7.1.2"), vlan=30),
    ])
    body = result.to_dict()
    assert body["ips"] == [
        {"version": 4, "address": "10.6.1.5/16", "nic": "eth0", "ipPool": "v4", "vlan": 0, "gateway": "10.6.0.1"},
        {"version": 4, "address": "10.7.1.2/16", "nic": "net1", "ipPool": "net1", "vlan": 30, "gateway": "10.7.0.1"},
    ]
    assert result.routes[0].to_dict() == {"ifName": "eth0", "dst": "172.18.42.0/24", "gw": "10.6.0.254"}
    assert body["routes"] == [route.to_dict() for route in result.routes]
    net1 = result.for_nic("net1")
    assert [ip.nic for ip in net1.ips] == ["net1"]
    assert {route.nic for route in net1.routes} == {"net1"}


def test_routes_from_annotations() -> None:
    """RE06: Routes from annotations."""
    assert routes_from_annotations({}) == ()
    assert len(routes_from_annotations({ROUTES: '[{"dst": "10.0.0.0/8", "gw": "10.6.0.1"}]'})) == 1
    with pytest.raises(AnnotationError) as caught:
        routes_from_annotations({ROUTES: "{"})
    assert caught.value.annotation == ROUTES
