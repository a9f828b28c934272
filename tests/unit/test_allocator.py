"""The allocator contract, run on both implementations: the compiled PoolAllocator and the pure-Python reference."""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import orjson
import pytest

from spiderpool.core import allocator as gate
from spiderpool.core import bitmap_ref as ref
from spiderpool.core.allocator import AllocatorError, PoolAllocator, Verdict
from spiderpool.core.bitmap_ref import ReferenceAllocator

Allocator = PoolAllocator | ReferenceAllocator


@dataclass(frozen=True)
class Impl:
    cls: type[PoolAllocator] | type[ReferenceAllocator]
    parse_address: Callable[[str], tuple[int, int]]
    format_address: Callable[[int, int], str]

    def pool(self, version: int, *ranges: tuple[int, int]) -> Allocator:
        return self.cls(version=version, ranges=list(ranges))

    def restore(self, data: bytes) -> Allocator:
        return self.cls.restore(data)


IMPLS = {
    "compiled": Impl(PoolAllocator, gate.parse_address, gate.format_address),
    "reference": Impl(ReferenceAllocator, ref.parse_address, ref.format_address),
}


@pytest.fixture(params=sorted(IMPLS))
def impl(request: pytest.FixtureRequest) -> Impl:
    return IMPLS[request.param]


