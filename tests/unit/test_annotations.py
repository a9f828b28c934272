from __future__ import annotations

import pytest

from spiderpool.core.annotations import (
    IPPOOL,
    IPPOOLS,
    NS_DEFAULT_IPV4_POOL,
    NS_DEFAULT_IPV6_POOL,
    POOL_IP_NUMBER,
    POOL_RECLAIM,
    ROUTES,
    SUBNET,
    SUBNETS,
    NicPools,
    PoolIPNumber,
    PoolNames,
    SubnetRequest,
    has_subnet_annotation,
    parse_ippool_annotation,
    parse_ippools_annotation,
    parse_namespace_default_pools,
    parse_pool_ip_number,
    parse_pool_reclaim,
    parse_routes_annotation,
    parse_subnet_annotations,
)
from spiderpool.core.errors import AnnotationError


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('{"ipv4": ["custom-ipv4-ippool"],"ipv6": ["custom-ipv6-ippool"]}',
         PoolNames(("custom-ipv4-ippool",), ("custom-ipv6-ippool",))),
        ('{\n  "ipv4": ["master-ipv4-ippool", "worker-ipv4-ippool"]\n}',
         PoolNames(("master-ipv4-ippool", "worker-ipv4-ippool"))),
        ('{"IPv4": ["a"], "unknown": 1}', PoolNames(("a",))),
        ('{"ipv4": null}', PoolNames()),
        ("{}", PoolNames()),
        ("null", PoolNames()),
    ],
)
def test_ippool_annotation(value: str, expected: PoolNames) -> None:
    """AN01: IPPool annotation."""
    assert parse_ippool_annotation(value) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("{", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ('{"ipv4": "a"}', "value.ipv4 must be a list of names"),
        ('{"ipv4": [1]}', "value.ipv4 must be a list of names"),
        ('{"ipv6": [""]}', "value.ipv6 must not contain an empty name"),
    ],
)
def test_malformed_ippool_annotation_names_the_annotation(value: str, reason: str) -> None:
    """AN02: Malformed IPPool annotation names the annotation."""
    with pytest.raises(AnnotationError) as caught:
        parse_ippool_annotation(value)
    assert caught.value.annotation == IPPOOL
    assert caught.value.value == value
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"invalid annotation {IPPOOL} ")


def test_ippools_named_items() -> None:
    """AN03: IPPools named items."""
    value = '[{"interface": "eth0", "ipv4": ["a"]}, {"interface": "net1", "ipv4": ["b"], "ipv6": ["c"], ' \
            '"cleangateway": true}]'
    items, unnamed = parse_ippools_annotation(value, current_nic="net1")
    assert not unnamed
    assert items == (NicPools("eth0", PoolNames(("a",))), NicPools("net1", PoolNames(("b",), ("c",)), True))


def test_ippools_unnamed_items_are_indexed() -> None:
    """AN04: IPPools unnamed items are indexed."""
    items, unnamed = parse_ippools_annotation('[{"ipv4": ["a"]}, {"ipv4": ["b"], "cleanGateway": true}]',
                                              current_nic="eth0")
    assert unnamed
    assert items == (NicPools("0", PoolNames(("a",))), NicPools("1", PoolNames(("b",)), True))


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("{}", "must be a JSON list"),
        ("[]", "needs at least one item"),
        ('[{"interface": "eth0", "ipv4": ["a"]}, {"ipv4": ["b"]}]', "either every item names its interface or none"),
        ('[{"interface": "eth0", "ipv4": ["a"]}, {"interface": "eth0", "ipv4": ["b"]}]', "eth0 is listed twice"),
        ('[{"interface": "net1", "ipv4": ["a"]}]', "no item for interface eth0"),
        ('[{"interface": 1}]', "item 0.interface must be a string"),
        ('[{"interface": "eth0", "cleangateway": "yes"}]', "item 0.cleangateway must be true or false"),
        ('["eth0"]', "item 0 must be a JSON object"),
    ],
)
def test_ippools_rules(value: str, reason: str) -> None:
    """AN05: IPPools rules."""
    with pytest.raises(AnnotationError) as caught:
        parse_ippools_annotation(value, current_nic="eth0")
    assert caught.value.annotation == IPPOOLS
    assert reason in caught.value.reason


def test_subnet_annotation_defaults_to_eth0_and_first_subnet() -> None:
    """AN06: Subnet annotation defaults to eth0 and first subnet."""
    annotations = {SUBNET: '{"ipv4": ["s4", "ignored"], "ipv6": ["s6"]}'}
    assert has_subnet_annotation(annotations)
    assert parse_subnet_annotations(annotations) == (SubnetRequest("eth0", "s4", "s6"),)


def test_subnets_beats_subnet() -> None:
    """AN07: Subnets beats subnet."""
    annotations = {
        SUBNET: '{"ipv4": ["ignored"]}',
        SUBNETS: '[{"interface": "eth0", "ipv4": ["a"]}, {"interface": "net1", "ipv6": ["b"]}]',
    }
    assert parse_subnet_annotations(annotations) == (SubnetRequest("eth0", "a"), SubnetRequest("net1", None, "b"))


