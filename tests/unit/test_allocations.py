from __future__ import annotations

import ipaddress

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from spiderpool.core.allocations import (
    AllocationsFormatError,
    PoolIPAllocation,
    allocated_ip_count,
    decode_allocated_ips,
    encode_allocated_ips,
)

UPSTREAM = '{"172.18.40.10":{"pod":"default/app-58b7-mvwpf","podUid":"4009cb83-9a6f-4b5c-8d2e-3f1a2b3c4d5e"}}'


def test_decodes_upstreams_format() -> None:
    """ALC01: Decodes upstreams format."""
    records = decode_allocated_ips(UPSTREAM)
    record = records["172.18.40.10"]
    assert record == PoolIPAllocation(pod="default/app-58b7-mvwpf", pod_uid="4009cb83-9a6f-4b5c-8d2e-3f1a2b3c4d5e")
    assert (record.namespace, record.name) == ("default", "app-58b7-mvwpf")
    assert allocated_ip_count(records) == 1


def test_encodes_byte_for_byte_like_go() -> None:
    """ALC02: Encodes byte for byte like go."""
    records = {
        "10.0.0.2": PoolIPAllocation("ns/b", "uid-b"),
        "10.0.0.10": PoolIPAllocation("ns/a", "uid-a"),
        "10.0.0.1": PoolIPAllocation("ns/c", "uid-c"),
    }
    # Go's json.Marshal sorts map keys as strings ("10.0.0.10" < "10.0.0.2") and writes no spaces.
    assert encode_allocated_ips(records) == (
        '{"10.0.0.1":{"pod":"ns/c","podUid":"uid-c"},"10.0.0.10":{"pod":"ns/a","podUid":"uid-a"},'
        '"10.0.0.2":{"pod":"ns/b","podUid":"uid-b"}}'
    )
    assert encode_allocated_ips(decode_allocated_ips(UPSTREAM)) == UPSTREAM


@pytest.mark.parametrize("empty", [None, ""])
def test_absent_status_is_no_records(empty: str | None) -> None:
    """ALC03: Absent status is no records."""
    assert decode_allocated_ips(empty) == {}


def test_no_records_encode_to_an_absent_field() -> None:
    """ALC04: No records encode to an absent field."""
    assert encode_allocated_ips({}) is None
    assert decode_allocated_ips("{}") == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ('"x"', "must be a JSON object"),
        ('{"10.0.0.1": 5}', "key '10.0.0.1': record must be an object"),
        ('{"10.0.0.1": {"podUid": "u"}}', "key '10.0.0.1': 'pod' must be a string"),
        ('{"10.0.0.1": {"pod": 3, "podUid": "u"}}', "key '10.0.0.1': 'pod' must be a string"),
        ('{"10.0.0.1": {"pod": "ns/a"}}', "key '10.0.0.1': 'podUid' must be a non-empty string"),
        ('{"10.0.0.1": {"pod": "ns/a", "podUid": 7}}', "'podUid' must be a non-empty string"),
        ('{"10.0.0.1": {"pod": "ns/a", "podUid": ""}}', "'podUid' must be a non-empty string"),
        ('{"10.0.0.1": {"pod": "a", "podUid": "u"}}', "'pod' must be 'namespace/name', got 'a'"),
        ('{"10.0.0.1": {"pod": "/a", "podUid": "u"}}', "'pod' must be 'namespace/name'"),
        ('{"10.0.0.1": {"pod": "ns/", "podUid": "u"}}', "'pod' must be 'namespace/name'"),
        ('{"10.0.0.1": {"pod": "ns/a/b", "podUid": "u"}}', "'pod' must be 'namespace/name'"),
        ('{"pod-a": {"pod": "ns/a", "podUid": "u"}}', "key 'pod-a' is not an IP address"),
        ('{"10.0.0.256": {"pod": "ns/a", "podUid": "u"}}', "key '10.0.0.256' is not an IP address"),
        ('{"10.0.0.1/24": {"pod": "ns/a", "podUid": "u"}}', "key '10.0.0.1/24' is not an IP address"),
        ('{"fd00::1": {"pod": "ns/a", "podUid": "u"}, "fd00::0:1": {"pod": "ns/b", "podUid": "v"}}',
         "the same address as another key"),
        ('{"fd00::0:1": {"pod": "ns/b", "podUid": "v"}, "fd00::1": {"pod": "ns/a", "podUid": "u"}}',
         "the same address as another key"),
    ],
)
def test_malformed_status_is_rejected_with_what_and_where(text: str, message: str) -> None:
    """ALC05: Malformed status is rejected with what and where."""
    with pytest.raises(AllocationsFormatError, match=r"status\.allocatedIPs") as caught:
        decode_allocated_ips(text)
    assert message in str(caught.value)


