"""Property tests: the compiled and the reference allocator against a plain ``set`` model, after every step."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from spiderpool.core import allocator as gate
from spiderpool.core import bitmap_ref as ref
from spiderpool.core.allocator import AllocatorError, PoolAllocator, Verdict
from spiderpool.core.bitmap_ref import FAMILY_MAX, ReferenceAllocator

Ranges = list[tuple[int, int]]


@st.composite
def layouts(draw: st.DrawFn) -> tuple[int, Ranges]:
    """An IP family and 1-4 ranges near one base: unsorted, with gaps, sometimes overlapping or touching."""
    version = draw(st.sampled_from([4, 6]))
    top = FAMILY_MAX[version]
    base = draw(st.one_of(st.just(0), st.integers(0, top - 400), st.just(top - 400)))
    ranges = []
    for _ in range(draw(st.integers(1, 4))):  # small enough to exhaust, wide enough to span several words
        start = base + draw(st.integers(0, 300))
        ranges.append((start, min(top, start + draw(st.integers(0, 70)))))
    return version, ranges


def expand(ranges: Ranges) -> set[int]:
    return {address for first, last in ranges for address in range(first, last + 1)}


def model_parse(text: str, version: int) -> int | None:
    """What a text means as an address of ``version`` by Python's ipaddress and the documented extra rules."""
    if "%" in text:
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if address.version != version or (version == 6 and int(address) >> 32 == 0xFFFF):  # IPv4-mapped refused
        return None
    return int(address)


@dataclass
class Model:
    version: int
    pool: list[int]
    used: set[int] = field(default_factory=set)
    excluded: set[int] = field(default_factory=set)
    reserved: set[int] = field(default_factory=set)

    def free(self) -> list[int]:
        return [a for a in self.pool if a not in self.used and a not in self.excluded and a not in self.reserved]

    def verdict(self, address: int) -> Verdict:
        if address not in self.pool:
            return Verdict.OUT_OF_RANGE
        if address in self.used:
            return Verdict.TAKEN
        if address in self.excluded or address in self.reserved:
            return Verdict.BLOCKED
        return Verdict.OK