def v4(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def v6(text: str) -> int:
    return int(ipaddress.IPv6Address(text))


def drain(allocator: Allocator) -> list[int]:
    taken = []
    while (address := allocator.allocate()) is not None:
        taken.append(address)
    return taken


# ---- construction ----


def test_ranges_are_merged_and_walked_in_ascending_order(impl: Impl) -> None:
    """ALO01: Ranges are merged and walked in ascending order."""
    pool = impl.pool(4, (v4("10.0.0.20"), v4("10.0.0.22")), (v4("10.0.0.1"), v4("10.0.0.3")),
                     (v4("10.0.0.2"), v4("10.0.0.5")), (v4("10.0.0.6"), v4("10.0.0.6")))
    assert (pool.version, pool.capacity, pool.free_count, pool.used_count) == (4, 9, 9, 0)
    expected = [*range(v4("10.0.0.1"), v4("10.0.0.6") + 1), *range(v4("10.0.0.20"), v4("10.0.0.22") + 1)]
    assert drain(pool) == expected
    assert (pool.free_count, pool.used_count) == (0, 9)
    assert list(pool.iter_used()) == expected


def test_empty_pool_has_nothing_to_give(impl: Impl) -> None:
    """ALO02: Empty pool has nothing to give."""
    pool = impl.pool(6)
    assert (pool.capacity, pool.free_count) == (0, 0)
    assert pool.allocate() is None
    assert pool.allocate_n(0) == []
    assert pool.allocate_n(1) is None
    assert list(pool.iter_used()) == []


@pytest.mark.parametrize(
    ("version", "ranges", "field", "shown"),
    [
        (5, [(1, 2)], "version", "5"),
        (True, [(1, 2)], "version", "true"),
        (4, [(1, 2), (9, 3)], "ranges[1]", "0.0.0.9"),
        (4, [(0, 1 << 32)], "ranges[0][1]", str(1 << 32)),
        (6, [(-1, 5)], "ranges[0][0]", "-1"),
        (4, [(1, 2.0)], "ranges[0][1]", "2.0"),
        (4, [(1, 2, 3)], "ranges[0]", "[1,2,3]"),
        (4, "10.0.0.1-10.0.0.9", "ranges", "10.0.0.1-10.0.0.9"),
    ],
)
def test_bad_construction_names_the_field_and_value(
    impl: Impl, version: int, ranges: list[tuple[int, int]], field: str, shown: str
) -> None:
    """ALO03: Bad construction names the field and value."""
    with pytest.raises(AllocatorError) as caught:
        impl.cls(version=version, ranges=ranges)
    assert caught.value.field == field
    assert shown in str(caught.value)


def test_capacity_limit_is_two_to_the_24(impl: Impl) -> None:
    """ALO04: Capacity limit is two to the 24."""
    base = v6("fd00:1::")
    pool = impl.pool(6, (base, base + (1 << 24) - 1))
    assert pool.capacity == 1 << 24
    assert pool.allocate() == base
    assert pool.allocate_specific(base + (1 << 24) - 1) is Verdict.OK
    assert list(pool.iter_used()) == [base, base + (1 << 24) - 1]
    with pytest.raises(AllocatorError, match="16777217 addresses") as caught:
        impl.pool(4, (0, (1 << 23) - 1), (1 << 24, (1 << 24) + (1 << 23)))
    assert caught.value.field == "ranges"


# ---- allocation ----


def test_allocate_specific_says_why_it_refuses(impl: Impl) -> None:
    """ALO05: Allocate specific says why it refuses."""
    pool = impl.pool(4, (v4("10.0.0.1"), v4("10.0.0.9")), (v4("10.0.0.20"), v4("10.0.0.29")))
    pool.set_excluded([(v4("10.0.0.5"), v4("10.0.0.5"))])
    pool.set_reserved([(v4("10.0.0.6"), v4("10.0.0.6"))])
    assert pool.allocate_specific(v4("10.0.0.3")) is Verdict.OK
    assert pool.allocate_specific(v4("10.0.0.3")) is Verdict.TAKEN
    assert pool.allocate_specific(v4("10.0.0.5")) is Verdict.BLOCKED
    assert pool.allocate_specific(v4("10.0.0.6")) is Verdict.BLOCKED
    assert pool.allocate_specific(v4("10.0.0.15")) is Verdict.OUT_OF_RANGE  # in the gap between the ranges
    assert pool.allocate_specific(v4("10.0.0.30")) is Verdict.OUT_OF_RANGE
    assert list(pool.iter_used()) == [v4("10.0.0.3")]
    with pytest.raises(AllocatorError, match="address") as caught:
        pool.allocate_specific(v6("2001:db8::1"))
    assert caught.value.value == v6("2001:db8::1")


def test_allocate_n_is_all_or_nothing(impl: Impl) -> None:
    """ALO06: Allocate n is all or nothing."""
    pool = impl.pool(4, (100, 104))
    pool.set_reserved([(101, 101)])
    before = pool.snapshot()
    assert pool.allocate_n(5) is None
    assert pool.snapshot() == before
    assert pool.allocate_n(1 << 70) is None
    assert pool.allocate_n(4) == [100, 102, 103, 104]
    assert pool.allocate_n(1) is None
    for bad in (-1, 1.5, "2"):
        with pytest.raises(AllocatorError) as caught:
            pool.allocate_n(bad)  # type: ignore[arg-type]
        assert caught.value.field == "n"


def test_release_frees_for_the_next_lowest_first_allocation(impl: Impl) -> None:
    """ALO07: Release frees for the next lowest first allocation."""
    pool = impl.pool(6, (v6("2001:db8::a"), v6("2001:db8::f")))
    assert pool.allocate_n(3) == [v6("2001:db8::a"), v6("2001:db8::b"), v6("2001:db8::c")]
    assert pool.release(v6("2001:db8::b")) is True
    assert pool.release(v6("2001:db8::b")) is False
    assert pool.release(v6("2001:db8::1")) is False  # outside the pool: never used
    assert pool.allocate() == v6("2001:db8::b")
    with pytest.raises(AllocatorError):
        pool.release(-5)


def test_mark_used_records_what_a_watch_event_shows(impl: Impl) -> None:
    """ALO08: Mark used records what a watch event shows."""
    pool = impl.pool(4, (10, 19))
    assert pool.mark_used(12) is True
    assert pool.mark_used(12) is False
    assert [pool.is_used(a) for a in (12, 13, 99)] == [True, False, False]
    assert pool.allocate_n(3) == [10, 11, 13]
    with pytest.raises(AllocatorError, match="not in the pool") as caught:
        pool.mark_used(25)
    assert caught.value.value == 25


# ---- excluded and reserved addresses ----


def test_excluded_and_reserved_are_replaced_clipped_and_counted_once(impl: Impl) -> None:
    """ALO09: Excluded and reserved are replaced clipped and counted once."""
    pool = impl.pool(4, (10, 19), (30, 39))
    pool.set_excluded([(0, 11), (35, 50)])  # only 10-11 and 35-39 are in the pool
    assert pool.free_count == 13
    pool.set_reserved([(11, 12), (36, 36)])  # 11 and 36 already excluded: counted once
    assert pool.free_count == 12
    assert pool.capacity == 20
    assert drain(pool) == [*range(13, 20), *range(30, 35)]
    pool.set_excluded([])
    assert drain(pool) == [10, 35, 37, 38, 39]
    with pytest.raises(AllocatorError) as caught:
        pool.set_reserved([(5, 1)])
    assert caught.value.field == "reserved[0]"


def test_a_used_address_that_becomes_blocked_stays_used_until_released(impl: Impl) -> None:
    """ALO10: A used address that becomes blocked stays used until released."""
    pool = impl.pool(4, (1, 4))
    assert pool.allocate_n(2) == [1, 2]
    pool.set_excluded([(2, 3)])
    assert (pool.is_used(2), pool.used_count, pool.free_count) == (True, 2, 1)
    assert pool.allocate_specific(2) is Verdict.TAKEN
    assert pool.release(2) is True
    assert pool.allocate_specific(2) is Verdict.BLOCKED
    assert pool.mark_used(3) is True  # a record on a blocked address still counts
    assert (pool.free_count, pool.used_count) == (1, 2)
    assert drain(pool) == [4]


# ---- bulk load, iteration, snapshot ----


def test_load_used_reports_every_rejected_text_in_order(impl: Impl) -> None:
    """ALO11: Load used reports every rejected text in order."""
    pool = impl.pool(4, (v4("10.0.0.1"), v4("10.0.0.9")))
    pool.set_excluded([(v4("10.0.0.9"), v4("10.0.0.9"))])
    texts = ["10.0.0.2", "10.0.0.02", "10.0.0.10", "::1", "10.0.0.9", " 10.0.0.3", "10.0.0.3\x00", "junk",
             "::ffff:10.0.0.4", "10.0.0.2", "", "10.0.0.5"]
    assert pool.load_used(texts) == ["10.0.0.02", "10.0.0.10", "::1", " 10.0.0.3", "10.0.0.3\x00", "junk",
                                     "::ffff:10.0.0.4", ""]
    assert list(pool.iter_used()) == [v4("10.0.0.2"), v4("10.0.0.5"), v4("10.0.0.9")]
    pool6 = impl.pool(6, (v6("fd00::1"), v6("fd00::ff")))
    assert pool6.load_used(["FD00:0:0::0A", "fd00::1%eth0", "fd00::100", "10.0.0.1"]) == [
        "fd00::1%eth0", "fd00::100", "10.0.0.1"]
    assert list(pool6.iter_used()) == [v6("fd00::a")]


def test_load_used_refuses_non_strings_before_marking_anything(impl: Impl) -> None:
    """ALO12: Load used refuses non strings before marking anything."""
    pool = impl.pool(4, (1, 9))
    with pytest.raises(AllocatorError) as caught:
        pool.load_used(["0.0.0.1", 2])  # type: ignore[list-item]
    assert (caught.value.field, caught.value.value) == ("addresses[1]", 2)
    with pytest.raises(AllocatorError) as caught:
        pool.load_used("0.0.0.1")
    assert caught.value.field == "addresses"
    assert pool.used_count == 0


def test_rebuild_from_an_upstream_allocated_ips_string(impl: Impl) -> None:
    """ALO13: Rebuild from an upstream allocated ips string."""
    used = [v4("172.18.40.10") + 5 * n for n in range(300)]
    records = {str(ipaddress.IPv4Address(a)): {"pod": f"default/app-{n}", "podUid": str(uuid.uuid4())}
               for n, a in enumerate(used)}
    status = orjson.dumps(records, option=orjson.OPT_SORT_KEYS).decode()
    pool = impl.pool(4, (v4("172.18.40.2"), v4("172.18.47.254")))
    assert pool.load_used(orjson.loads(status).keys()) == []
    assert list(pool.iter_used()) == used
    assert pool.used_count == 300
    assert pool.allocate() == v4("172.18.40.2")


def test_snapshot_restores_the_same_state_and_behaviour(impl: Impl) -> None:
    """ALO14: Snapshot restores the same state and behaviour."""
    pool = impl.pool(6, (v6("fd00::"), v6("fd00::1ff")), (v6("fd00::1000"), v6("fd00::1003")))
    pool.set_excluded([(v6("fd00::5"), v6("fd00::7"))])
    pool.set_reserved([(v6("fd00::1001"), v6("fd00::1001"))])
    pool.load_used([str(ipaddress.IPv6Address(v6("fd00::") + n)) for n in range(0, 512, 3)])
    copy = impl.restore(pool.snapshot())
    assert copy.snapshot() == pool.snapshot()
    assert (copy.capacity, copy.used_count, copy.free_count) == (pool.capacity, pool.used_count, pool.free_count)
    assert list(copy.iter_used()) == list(pool.iter_used())
    assert drain(copy) == drain(pool)


def test_snapshots_are_interchangeable_between_implementations() -> None:
    """ALO15: Snapshots are interchangeable between implementations."""
    pools = [cls(version=4, ranges=[(64, 300), (400, 401)]) for cls in (PoolAllocator, ReferenceAllocator)]
    for pool in pools:
        pool.set_excluded([(70, 140)])
        pool.set_reserved([(401, 500)])
        pool.allocate_n(100)
        pool.release(250)
    compiled, reference = pools
    assert compiled.snapshot() == reference.snapshot()
    assert ReferenceAllocator.restore(compiled.snapshot()).snapshot() == compiled.snapshot()
    assert PoolAllocator.restore(reference.snapshot()).snapshot() == reference.snapshot()


def _corrupt(data: bytes, offset: int, value: bytes) -> bytes:
    return data[:offset] + value + data[offset + len(value):]


def _snapshot_of(version: int, spans: list[tuple[int, int]], excluded: list[tuple[int, int]], words: bytes) -> bytes:
    parts = ref.SnapshotParts(version=version, spans=spans, excluded=excluded, reserved=[], words=words)
    return ref.encode_snapshot(parts)


GOOD = _snapshot_of(4, [(10, 99)], [(0, 3)], bytes(16))
MALFORMED = {
    "not bytes": "SPAL",
    "short header": GOOD[:10],
    "truncated": GOOD[:-1],
    "trailing byte": GOOD + b"\x00",
    "magic": _corrupt(GOOD, 0, b"XPAL"),
    "format": _corrupt(GOOD, 4, b"\x02"),
    "ip version": _corrupt(GOOD, 5, b"\x05"),
    "span count": _corrupt(GOOD, 8, b"\xff\xff\xff\x00"),
    "span order": _snapshot_of(4, [(50, 60), (10, 20)], [], bytes(8)),
    "adjacent spans": _snapshot_of(4, [(10, 20), (21, 30)], [], bytes(8)),
    "span beyond IPv4": _snapshot_of(4, [((1 << 32) - 1, 1 << 32)], [], bytes(8)),
    "too many addresses": _snapshot_of(6, [(0, 1 << 24)], [], bytes(((1 << 24) + 64) // 64 * 8)),
    "blocked beyond pool": _snapshot_of(4, [(10, 99)], [(80, 90)], bytes(16)),
    "blocked unmerged": _snapshot_of(4, [(10, 99)], [(1, 2), (3, 4)], bytes(16)),
    "padding bit": _snapshot_of(4, [(10, 99)], [], bytes(15) + b"\x80"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_restore_rejects_malformed_snapshots(impl: Impl, name: str) -> None:
    """ALO16: Restore rejects malformed snapshots."""
    with pytest.raises(AllocatorError) as caught:
        impl.restore(MALFORMED[name])  # type: ignore[arg-type]
    assert caught.value.field == "snapshot"


# ---- dual stack ----


def test_allocate_dual_takes_both_or_neither(impl: Impl) -> None:
    """ALO17: Allocate dual takes both or neither."""
    pool4, pool6 = impl.pool(4, (1, 2)), impl.pool(6, (v6("fd00::1"), v6("fd00::1")))
    dual = gate.allocate_dual if impl.cls is PoolAllocator else ref.allocate_dual
    assert dual(pool4, pool6) == (1, v6("fd00::1"))
    before = pool4.snapshot()
    assert dual(pool4, pool6) is None  # IPv6 exhausted: the IPv4 pool is untouched
    assert pool4.snapshot() == before
    assert pool6.release(v6("fd00::1"))
    pool4.allocate()
    before = pool6.snapshot()
    assert dual(pool4, pool6) is None  # IPv4 exhausted: the IPv6 pool is untouched
    assert pool6.snapshot() == before
    with pytest.raises(AllocatorError) as caught:
        dual(pool6, pool4)
    assert caught.value.field == "v4"


# ---- address text ----


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.6.1.5", (4, 0x0A060105)),
        ("0.0.0.0", (4, 0)),
        ("2001:DB8:0:0:1::1", (6, 0x20010DB8000000000001000000000001)),
        ("::", (6, 0)),
        ("::1.2.3.4", (6, 0x01020304)),
    ],
)
def test_parse_address(impl: Impl, text: str, expected: tuple[int, int]) -> None:
    """ALO18: Parse address."""
    assert impl.parse_address(text) == expected


@pytest.mark.parametrize("text", ["", "1.2.3", "1.2.3.256", "01.2.3.4", "1:2:3:4:5:6:7:8:9", "fe80::1%eth0",
                                  "::ffff:1.2.3.4", "1.2.3.4 ", "\udc80"])
def test_parse_address_rejects_and_names_the_text(impl: Impl, text: str) -> None:
    """ALO19: Parse address rejects and names the text."""
    with pytest.raises(AllocatorError) as caught:
        impl.parse_address(text)
    assert (caught.value.field, caught.value.value) == ("address", text)


@pytest.mark.parametrize(
    ("version", "address", "text"),
    [
        (4, 0xC0A80001, "192.168.0.1"),
        (6, 0, "::"),
        (6, 0x20010DB8000000000001000000000001, "2001:db8::1:0:0:1"),
        (6, 0x20010DB8000000010000000000000000, "2001:db8:0:1::"),
        (6, 0x00010000000000000000000000000001, "1::1"),
        (6, 0x00010002000300040005000600070008, "1:2:3:4:5:6:7:8"),
        (6, 0x00010000000200000000000000030000, "1:0:2::3:0"),
    ],
)
def test_format_address_is_canonical(impl: Impl, version: int, address: int, text: str) -> None:
    """ALO20: Format address is canonical."""
    assert impl.format_address(version, address) == text
    assert impl.parse_address(text) == (version, address)


def test_format_address_validates_its_input(impl: Impl) -> None:
    """ALO21: Format address validates its input."""
    with pytest.raises(AllocatorError) as caught:
        impl.format_address(4, 1 << 32)
    assert caught.value.field == "address"
    with pytest.raises(AllocatorError) as caught:
        impl.format_address(7, 1)
    assert caught.value.field == "version"


def test_summary_levels_at_full_scale(impl: Impl) -> None:
    """ALO22: A 2**24 pool, full except holes placed on word and summary-level boundaries: found lowest first."""
    base = v6("fd00:ff::")
    capacity = 1 << 24
    holes = [0, 63, 64, 4095 * 64 + 1, 64 * 64 * 64 * 7, 64 * 64 * 64 * 7 + 64 * 64, capacity - 1]
    full = (1 << capacity) - 1
    for hole in holes:
        full &= ~(1 << hole)
    pool = impl.restore(_snapshot_of(6, [(base, base + capacity - 1)], [], full.to_bytes(capacity // 8, "little")))
    assert (pool.used_count, pool.free_count) == (capacity - len(holes), len(holes))
    pool.set_reserved([(base + holes[2], base + holes[2])])
    assert drain(pool) == [base + hole for hole in holes if hole != holes[2]]
    for hole in (holes[5], holes[1], capacity - 1):
        assert pool.release(base + hole)
    assert pool.allocate_n(3) == [base + holes[1], base + holes[5], base + capacity - 1]
    assert pool.allocate() is None
    pool.set_reserved([])
    assert pool.allocate() == base + holes[2]
