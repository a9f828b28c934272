"""The pure-Python reference allocator: the same API as the compiled ``PoolAllocator``, kept as its test oracle.

It keeps the used and blocked sets as Python-int bitmaps over the pool's index space (addresses of the merged ranges
numbered in ascending order), so each operation is a few big-integer operations: slow on huge pools, never wrong.

This module also holds what both allocators share and the gate (``spiderpool.core.allocator``) re-exports: the error
and verdict types, input validation, and the snapshot format. It must never import the compiled module.
"""

from __future__ import annotations

import enum
import struct
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from spiderpool.core.addressing import IPRange, count_addresses, format_ip, intersect_ranges, merge_ranges, parse_ip
from spiderpool.core.errors import FieldError

CAPACITY_LIMIT: Final = 1 << 24
FAMILY_MAX: Final = {4: (1 << 32) - 1, 6: (1 << 128) - 1}


class AllocatorError(FieldError):
    """Bad input to an allocator (wrong family, bad range, malformed snapshot...); names the field and the value."""


class Verdict(enum.Enum):
    """What ``allocate_specific`` decided: a conflict is data, not an exception. Values are the compiled codes."""

    OK = 0
    TAKEN = 1
    BLOCKED = 2
    OUT_OF_RANGE = 3


class AddressAllocator(Protocol):
    """The allocator API both implementations provide (see ``spiderpool.core.allocator.PoolAllocator``)."""

    @property
    def version(self) -> int: ...
    @property
    def capacity(self) -> int: ...
    @property
    def used_count(self) -> int: ...
    @property
    def free_count(self) -> int: ...
    def set_excluded(self, ranges: Sequence[IPRange]) -> None: ...
    def set_reserved(self, ranges: Sequence[IPRange]) -> None: ...
    def allocate(self) -> int | None: ...
    def allocate_n(self, n: int) -> list[int] | None: ...
    def allocate_specific(self, address: int) -> Verdict: ...
    def release(self, address: int) -> bool: ...
    def mark_used(self, address: int) -> bool: ...
    def is_used(self, address: int) -> bool: ...
    def load_used(self, addresses: Iterable[str]) -> list[str]: ...
    def iter_used(self) -> Iterator[int]: ...
    def snapshot(self) -> bytes: ...


def allocate_dual(v4: AddressAllocator, v6: AddressAllocator) -> tuple[int, int] | None:
    """The lowest free IPv4 and IPv6 address, both or neither: when either family is exhausted nothing changes."""
    if v4.version != 4:
        raise AllocatorError(field="v4", value=v4.version, reason="must be an IPv4 allocator")
    if v6.version != 6:
        raise AllocatorError(field="v6", value=v6.version, reason="must be an IPv6 allocator")
    # Checking both before taking either means a failure never has to be undone.
    if v4.free_count == 0 or v6.free_count == 0:
        return None
    first, second = v4.allocate(), v6.allocate()
    if first is None or second is None:  # only if free_count lied; still leave both as they were
        for allocator, address in ((v4, first), (v6, second)):
            if address is not None:
                allocator.release(address)
        return None
    return first, second


# ---- validation shared with the gate ----


def check_version(version: object) -> int:
    if type(version) is not int or version not in FAMILY_MAX:
        raise AllocatorError(field="version", value=version, reason="must be 4 or 6")
    return version


def check_address(version: int, address: object, *, field: str = "address") -> int:
    if type(address) is not int or not 0 <= address <= FAMILY_MAX[version]:
        reason = f"must be an IPv{version} address as an int in 0..{FAMILY_MAX[version]}"
        raise AllocatorError(field=field, value=address, reason=reason)
    return address


def check_count(n: object) -> int:
    if type(n) is not int or n < 0:
        raise AllocatorError(field="n", value=n, reason="must be an int >= 0")
    return n


def check_ranges(version: int, ranges: object, *, field: str) -> list[IPRange]:
    """``ranges`` as merged inclusive ``(first, last)`` pairs of the family; items may overlap, touch or be unsorted."""
    if isinstance(ranges, str | bytes) or not isinstance(ranges, Iterable):
        raise AllocatorError(field=field, value=ranges, reason="must be a sequence of (first, last) pairs")
    checked: list[IPRange] = []
    for position, item in enumerate(ranges):
        name = f"{field}[{position}]"
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise AllocatorError(field=name, value=item, reason="must be a (first, last) pair of ints")
        first = check_address(version, item[0], field=f"{name}[0]")
        last = check_address(version, item[1], field=f"{name}[1]")
        if first > last:
            reason = f"first {format_ip(first, version=version)} is above last {format_ip(last, version=version)}"
            raise AllocatorError(field=name, value=item, reason=reason)
        checked.append((first, last))
    return merge_ranges(checked)


def pool_spans(version: int, ranges: object) -> list[IPRange]:
    """The pool's merged ranges; AllocatorError when they hold more than CAPACITY_LIMIT addresses."""
    spans = check_ranges(version, ranges, field="ranges")
    total = count_addresses(spans)
    if total > CAPACITY_LIMIT:
        reason = f"they hold {total} addresses, above the {CAPACITY_LIMIT} an allocator supports"
        raise AllocatorError(field="ranges", value=f"{len(spans)} merged ranges", reason=reason)
    return spans