def test_family_is_checked_when_asked() -> None:
    """ALC06: Family is checked when asked."""
    v4 = '{"10.0.0.1": {"pod": "ns/a", "podUid": "u"}}'
    v6 = '{"fd00::1": {"pod": "ns/a", "podUid": "u"}}'
    assert decode_allocated_ips(v4, version=4)
    assert decode_allocated_ips(v6, version=6)
    with pytest.raises(AllocationsFormatError, match="not an IPv6 address"):
        decode_allocated_ips(v4, version=6)
    with pytest.raises(AllocationsFormatError, match="not an IPv4 address"):
        decode_allocated_ips(v6, version=4)


def test_keys_come_back_canonical() -> None:
    """ALC07: Keys come back canonical."""
    records = decode_allocated_ips('{"FD00:0::0001": {"pod": "ns/a", "podUid": "u"}}')
    assert list(records) == ["fd00::1"]


def test_field_names_match_case_insensitively_like_go() -> None:
    """ALC08: Field names match case insensitively like go."""
    records = decode_allocated_ips('{"10.0.0.1": {"Pod": "ns/a", "PODUID": "u", "extra": 1}}')
    assert records == {"10.0.0.1": PoolIPAllocation("ns/a", "u")}


_NAME = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True)
_RECORD = st.builds(PoolIPAllocation, pod=st.builds(lambda ns, n: f"{ns}/{n}", _NAME, _NAME),
                    pod_uid=st.uuids().map(str))
_V4 = st.integers(0, 2**32 - 1).map(lambda v: str(ipaddress.IPv4Address(v)))
_V6 = st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address).filter(lambda a: a.ipv4_mapped is None).map(str)


@given(st.dictionaries(_V4, _RECORD, max_size=15))
def test_v4_round_trip(records: dict[str, PoolIPAllocation]) -> None:
    """ALC09: V4 round trip."""
    text = encode_allocated_ips(records)
    assert decode_allocated_ips(text) == records
    assert (text is None) == (not records)
    if text is not None:
        assert encode_allocated_ips(decode_allocated_ips(text)) == text
        assert list(orjson.loads(text)) == sorted(records)


@given(st.dictionaries(_V6, _RECORD, max_size=15))
def test_v6_round_trip(records: dict[str, PoolIPAllocation]) -> None:
    """ALC10: V6 round trip."""
    text = encode_allocated_ips(records)
    assert decode_allocated_ips(text, version=6) == records
    assert allocated_ip_count(decode_allocated_ips(text)) == len(records)


def test_a_full_pool_decodes() -> None:
    """ALC11: A full pool decodes."""
    records = {str(ipaddress.IPv4Address(0x0A000000 + i)): PoolIPAllocation(f"ns/pod-{i}", f"uid-{i}")
               for i in range(16_000)}
    text = encode_allocated_ips(records)
    assert text is not None
    assert len(text) < 1_500_000  # fits etcd's default request limit, as the design promises
    assert decode_allocated_ips(text, version=4) == records


def test_the_nic_key_is_ours_written_when_known_and_read_back() -> None:
    """ALC12: A record's NIC is written as ``"nic"`` (keys still sorted like Go's) only when known, and read back on
    both decoding paths; a record without one encodes exactly as upstream's."""
    uid = "4009cb83-9a6f-4b5c-8d2e-3f1a2b3c4d5e"
    records = {"172.18.40.10": PoolIPAllocation(pod="default/a", pod_uid=uid, nic="net1"),
               "172.18.40.11": PoolIPAllocation(pod="default/b", pod_uid=uid)}
    encoded = encode_allocated_ips(records)
    assert encoded == ('{"172.18.40.10":{"nic":"net1","pod":"default/a","podUid":"' + uid + '"},'
                       '"172.18.40.11":{"pod":"default/b","podUid":"' + uid + '"}}')
    assert decode_allocated_ips(encoded) == records
    irregular = '{"fd00::0:1":{"nic":"eth0","pod":"default/a","podUid":"u"}}'  # the careful path
    assert decode_allocated_ips(irregular) == {"fd00::1": PoolIPAllocation("default/a", "u", "eth0")}


def test_a_nic_that_is_not_a_string_is_refused_naming_the_key() -> None:
    """ALC13: A ``"nic"`` that is not a string is malformed, and the error names the address and the key."""
    with pytest.raises(AllocationsFormatError, match=r"key '10.0.0.1': 'nic' must be a string"):
        decode_allocated_ips('{"10.0.0.1":{"nic":7,"pod":"default/a","podUid":"u"}}')
