from __future__ import annotations

import ipaddress
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spiderpool.core.addressing import (
    Cidr,
    canonical_cidr,
    canonical_ip_ranges,
    check_version,
    cidr_label_value,
    contains_address,
    count_addresses,
    format_ip,
    format_ip_ranges,
    intersect_ranges,
    ip_version_of,
    is_canonical_cidr,
    is_canonical_ipv6,
    merge_ranges,
    overlaps,
    parse_cidr,
    parse_ip,
    parse_ip_range,
    parse_ip_ranges,
    subtract_ranges,
    total_ip_count,
)
from spiderpool.core.errors import FieldError, InvalidSpec

V4 = int(ipaddress.IPv4Address("10.0.0.0"))


@pytest.mark.parametrize(
    ("text", "version", "expected"),
    [
        ("10.0.0.1", 4, int(ipaddress.IPv4Address("10.0.0.1"))),
        ("255.255.255.255", 4, 2**32 - 1),
        ("0.0.0.0", 4, 0),
        ("fd00::1", 6, int(ipaddress.IPv6Address("fd00::1"))),
        ("FD00:0:0::0001", 6, int(ipaddress.IPv6Address("fd00::1"))),
        ("::", 6, 0),
    ],
)
def test_parse_ip_accepts_addresses_of_the_family(text: str, version: int, expected: int) -> None:
    """AD01: Parse IP accepts addresses of the family."""
    assert parse_ip(text, version=version, field="f") == expected


@pytest.mark.parametrize(
    ("text", "version", "reason_part"),
    [
        ("10.0.0.1", 6, "not an IPv6 address"),
        ("fd00::1", 4, "not an IPv4 address"),
        ("010.0.0.1", 4, "not a valid IP address"),
        (" 10.0.0.1", 4, "not a valid IP address"),
        ("10.0.0.256", 4, "not a valid IP address"),
        ("fe80::1%eth0", 6, "zone"),
        ("::ffff:10.0.0.1", 6, "IPv4-mapped"),
        ("", 4, "not a valid IP address"),
        (7, 4, "must be a string"),
    ],
)
def test_parse_ip_rejects_with_field_value_and_reason(text: object, version: int, reason_part: str) -> None:
    """AD02: Parse IP rejects with field value and reason."""
    with pytest.raises(FieldError) as caught:
        parse_ip(text, version=version, field="spec.gateway")
    assert caught.value.field == "spec.gateway"
    assert caught.value.value == text
    assert reason_part in caught.value.reason
    assert str(caught.value).startswith("spec.gateway: Invalid value: ")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("10.0.0.1", 4), ("10.0.0.1-10.0.0.9", 4), ("10.0.0.0/24", 4), ("fd00::/64", 6), ("fd00::1-fd00::2", 6),
     ("x", None), ("", None)],
)
def test_ip_version_of(text: str, expected: int | None) -> None:
    """AD03: IP version of."""
    assert ip_version_of(text) == expected


@pytest.mark.parametrize("value", [4, 6])
def test_check_version_accepts_4_and_6(value: int) -> None:
    """AD04: Check version accepts 4 and 6."""
    assert check_version(value) == value


@pytest.mark.parametrize("value", [5, "4", True, 4.0, None])
def test_check_version_rejects_others(value: object) -> None:
    """AD05: Check version rejects others."""
    with pytest.raises(FieldError, match="supported values: 4, 6"):
        check_version(value, field="spec.ipVersion")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.0.0.5", (V4 + 5, V4 + 5)),
        ("10.0.0.5-10.0.0.9", (V4 + 5, V4 + 9)),
        ("10.0.0.5-10.0.0.5", (V4 + 5, V4 + 5)),
    ],
)
def test_parse_ip_range(text: str, expected: tuple[int, int]) -> None:
    """AD06: Parse IP range."""
    assert parse_ip_range(text, version=4, field="f") == expected


@pytest.mark.parametrize(
    ("text", "reason_part"),
    [
        ("10.0.0.9-10.0.0.5", "above the last"),
        ("10.0.0.1 - 10.0.0.5", "not a valid IP address"),
        ("10.0.0.1-10.0.0.2-10.0.0.3", "'first-last'"),
        ("10.0.0.1-fd00::1", "not an IPv4 address"),
        ("10.0.0.1-", "not a valid IP address"),
    ],
)
def test_parse_ip_range_rejects(text: str, reason_part: str) -> None:
    """AD07: Parse IP range rejects."""
    with pytest.raises(FieldError) as caught:
        parse_ip_range(text, version=4, field="spec.ips[3]")
    assert caught.value.field == "spec.ips[3]"
    assert caught.value.value == text
    assert reason_part in caught.value.reason


def test_parse_ip_ranges_merges_overlaps_and_neighbours_and_sorts() -> None:
    """AD08: Parse IP ranges merges overlaps and neighbours and sorts."""
    ranges = parse_ip_ranges(
        ["10.0.0.20-10.0.0.30", "10.0.0.1", "10.0.0.2-10.0.0.5", "10.0.0.25-10.0.0.40", "10.0.0.50"],
        version=4, field="spec.ips",
    )
    assert ranges == [(V4 + 1, V4 + 5), (V4 + 20, V4 + 40), (V4 + 50, V4 + 50)]


