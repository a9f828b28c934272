"""The pure-Python reference allocator: the same API as the compiled ``PoolAllocator``, kept as its test oracle.

It keeps the used and blocked sets as Python-int bitmaps over the pool's index space (addresses of the merged ranges
numbered in ascending order), so each operation is a few big-integer operations: slow on huge pools, never wrong.
It also holds the reference address parser and formatter the compiled ones are tested against.

What both allocators share lives in ``allocator_contract`` (errors, verdicts, input checks, ``allocate_dual``) and
``allocator_snapshot`` (the snapshot format); it is re-exported here for the tests and benchmarks that use the
reference as their one import. This module must never import the compiled module.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence

from spiderpool.core.addressing import IPRange, format_ip, intersect_ranges, merge_ranges, parse_ip
from spiderpool.core.allocator_contract import (
    CAPACITY_LIMIT,
    FAMILY_MAX,
    AddressAllocator,
    AllocatorError,
    Verdict,
    allocate_dual,
    check_address,
    check_address_texts,
    check_count,
    check_ranges,
    check_version,
    pool_spans,
)
from spiderpool.core.allocator_snapshot import SnapshotParts, decode_snapshot, encode_snapshot
from spiderpool.core.errors import FieldError

__all__ = [
    "CAPACITY_LIMIT",
    "FAMILY_MAX",
    "AddressAllocator",
    "AllocatorError",
    "ReferenceAllocator",
    "SnapshotParts",
    "Verdict",
    "allocate_dual",
    "check_address",
    "check_address_texts",
    "check_count",
    "check_ranges",
    "check_version",
    "decode_snapshot",
    "encode_snapshot",
    "format_address",
    "parse_address",
    "pool_spans",
]


def parse_address(text: object) -> tuple[int, int]:
    """``(version, address)`` of an IP address text; the rules of ``core.addressing`` (no zones, no IPv4-mapped)."""
    if not isinstance(text, str):
        raise AllocatorError(field="address", value=text, reason="must be a string")
    version = 6 if ":" in text else 4
    try:
        return version, parse_ip(text, version=version, field="address")
    except FieldError as error:
        raise AllocatorError(field="address", value=text, reason=error.reason) from None


def format_address(version: int, address: int) -> str:
    version = check_version(version)
    return format_ip(check_address(version, address), version=version)


# ---- the reference allocator ----


class ReferenceAllocator:
    """Pure-Python twin of ``PoolAllocator``: same behaviour, same errors, same snapshot bytes."""

    def __init__(self, *, version: int, ranges: Sequence[IPRange]) -> None:
        version = check_version(version)
        self._setup(version, pool_spans(version, ranges))

    def _setup(self, version: int, spans: list[IPRange]) -> None:
        self.version = version
        self._spans = spans
        self._firsts = [first for first, _ in spans]
        self._starts: list[int] = []
        total = 0
        for first, last in spans:
            self._starts.append(total)
            total += last - first + 1
        self.capacity = total
        self._used = 0
        self._blocked = 0
        self._excluded: list[IPRange] = []
        self._reserved: list[IPRange] = []

    def __repr__(self) -> str:
        return f"ReferenceAllocator(version={self.version}, capacity={self.capacity}, used={self.used_count})"

    @property
    def used_count(self) -> int:
        return self._used.bit_count()

    @property
    def free_count(self) -> int:
        return self.capacity - (self._used | self._blocked).bit_count()

    def _index_of(self, address: int) -> int | None:
        span = bisect_right(self._firsts, address) - 1
        if span < 0 or address > self._spans[span][1]:
            return None
        return self._starts[span] + address - self._firsts[span]

    def _address_at(self, index: int) -> int:
        span = bisect_right(self._starts, index) - 1
        return self._firsts[span] + index - self._starts[span]

    def _clip(self, ranges: list[IPRange]) -> list[IPRange]:
        """Merged address ``ranges`` clipped to the pool, as merged index ranges."""
        indexes: list[IPRange] = []
        for first, last in intersect_ranges(self._spans, ranges):  # each piece lies inside one span
            span = bisect_right(self._firsts, first) - 1
            start = self._starts[span] + first - self._firsts[span]
            indexes.append((start, start + last - first))
        return merge_ranges(indexes)

    def _refresh_blocked(self) -> None:
        self._blocked = 0
        for first, last in merge_ranges(self._excluded + self._reserved):
            self._blocked |= ((1 << (last - first + 1)) - 1) << first

    def set_excluded(self, ranges: Sequence[IPRange]) -> None:
        self._excluded = self._clip(check_ranges(self.version, ranges, field="excluded"))
        self._refresh_blocked()

    def set_reserved(self, ranges: Sequence[IPRange]) -> None:
        self._reserved = self._clip(check_ranges(self.version, ranges, field="reserved"))
        self._refresh_blocked()

    def _lowest_free_index(self) -> int:
        """The lowest index neither used nor blocked; ``capacity`` when there is none."""
        unavailable = self._used | self._blocked
        return (~unavailable & (unavailable + 1)).bit_length() - 1

    def allocate(self) -> int | None:
        index = self._lowest_free_index()
        if index >= self.capacity:
            return None
        self._used |= 1 << index
        return self._address_at(index)

    def allocate_n(self, n: int) -> list[int] | None:
        if check_count(n) > self.free_count:
            return None
        taken: list[int] = []
        for _ in range(n):
            index = self._lowest_free_index()
            self._used |= 1 << index
            taken.append(self._address_at(index))
        return taken

    def allocate_specific(self, address: int) -> Verdict:
        index = self._index_of(check_address(self.version, address))
        if index is None:
            return Verdict.OUT_OF_RANGE
        if self._used >> index & 1:
            return Verdict.TAKEN
        if self._blocked >> index & 1:
            return Verdict.BLOCKED
        self._used |= 1 << index
        return Verdict.OK

    def release(self, address: int) -> bool:
        index = self._index_of(check_address(self.version, address))
        if index is None or not self._used >> index & 1:
            return False
        self._used &= ~(1 << index)
        return True

    def mark_used(self, address: int) -> bool:
        index = self._index_of(check_address(self.version, address))
        if index is None:
            raise AllocatorError(field="address", value=address, reason="is not in the pool's ranges")
        was_used = self._used >> index & 1
        self._used |= 1 << index
        return not was_used

    def is_used(self, address: int) -> bool:
        index = self._index_of(check_address(self.version, address))
        return index is not None and bool(self._used >> index & 1)

    def load_used(self, addresses: Iterable[str]) -> list[str]:
        rejected: list[str] = []
        bitmap = bytearray(self._used.to_bytes((self.capacity + 7) // 8, "little"))
        for text in check_address_texts(addresses):
            try:
                version, address = parse_address(text)
            except AllocatorError:
                version, address = 0, 0
            index = self._index_of(address) if version == self.version else None
            if index is None:
                rejected.append(text)
            else:
                bitmap[index >> 3] |= 1 << (index & 7)
        self._used = int.from_bytes(bitmap, "little")
        return rejected

    def iter_used(self) -> Iterator[int]:
        bits = bin(self._used)[:1:-1]  # bit i at position i
        index = bits.find("1")
        while index >= 0:
            yield self._address_at(index)
            index = bits.find("1", index + 1)

    def snapshot(self) -> bytes:
        words = self._used.to_bytes((self.capacity + 63) // 64 * 8, "little")
        return encode_snapshot(SnapshotParts(version=self.version, spans=self._spans, excluded=self._excluded,
                                             reserved=self._reserved, words=words))

    @classmethod
    def restore(cls, data: bytes) -> ReferenceAllocator:
        parts = decode_snapshot(data)
        allocator = cls.__new__(cls)
        allocator._setup(parts.version, parts.spans)
        allocator._excluded, allocator._reserved = parts.excluded, parts.reserved
        allocator._refresh_blocked()
        allocator._used = int.from_bytes(parts.words, "little")
        return allocator