def test_no_subnet_annotation() -> None:
    """AN08: No subnet annotation."""
    assert parse_subnet_annotations({IPPOOL: "{}"}) is None
    assert not has_subnet_annotation({IPPOOL: "{}"})


@pytest.mark.parametrize(
    ("annotations", "annotation", "reason"),
    [
        ({SUBNET: '{"ipv4": []}'}, SUBNET, "names neither an IPv4 nor an IPv6 subnet"),
        ({SUBNET: '{"ipv4": [""]}'}, SUBNET, "must not contain an empty name"),
        ({SUBNETS: "[]"}, SUBNETS, "non-empty JSON list"),
        ({SUBNETS: '[{"ipv4": ["a"]}]'}, SUBNETS, "must name the interface"),
        ({SUBNETS: '[{"interface": "eth0", "ipv4": ["a"]}, {"interface": "eth0", "ipv4": ["b"]}]'}, SUBNETS,
         "interface eth0 is used by more than one item"),
        ({SUBNETS: '[{"interface": "eth0", "ipv4": ["a"]}, {"interface": "net1", "ipv4": ["a"]}]'}, SUBNETS,
         "IPv4 subnet a is used by more than one item"),
        ({SUBNETS: '[{"interface": "eth0", "ipv6": ["a"]}, {"interface": "net1", "ipv6": ["a"]}]'}, SUBNETS,
         "IPv6 subnet a is used by more than one item"),
    ],
)
def test_subnet_rules(annotations: dict[str, str], annotation: str, reason: str) -> None:
    """AN09: Subnet rules."""
    with pytest.raises(AnnotationError) as caught:
        parse_subnet_annotations(annotations)
    assert caught.value.annotation == annotation
    assert reason in caught.value.reason


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2", PoolIPNumber(2, False)), ("+1", PoolIPNumber(1, True)), ("+0", PoolIPNumber(0, True)),
     ("0", PoolIPNumber(0, False))],
)
def test_pool_ip_number(value: str, expected: PoolIPNumber) -> None:
    """AN10: Pool IP number."""
    assert parse_pool_ip_number(value) == expected


@pytest.mark.parametrize("value", ["", "+", "-1", "++1", "1+", "a", " 1", "+-1", "\u0661"])
def test_bad_pool_ip_number(value: str) -> None:
    """AN11: Bad pool IP number."""
    with pytest.raises(AnnotationError) as caught:
        parse_pool_ip_number(value)
    assert caught.value.annotation == POOL_IP_NUMBER


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("1", True), ("T", True), ("false", False),
                                                 ("F", False), ("0", False)])
def test_pool_reclaim(value: str, expected: bool) -> None:
    """AN12: Pool reclaim."""
    assert parse_pool_reclaim(value) is expected


def test_bad_pool_reclaim() -> None:
    """AN13: Bad pool reclaim."""
    with pytest.raises(AnnotationError, match=POOL_RECLAIM):
        parse_pool_reclaim("yes")


def test_routes_annotation() -> None:
    """AN14: Routes annotation."""
    routes = parse_routes_annotation('[{"dst": "10.0.0.0/16", "gw": "192.168.1.1"}, {"dst": "fd00::/64", '
                                     '"gw": "fd01::1"}]')
    assert [route.to_dict() for route in routes] == [{"dst": "10.0.0.0/16", "gw": "192.168.1.1"},
                                                     {"dst": "fd00::/64", "gw": "fd01::1"}]
    assert parse_routes_annotation("[]") == ()


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("{}", "must be a JSON list"),
        ('[{"dst": "10.0.0.0/16"}]', "item 0.gw"),
        ('[{"dst": "10.0.0.0", "gw": "10.0.0.1"}]', "item 0.dst"),
        ('[{"dst": "10.0.0.0/16", "gw": "fd00::1"}]', "not an IPv4 address"),
        ('[{"dst": 1, "gw": "10.0.0.1"}]', "item 0.dst must be a string"),
    ],
)
def test_bad_routes_annotation(value: str, reason: str) -> None:
    """AN15: Bad routes annotation."""
    with pytest.raises(AnnotationError) as caught:
        parse_routes_annotation(value)
    assert caught.value.annotation == ROUTES
    assert reason in str(caught.value)


def test_namespace_default_pools() -> None:
    """AN16: Namespace default pools."""
    annotations = {NS_DEFAULT_IPV4_POOL: '["ns1-default-ipv4-ippool"]', NS_DEFAULT_IPV6_POOL: '["a", "b*"]'}
    assert parse_namespace_default_pools(annotations) == PoolNames(("ns1-default-ipv4-ippool",), ("a", "b*"))
    assert parse_namespace_default_pools({}) == PoolNames()
    with pytest.raises(AnnotationError) as caught:
        parse_namespace_default_pools({NS_DEFAULT_IPV6_POOL: '"a"'})
    assert caught.value.annotation == NS_DEFAULT_IPV6_POOL
