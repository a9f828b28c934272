"""The allocator snapshot: one byte format written and read by both allocators (so either restores the other's).

Decoding treats the bytes as untrusted input and validates every count, range and padding bit before anything is
built from them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from spiderpool.core.addressing import IPRange, count_addresses
from spiderpool.core.allocator_contract import FAMILY_MAX, AllocatorError, pool_spans

# The format, little-endian: header "SPAL", format 1, IP version, 2 zero bytes, span count, excluded count,
# reserved count (u32 each); spans as 16-byte big-endian first and last addresses; excluded then reserved index
# ranges as u32 first, last; the used bitmap as ceil(capacity / 64) little-endian u64 words (bit i = index i),
# padding bits clear.

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