class AllocatorMachine(RuleBasedStateMachine):
    compiled: PoolAllocator
    reference: ReferenceAllocator
    model: Model

    @initialize(layout=layouts())
    def build(self, layout: tuple[int, Ranges]) -> None:
        version, ranges = layout
        self.compiled = PoolAllocator(version=version, ranges=ranges)
        self.reference = ReferenceAllocator(version=version, ranges=ranges)
        self.model = Model(version=version, pool=sorted(expand(ranges)))

    def both(self) -> tuple[PoolAllocator, ReferenceAllocator]:
        return self.compiled, self.reference

    def addresses(self) -> st.SearchStrategy[int]:
        low, high = self.model.pool[0], self.model.pool[-1]
        near = st.integers(max(0, low - 3), min(FAMILY_MAX[self.model.version], high + 3))
        return st.one_of(st.sampled_from(self.model.pool), near)

    def blocked_ranges(self) -> st.SearchStrategy[Ranges]:
        def widen(pair: tuple[int, int]) -> tuple[int, int]:
            return pair[0], min(FAMILY_MAX[self.model.version], pair[0] + pair[1])

        return st.lists(st.tuples(self.addresses(), st.integers(0, 40)).map(widen), max_size=3)

    def texts(self) -> st.SearchStrategy[str]:
        other = 6 if self.model.version == 4 else 4
        spellings = st.sampled_from([str, lambda a: a.exploded, lambda a: a.exploded.upper()])
        same = st.builds(lambda a, spell: spell(ipaddress.ip_address(a) if self.model.version == 4
                                                else ipaddress.IPv6Address(a)), self.addresses(), spellings)
        foreign = st.integers(0, FAMILY_MAX[other]).map(
            lambda a: str(ipaddress.IPv4Address(a) if other == 4 else ipaddress.IPv6Address(a)))
        junk = st.text(alphabet="0123456789abcdef.:% x", max_size=12)
        return st.one_of(same, same, foreign, junk)

    @rule()
    def allocate(self) -> None:
        free = self.model.free()
        expected = free[0] if free else None
        for allocator in self.both():
            assert allocator.allocate() == expected
        if expected is not None:
            self.model.used.add(expected)

    @rule()
    def drain(self) -> None:
        free = self.model.free()
        for allocator in self.both():
            assert [allocator.allocate() for _ in range(len(free) + 1)] == [*free, None]
        self.model.used.update(free)

    @rule(n=st.integers(0, 6))
    def allocate_n(self, n: int) -> None:
        free = self.model.free()
        expected = free[:n] if n <= len(free) else None
        for allocator in self.both():
            assert allocator.allocate_n(n) == expected
        self.model.used.update(expected or [])

    @rule(data=st.data())
    def allocate_specific(self, data: st.DataObject) -> None:
        address = data.draw(self.addresses())
        expected = self.model.verdict(address)
        for allocator in self.both():
            assert allocator.allocate_specific(address) is expected
        if expected is Verdict.OK:
            self.model.used.add(address)

    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        used = sorted(self.model.used) or [0]
        blocked_used = sorted(self.model.used & (self.model.excluded | self.model.reserved)) or used
        address = data.draw(st.one_of(self.addresses(), st.sampled_from(used), st.sampled_from(blocked_used)))
        expected = address in self.model.used
        for allocator in self.both():
            assert allocator.release(address) is expected
        self.model.used.discard(address)

    @rule(data=st.data())
    def mark_used(self, data: st.DataObject) -> None:
        address = data.draw(self.addresses())
        for allocator in self.both():
            if address in self.model.pool:
                assert allocator.mark_used(address) is (address not in self.model.used)
            else:
                with pytest.raises(AllocatorError):
                    allocator.mark_used(address)
        if address in self.model.pool:
            self.model.used.add(address)

    @rule(data=st.data(), reserved=st.booleans())
    def set_blocked(self, data: st.DataObject, reserved: bool) -> None:
        ranges = data.draw(self.blocked_ranges())
        for allocator in self.both():
            (allocator.set_reserved if reserved else allocator.set_excluded)(ranges)
        setattr(self.model, "reserved" if reserved else "excluded", expand(ranges))

    @rule(data=st.data())
    def load_used(self, data: st.DataObject) -> None:
        texts = data.draw(st.lists(self.texts(), max_size=8))
        meanings = [model_parse(text, self.model.version) for text in texts]
        accepted = {a for a in meanings if a is not None and a in self.model.pool}
        rejected = [text for text, a in zip(texts, meanings, strict=True) if a not in accepted]
        for allocator in self.both():
            assert allocator.load_used(texts) == rejected
        self.model.used |= accepted

    @rule()
    def swap_snapshots(self) -> None:
        compiled_bytes, reference_bytes = self.compiled.snapshot(), self.reference.snapshot()
        self.compiled = PoolAllocator.restore(reference_bytes)
        self.reference = ReferenceAllocator.restore(compiled_bytes)

    @invariant()
    def agree_with_the_model(self) -> None:
        used = sorted(self.model.used)
        free = len(self.model.free())
        for allocator in self.both():
            assert list(allocator.iter_used()) == used
            assert (allocator.used_count, allocator.free_count) == (len(used), free)
            assert [allocator.is_used(a) for a in used[:3]] == [True] * min(3, len(used))
        assert self.compiled.snapshot() == self.reference.snapshot()


AllocatorMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestAllocatorMachine = AllocatorMachine.TestCase


@pytest.mark.parametrize("name", ["compiled", "reference"])
@settings(max_examples=150, deadline=None)
@given(v4_used=st.sets(st.integers(0, 2)), v6_used=st.sets(st.integers(0, 2)))
def test_allocate_dual_takes_both_or_leaves_both_untouched(name: str, v4_used: set[int], v6_used: set[int]) -> None:
    """ALS01: Allocate dual takes both or leaves both untouched."""
    cls = PoolAllocator if name == "compiled" else ReferenceAllocator
    dual = gate.allocate_dual if name == "compiled" else ref.allocate_dual
    base6 = 0xFD00 << 112
    pool4 = cls(version=4, ranges=[(10, 12)])
    pool6 = cls(version=6, ranges=[(base6, base6 + 2)])
    for offset in v4_used:
        pool4.mark_used(10 + offset)
    for offset in v6_used:
        pool6.mark_used(base6 + offset)
    before = pool4.snapshot(), pool6.snapshot()
    result = dual(pool4, pool6)
    if len(v4_used) < 3 and len(v6_used) < 3:
        free4 = min(set(range(3)) - v4_used)
        free6 = min(set(range(3)) - v6_used)
        assert result == (10 + free4, base6 + free6)
        assert (pool4.used_count, pool6.used_count) == (len(v4_used) + 1, len(v6_used) + 1)
    else:
        assert result is None
        assert (pool4.snapshot(), pool6.snapshot()) == before
