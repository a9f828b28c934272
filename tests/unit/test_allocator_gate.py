"""What only the compiled side has: one gate, agreement of the C parser and formatter with Python, memory, guards."""

from __future__ import annotations

import ipaddress
import re
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spiderpool import _fastalloc
from spiderpool.core import allocator as gate
from spiderpool.core import bitmap_ref as ref
from spiderpool.core.allocator import AllocatorError, PoolAllocator, Verdict

PACKAGE = Path(__file__).resolve().parents[2] / "spiderpool"
IMPORTS_FASTALLOC = re.compile(
    r"^\s*(from\s+spiderpool(\._fastalloc|\s+import\s+.*\b_fastalloc\b)|import\s+spiderpool\._fastalloc)", re.MULTILINE
)


def test_only_the_gate_imports_the_compiled_module() -> None:
    """ALG01: Only the gate imports the compiled module."""
    importers = sorted(str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
                       if IMPORTS_FASTALLOC.search(path.read_text()))
    assert importers == ["core/allocator.py"]


def test_verdict_codes_match_the_compiled_core() -> None:
    """ALG02: Verdict codes match the compiled core."""
    codes = [_fastalloc.VERDICT_OK, _fastalloc.VERDICT_TAKEN, _fastalloc.VERDICT_BLOCKED,
             _fastalloc.VERDICT_OUT_OF_RANGE]
    assert [Verdict(code) for code in codes] == [Verdict.OK, Verdict.TAKEN, Verdict.BLOCKED, Verdict.OUT_OF_RANGE]
    assert _fastalloc.CAPACITY_LIMIT == ref.CAPACITY_LIMIT


def outcome(parse: object, text: str) -> tuple[int, int] | None:
    assert callable(parse)
    try:
        result = parse(text)
    except AllocatorError:
        return None
    assert isinstance(result, tuple)
    return result


PIECES = ["", "0", "00", "0000", "00000", "1", "ffff", "FfFf", "12345", "g", "1.2.3.4", "01.2.3.4", "255.255.255.255",
          "1.2.3", "256.0.0.1", "ffff:1.2.3.4"]
address_like = st.one_of(
    st.lists(st.sampled_from(PIECES), min_size=1, max_size=10).map(":".join),
    st.text(alphabet="0123456789abcdefABCDEF:.% x", max_size=16),
    st.integers(0, (1 << 32) - 1).map(lambda a: str(ipaddress.IPv4Address(a))),
    st.integers(0, (1 << 128) - 1).map(lambda a: ipaddress.IPv6Address(a).exploded),
)


@settings(max_examples=2000, deadline=None)
@given(text=address_like)
def test_the_c_parser_agrees_with_the_reference_parser(text: str) -> None:
    """ALG03: The c parser agrees with the reference parser."""
    assert outcome(gate.parse_address, text) == outcome(ref.parse_address, text)


@settings(max_examples=1000, deadline=None)
@given(version=st.sampled_from([4, 6]), data=st.data())
def test_the_c_formatter_agrees_with_ipaddress(version: int, data: st.DataObject) -> None:
    """ALG04: The c formatter agrees with ipaddress."""
    address = data.draw(st.integers(0, ref.FAMILY_MAX[version]))
    if version == 6 and address >> 32 == 0xFFFF:
        address |= 1 << 127  # out of ::ffff:0:0/96, which Python 3.13 started printing in dotted form
    text = gate.format_address(version, address)
    assert text == str(ipaddress.ip_address(address) if version == 4 else ipaddress.IPv6Address(address))
    assert text == ref.format_address(version, address)
    assert gate.parse_address(text) == (version, address)


def test_memory_is_about_one_bit_per_address() -> None:
    """ALG05: Memory is about one bit per address."""
    capacity = 1 << 24
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        pool = PoolAllocator(version=6, ranges=[(1 << 100, (1 << 100) + capacity - 1)])
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert pool.capacity == capacity
    assert capacity // 8 <= used <= capacity // 8 * 1.02 + 4096


def test_the_compiled_core_refuses_bad_input_instead_of_crashing() -> None:
    """ALG06: The compiled core refuses bad input instead of crashing."""
    with pytest.raises(ValueError, match="spans"):
        _fastalloc.BitmapCore(4, [(10, 20), (5, 6)])
    with pytest.raises(ValueError, match="16777216"):
        _fastalloc.BitmapCore(6, [(0, 1 << 24)])
    with pytest.raises(OverflowError):
        _fastalloc.BitmapCore(4, [(0, 1 << 32)])
    core = _fastalloc.BitmapCore(4, [(10, 20)])
    with pytest.raises(ValueError, match="blocked range 0"):
        core.set_blocked([(5, 11)])
    with pytest.raises(ValueError, match="blocked range 1"):
        core.set_blocked([(1, 3), (2, 4)])
    with pytest.raises(ValueError, match="bytes"):
        core.load_words(b"\x00" * 9)
    with pytest.raises(ValueError, match="capacity"):
        core.load_words(b"\x00" * 7 + b"\x80")
    with pytest.raises(OverflowError):
        core.allocate_specific(-1)
    with pytest.raises(TypeError):
        core.release("10")  # type: ignore[arg-type]
    assert (core.used_count, core.free_count, core.allocate()) == (0, 11, 10)  # failed calls changed nothing