def test_parse_ip_ranges_reports_every_bad_item_by_index() -> None:
    """AD09: Parse IP ranges reports every bad item by index."""
    with pytest.raises(InvalidSpec) as caught:
        parse_ip_ranges(["10.0.0.1", "bogus", "10.0.0.9-10.0.0.1", 5], version=4, field="spec.excludeIPs")
    assert caught.value.fields == ("spec.excludeIPs[1]", "spec.excludeIPs[2]", "spec.excludeIPs[3]")


def test_parse_ip_ranges_rejects_a_non_list() -> None:
    """AD10: Parse IP ranges rejects a non list."""
    with pytest.raises(InvalidSpec) as caught:
        parse_ip_ranges("10.0.0.1", version=4, field="spec.ips")
    assert caught.value.fields == ("spec.ips",)


@pytest.mark.parametrize(
    ("values", "version", "expected"),
    [
        (["10.0.0.10-10.0.0.99"], 4, ["10.0.0.10-10.0.0.99"]),
        (["10.0.0.3", "10.0.0.1-10.0.0.2"], 4, ["10.0.0.1-10.0.0.3"]),
        (["10.0.0.7-10.0.0.7"], 4, ["10.0.0.7"]),
        (["FD00:0::0A-fd00::000f", "fd00::20"], 6, ["fd00::a-fd00::f", "fd00::20"]),
        (["fd00:0:0:0:1:0:0:1"], 6, ["fd00::1:0:0:1"]),
        (["2001:db8:0:0:1:0:0:1"], 6, ["2001:db8::1:0:0:1"]),
        (["2001:db8:0:1:0:0:0:1"], 6, ["2001:db8:0:1::1"]),
        ([], 4, []),
    ],
)
def test_canonical_ranges_are_written_as_upstream_writes_them(values: list[str], version: int,
                                                              expected: list[str]) -> None:
    """AD11: Canonical ranges are written as upstream writes them."""
    assert canonical_ip_ranges(values, version=version, field="spec.ips") == expected


def _addresses(ranges: list[tuple[int, int]]) -> set[int]:
    return {address for first, last in ranges for address in range(first, last + 1)}


def _ranges(draw_max: int) -> st.SearchStrategy[list[tuple[int, int]]]:
    pair = st.tuples(st.integers(0, draw_max), st.integers(0, 40)).map(lambda p: (p[0], min(p[0] + p[1], draw_max)))
    return st.lists(pair, max_size=12)


@given(_ranges(2**32 - 1))
def test_merge_ranges_keeps_exactly_the_same_addresses(ranges: list[tuple[int, int]]) -> None:
    """AD12: Merge ranges keeps exactly the same addresses."""
    merged = merge_ranges(ranges)
    assert _addresses(merged) == _addresses(ranges)
    for (_, last), (first, _) in itertools.pairwise(merged):
        assert first > last + 1  # sorted, disjoint, not adjacent


@given(_ranges(2**32 - 1))
def test_v4_canonical_text_round_trips(ranges: list[tuple[int, int]]) -> None:
    """AD13: V4 canonical text round trips."""
    merged = merge_ranges(ranges)
    text = format_ip_ranges(merged, version=4)
    assert parse_ip_ranges(text, version=4, field="f") == merged
    assert format_ip_ranges(parse_ip_ranges(text, version=4, field="f"), version=4) == text


@given(_ranges(2**128 - 1))
def test_v6_canonical_text_round_trips_and_matches_python(ranges: list[tuple[int, int]]) -> None:
    """AD14: V6 canonical text round trips and matches python."""
    merged = merge_ranges(ranges)
    text = format_ip_ranges(merged, version=6)
    assert all(is_canonical_ipv6(part) or ipaddress.IPv6Address(part).ipv4_mapped
               for item in text for part in item.split("-"))
    mapped = any(ipaddress.IPv6Address(part).ipv4_mapped for item in text for part in item.split("-"))
    if not mapped:
        assert parse_ip_ranges(text, version=6, field="f") == merged


