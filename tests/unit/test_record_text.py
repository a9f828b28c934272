"""Incremental decoding and encoding of ``status.allocatedIPs`` (``spiderpool.core.record_text``): always exactly what
the full codec says, with work proportional to the records that changed."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spiderpool.core import record_text
from spiderpool.core.allocations import (
    AllocationsFormatError,
    PoolIPAllocation,
    decode_allocated_ips,
    encode_allocated_ips,
)
from spiderpool.core.record_text import DecodedRecords, RecordsCodec, RecordsCodecs, changed_addresses

_NAME = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,12}[a-z0-9])?", fullmatch=True)
_NIC = st.sampled_from(["", "eth0", "net1"])
_RECORD = st.builds(PoolIPAllocation, pod=st.builds(lambda ns, n: f"{ns}/{n}", _NAME, _NAME),
                    pod_uid=st.uuids().map(str), nic=_NIC)
_V4 = st.integers(0, 300).map(lambda v: str(ipaddress.IPv4Address(0x0A000000 + v)))
_V6 = st.integers(0, 300).map(lambda v: str(ipaddress.IPv6Address(0xFD00 << 112 | v)))
_STEP = st.tuples(st.lists(st.one_of(_V4, _V6), max_size=6), st.dictionaries(st.one_of(_V4, _V6), _RECORD,
                                                                              max_size=6))


def _brute_diff(old: dict[str, PoolIPAllocation], new: dict[str, PoolIPAllocation]) -> tuple[set[str], set[str]]:
    return {ip for ip in old if ip not in new}, {ip for ip, record in new.items() if old.get(ip) != record}


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.one_of(_V4, _V6), _RECORD, max_size=40), st.lists(_STEP, max_size=12))
def test_rt01_a_history_encodes_and_decodes_exactly_as_the_full_codec(
    start: dict[str, PoolIPAllocation], steps: list[tuple[list[str], dict[str, PoolIPAllocation]]]
) -> None:
    """RT01: one agent writes a random history of changes (records removed, added and replaced, both families, with
    and without a NIC) by incremental encodes; every text is byte for byte the full encoder's, and a second codec
    (another agent's) decodes each to exactly the full decoder's records, with the same differences as a
    record-by-record comparison."""
    writer, reader = RecordsCodec(), RecordsCodec()
    base = writer.decode(encode_allocated_ips(start))
    seen = reader.decode(base.text)
    for removing, adding in steps:
        removed = [ip for ip in removing if ip in base.records and ip not in adding]
        added = adding  # an address of base among them: its record is replaced
        records = {ip: record for ip, record in base.records.items() if ip not in removed} | added
        written = writer.encode(records, base=base, removed=removed, added=added)
        assert written.text == encode_allocated_ips(records)
        assert written.records == records
        decoded = reader.decode(written.text)
        assert decoded.records == decode_allocated_ips(written.text)
        gone, came = changed_addresses(seen, decoded)
        assert (set(gone), set(came)) == _brute_diff(seen.records, decoded.records)
        base, seen = written, decoded


_MALFORMED = [
    "{",
    "[]",
    '"x"',
    '{"10.0.0.1":5}',
    '{"10.0.0.1":{"podUid":"u"}}',
    '{"10.0.0.1":{"pod":3,"podUid":"u"}}',
    '{"10.0.0.1":{"pod":"ns/a"}}',
    '{"10.0.0.1":{"pod":"ns/a","podUid":""}}',
    '{"10.0.0.1":{"pod":"a","podUid":"u"}}',
    '{"10.0.0.1":{"pod":"ns/a/b","podUid":"u"}}',
    '{"10.0.0.256":{"pod":"ns/a","podUid":"u"}}',
    '{"fd00::1":{"pod":"ns/a","podUid":"u"},"fd00::0:1":{"pod":"ns/b","podUid":"v"}}',
    '{"10.0.0.1":{"pod":"ns/a","podUid":"u"},"10.0.0.2":{"pod":"ns/b","podUid":"v"},"10.0.0.3":{"pod":"x"}}',
    '{"10.0.0.1":{"nic":7,"pod":"ns/a","podUid":"u"}}',
]


@pytest.mark.parametrize("text", _MALFORMED)
def test_rt02_a_malformed_string_fails_as_the_full_decoder_fails(text: str) -> None:
    """RT02: a malformed string (bad JSON, bad records, bad keys, the same address twice), decoded by a codec that
    already knows valid records of that pool, raises the full decoder's error with its message."""
    with pytest.raises(AllocationsFormatError) as full:
        decode_allocated_ips(text)
    codec = RecordsCodec()
    codec.decode('{"10.0.0.1":{"pod":"ns/a","podUid":"u"},"10.0.0.2":{"pod":"ns/b","podUid":"v"}}')
    with pytest.raises(AllocationsFormatError) as incremental:
        codec.decode(text)
    assert str(incremental.value) == str(full.value)


_UNUSUAL = [
    '{"10.0.0.1":{"nic":"a},\\"10.0.0.9\\":{\\"pod","pod":"ns/a","podUid":"u"}}',  # the cut inside a value
    '{"10.0.0.1":{"pod":"ns/a","podUid":"u","extra":{"x":"y"}},"10.0.0.2":{"pod":"ns/b","podUid":"v"}}',
    '{"10.0.0.1":{"pod":"ns\\/a","podUid":"u"}}',  # an escaped slash
    '{"10.0.0.1": {"pod": "ns/a", "podUid": "u"}}',  # spaces
    '{"10.0.0.1":{"podUid":"u","pod":"ns/a"}}',  # fields out of order
    '{"10.0.0.1":{"nic":"","pod":"ns/a","podUid":"u"}}',  # an empty NIC written out
    '{"10.0.0.1":{"pod":"ns/a","podUid":"u"},"10.0.0.1":{"pod":"ns/b","podUid":"v"}}',  # a key twice: last wins
    '{"FD00::1":{"pod":"ns/a","podUid":"u"}}',  # a non-canonical key
    '{"10.0.0.1":{"Pod":"ns/a","PODUID":"u"}}',  # Go's case-insensitive field names
]


@pytest.mark.parametrize("text", _UNUSUAL)
def test_rt03_unusual_but_valid_strings_decode_as_the_full_decoder_says(text: str) -> None:
    """RT03: strings other writers might produce (a ``},"`` inside a value, nested unknown fields, escapes, spaces,
    field order, an empty NIC, a key twice, non-canonical keys, Go's folded field names) decode to exactly the full
    decoder's records, and a change encoded on top of them is the canonical text."""
    codec = RecordsCodec()
    decoded = codec.decode(text)
    assert decoded.records == decode_allocated_ips(text)
    added = {"10.0.0.200": PoolIPAllocation("ns/z", "uz", "eth0")}
    records = {**decoded.records, **added}
    assert codec.encode(records, base=decoded, added=added).text == encode_allocated_ips(records)


def test_rt04_only_new_records_are_parsed_and_a_known_text_is_free(monkeypatch: pytest.MonkeyPatch) -> None:
    """RT04: after a pool of 500 records is decoded once, a string with one record more is decoded by parsing that
    one record; the same text again is the same decoded object; a text this codec wrote costs no parse at all."""
    parsed: list[str] = []
    real = record_text._parse_part

    def counting(part: str, version: int | None) -> tuple[str, PoolIPAllocation] | None:
        parsed.append(part)
        return real(part, version)

    monkeypatch.setattr(record_text, "_parse_part", counting)
    records = {str(ipaddress.IPv4Address(0x0A000001 + i)): PoolIPAllocation(f"ns/p{i}", f"u{i}") for i in range(500)}
    codec = RecordsCodec()
    first = codec.decode(encode_allocated_ips(records))
    assert len(parsed) == 500
    parsed.clear()
    grown = {**records, "10.0.9.9": PoolIPAllocation("ns/new", "u-new", "eth0")}
    second = codec.decode(encode_allocated_ips(grown))
    assert second.records == grown
    assert len(parsed) == 1
    assert codec.decode(str(second.text)) is second
    written = codec.encode({**grown, "10.0.9.10": PoolIPAllocation("ns/w", "uw")}, base=second,
                           added={"10.0.9.10": PoolIPAllocation("ns/w", "uw")})
    parsed.clear()
    echoed = "".join(str(written.text))  # the API server's answer: an equal string, another object
    assert codec.decode(echoed).records == written.records
    assert parsed == []
    assert changed_addresses(first, second) == ([], ["10.0.9.9"])


def test_rt05_the_table_of_known_records_stays_bounded() -> None:
    """RT05: a pool whose records are all replaced many times keeps a table of about twice its records, not every
    record it ever saw."""
    codec = RecordsCodec()
    for round_ in range(30):
        records = {str(ipaddress.IPv4Address(0x0A000001 + i)): PoolIPAllocation(f"ns/p{round_}-{i}", f"u{round_}-{i}")
                   for i in range(100)}
        codec.decode(encode_allocated_ips(records))
    assert len(codec._known) <= 2 * 100 + record_text._KNOWN_SLACK + 100


def test_rt06_no_records_and_codecs_per_pool() -> None:
    """RT06: an absent or empty string is no records (and encodes back to an absent field); each pool has its own
    codec, forgotten with the pool."""
    codec = RecordsCodec()
    assert codec.decode(None).records == {}
    assert codec.decode("").records == {}
    assert codec.encode({}).text is None
    empty = DecodedRecords(None, {}, [])
    one = {"10.0.0.1": PoolIPAllocation("ns/a", "u")}
    assert codec.encode(one, base=empty, added=one).text == encode_allocated_ips(one)
    codecs = RecordsCodecs()
    assert codecs.of("a") is codecs.of("a")
    assert codecs.of("a") is not codecs.of("b")
    first = codecs.of("a")
    codecs.forget("a")
    assert codecs.of("a") is not first