def check_address_texts(addresses: object) -> list[str]:
    if isinstance(addresses, str | bytes) or not isinstance(addresses, Iterable):
        raise AllocatorError(field="addresses", value=addresses, reason="must be an iterable of address strings")
    items = list(addresses)
    for position, item in enumerate(items):
        if not isinstance(item, str):
            raise AllocatorError(field=f"addresses[{position}]", value=item, reason="must be a string")
    return items


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


# ---- snapshot format (little-endian) ----
# header "SPAL", format 1, IP version, 2 zero bytes, span count, excluded count, reserved count (u32 each);
# spans as 16-byte big-endian first and last addresses; excluded then reserved index ranges as u32 first, last;
# the used bitmap as ceil(capacity / 64) little-endian u64 words (bit i = index i), padding bits clear.

_HEADER: Final = struct.Struct("<4sBBHIII")
_MAGIC: Final = b"SPAL"
_FORMAT: Final = 1
_SPAN_BYTES: Final = 32
_INDEX_RANGE: Final = struct.Struct("<II")


@dataclass(frozen=True, slots=True)
class SnapshotParts:
    version: int
    spans: list[IPRange]  # merged address ranges of the pool
    excluded: list[IPRange]  # merged index ranges
    reserved: list[IPRange]  # merged index ranges
    words: bytes


def encode_snapshot(parts: SnapshotParts) -> bytes:
    chunks = [_HEADER.pack(_MAGIC, _FORMAT, parts.version, 0, len(parts.spans), len(parts.excluded),
                           len(parts.reserved))]
    chunks += [first.to_bytes(16, "big") + last.to_bytes(16, "big") for first, last in parts.spans]
    chunks += [_INDEX_RANGE.pack(first, last) for first, last in parts.excluded + parts.reserved]
    chunks.append(parts.words)
    return b"".join(chunks)


def _snapshot_error(value: object, reason: str) -> AllocatorError:
    return AllocatorError(field="snapshot", value=value, reason=reason)


def decode_snapshot(data: object) -> SnapshotParts:
    """Parse and fully validate untrusted snapshot bytes."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise _snapshot_error(type(data).__name__, "must be bytes")
    data = bytes(data)
    if len(data) < _HEADER.size:
        raise _snapshot_error(f"{len(data)} bytes", f"shorter than the {_HEADER.size}-byte header")
    magic, form, version, pad, n_spans, n_excluded, n_reserved = _HEADER.unpack_from(data)
    if magic != _MAGIC or form != _FORMAT or pad != 0:
        raise _snapshot_error(data[:8], f"not a format-{_FORMAT} allocator snapshot")
    if version not in FAMILY_MAX:
        raise _snapshot_error(version, "IP version must be 4 or 6")
    offset = _HEADER.size + n_spans * _SPAN_BYTES
    if len(data) < offset:
        raise _snapshot_error(f"{len(data)} bytes", f"too short for {n_spans} spans")
    spans = _decode_spans(data, version, n_spans)
    capacity = count_addresses(spans)
    excluded = _decode_index_ranges(data, offset, n_excluded, capacity, "excluded")
    offset += n_excluded * _INDEX_RANGE.size
    reserved = _decode_index_ranges(data, offset, n_reserved, capacity, "reserved")
    offset += n_reserved * _INDEX_RANGE.size
    expected = offset + (capacity + 63) // 64 * 8
    if len(data) != expected:
        raise _snapshot_error(f"{len(data)} bytes", f"expected {expected} for a pool of {capacity} addresses")
    words = data[offset:]
    if int.from_bytes(words, "little") >> capacity:
        raise _snapshot_error(f"capacity {capacity}", "the bitmap marks indexes beyond the pool")
    return SnapshotParts(version=version, spans=spans, excluded=excluded, reserved=reserved, words=words)


def _decode_spans(data: bytes, version: int, count: int) -> list[IPRange]:
    raw = memoryview(data)[_HEADER.size:_HEADER.size + count * _SPAN_BYTES]
    spans = [(int.from_bytes(raw[i:i + 16], "big"), int.from_bytes(raw[i + 16:i + 32], "big"))
             for i in range(0, len(raw), _SPAN_BYTES)]
    try:
        checked = pool_spans(version, spans)
    except AllocatorError as error:
        raise _snapshot_error(error.value, f"spans: {error.reason}") from None
    if checked != spans:
        raise _snapshot_error(f"{count} spans", "spans are not sorted and merged")
    return spans


def _decode_index_ranges(data: bytes, offset: int, count: int, capacity: int, name: str) -> list[IPRange]:
    if len(data) < offset + count * _INDEX_RANGE.size:
        raise _snapshot_error(f"{len(data)} bytes", f"too short for {count} {name} ranges")
    ranges = list(_INDEX_RANGE.iter_unpack(data[offset:offset + count * _INDEX_RANGE.size]))
    previous = -2
    for first, last in ranges:
        if not previous + 1 < first <= last < capacity:
            raise _snapshot_error((first, last), f"{name} ranges must be merged, ascending and below {capacity}")
        previous = last
    return ranges


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