@given(_ranges(5000), _ranges(5000))
def test_set_operations_agree_with_python_sets(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> None:
    """AD15: Set operations agree with python sets."""
    ma, mb = merge_ranges(a), merge_ranges(b)
    sa, sb = _addresses(ma), _addresses(mb)
    assert _addresses(subtract_ranges(ma, mb)) == sa - sb
    assert _addresses(intersect_ranges(ma, mb)) == sa & sb
    assert overlaps(ma, mb) == bool(sa & sb)
    assert count_addresses(ma) == len(sa)
    assert total_ip_count(ma, mb) == len(sa - sb)
    for probe in [*sorted(sa)[:20], 0, 5000, 2500]:
        assert contains_address(ma, probe) == (probe in sa)


def test_subtract_ranges_table() -> None:
    """AD16: Subtract ranges table."""
    assert subtract_ranges([(1, 10), (20, 30)], [(0, 2), (5, 5), (9, 21), (25, 26)]) == [(3, 4), (6, 8), (22, 24),
                                                                                         (27, 30)]
    assert subtract_ranges([(1, 10)], []) == [(1, 10)]
    assert subtract_ranges([(1, 10)], [(0, 100)]) == []


@pytest.mark.parametrize(
    ("text", "network", "prefix", "canonical"),
    [
        ("10.148.4.0/24", "10.148.4.0", 24, True),
        ("10.6.0.1/16", "10.6.0.0", 16, False),
        ("0.0.0.0/0", "0.0.0.0", 0, True),
        ("fd00:172:18::/64", "fd00:172:18::", 64, True),
        ("2002::ac0f:0/64", "2002::", 64, False),
        ("fd00:0::/64", "fd00::", 64, False),
        ("10.0.0.0/08", "10.0.0.0", 8, False),
    ],
)
def test_parse_cidr_clears_host_bits_and_tells_canonical_text(text: str, network: str, prefix: int,
                                                              canonical: bool) -> None:
    """AD17: Parse CIDR clears host bits and tells canonical text."""
    cidr = parse_cidr(text, field="spec.subnet")
    assert cidr.network == int(ipaddress.ip_address(network))
    assert cidr.prefix_len == prefix
    assert is_canonical_cidr(text) is canonical
    assert canonical_cidr(text) == f"{network}/{prefix}"


@pytest.mark.parametrize(
    ("text", "version", "reason_part"),
    [
        ("10.0.0.0", None, "CIDR notation"),
        ("10.0.0.0/33", None, "0..32"),
        ("fd00::/129", None, "0..128"),
        ("10.0.0.0/255.255.0.0", None, "CIDR notation"),
        ("10.0.0.0/24", 6, "not an IPv6 CIDR"),
        ("x/24", None, "not a valid CIDR"),
        ("10.0.0.0/ 24", None, "CIDR notation"),
    ],
)
def test_parse_cidr_rejects(text: str, version: int | None, reason_part: str) -> None:
    """AD18: Parse CIDR rejects."""
    with pytest.raises(FieldError) as caught:
        parse_cidr(text, version=version, field="spec.subnet")
    assert caught.value.field == "spec.subnet"
    assert reason_part in caught.value.reason
    assert is_canonical_cidr(text) is (version is not None)  # a wrong family is still a well-formed CIDR


def test_cidr_membership_and_bounds() -> None:
    """AD19: CIDR membership and bounds."""
    cidr = parse_cidr("10.0.0.0/30", field="f")
    assert (cidr.first, cidr.last) == (V4, V4 + 3)
    assert cidr.contains(V4 + 3)
    assert not cidr.contains(V4 + 4)
    assert cidr.contains_range(V4, V4 + 3)
    assert not cidr.contains_range(V4, V4 + 4)
    assert cidr.overlaps(parse_cidr("10.0.0.0/8", field="f"))
    assert not cidr.overlaps(parse_cidr("10.0.0.4/30", field="f"))
    assert not cidr.overlaps(Cidr(version=6, network=V4, prefix_len=126))
    assert str(cidr) == "10.0.0.0/30"


@pytest.mark.parametrize(
    ("cidr", "label"),
    [("10.148.4.0/24", "10-148-4-0-24"), ("fd00:172:18::/64", "fd00-172-18---64"), ("10.6.0.1/16", "10-6-0-0-16")],
)
def test_cidr_label_value_as_upstream(cidr: str, label: str) -> None:
    """AD20: CIDR label value as upstream."""
    assert cidr_label_value(cidr) == label


@settings(max_examples=300)
@given(st.integers(0, 2**128 - 1))
def test_is_canonical_ipv6_agrees_with_rfc5952_printing(value: int) -> None:
    """AD21: Is canonical IPv6 agrees with rfc5952 printing."""
    address = ipaddress.IPv6Address(value)
    text = address.compressed
    assert is_canonical_ipv6(text) is (address.ipv4_mapped is None)
    assert not is_canonical_ipv6(address.exploded) or address.exploded == text
    assert format_ip(value, version=6) == text


@pytest.mark.parametrize(
    ("text", "canonical"),
    [("fd00::1", True), ("fd00::0:1", False), ("FD00::1", False), ("fd00:0:1::1", True), ("fd00::1:0:0:0:1", False),
     ("1:0:0:1::1", True), ("1::1:0:0:0:1", False), ("::", True), ("::1", True), ("1::", True), ("1:0::1", False),
     ("1:2:3:4:5:6:7:8", True), ("1:2:3:4:5:6:0:0", False), ("1:2:3:4:5:6::", True), ("::ffff:a00:1", False),
     ("1:0:0:2:0:0:0:3", False), ("1:0:0:2::3", True), ("1::2:0:0:3", True), ("01::1", False), ("", False)],
)
def test_is_canonical_ipv6_table(text: str, canonical: bool) -> None:
    """AD22: Is canonical IPv6 table."""
    assert is_canonical_ipv6(text) is canonical
