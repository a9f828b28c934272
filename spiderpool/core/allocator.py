"""The gate to the compiled allocator: the only module that imports ``spiderpool._fastalloc``.

``PoolAllocator`` is one pool's address space (its merged ``ips`` ranges, minus excluded and reserved addresses) with
the used addresses of ``status.allocatedIPs``. Every input is validated here before it reaches C, and every failure
the C core reports comes back as an ``AllocatorError`` naming the field and the value; only ``MemoryError`` passes
through. The behaviour is specified by the pure-Python ``ReferenceAllocator`` (``bitmap_ref``), which runs the same
tests; both share ``allocator_contract`` (error types, verdicts, input checks) and ``allocator_snapshot``.

Costs: ``allocate`` is constant time at any pool size (up to 2**24 addresses) and fill; ``allocate_specific``,
``release``, ``mark_used`` and ``is_used`` are logarithmic in the number of ranges; ``load_used`` parses addresses in C;
``set_excluded``/``set_reserved``/``restore`` rebuild the summary in one pass outside the GIL. Memory is about one
bit per address plus 1/64 of that for the summary. Not thread-safe: one owner (the agent's event loop) at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Final

from spiderpool import _fastalloc
from spiderpool.core.addressing import IPRange, merge_ranges
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

__all__ = [
    "CAPACITY_LIMIT",
    "AddressAllocator",
    "AllocatorError",
    "PoolAllocator",
    "Verdict",
    "allocate_dual",
    "format_address",
    "parse_address",
]

# Indexed by the compiled core's verdict codes (checked by a unit test).
_VERDICTS: Final = (Verdict.OK, Verdict.TAKEN, Verdict.BLOCKED, Verdict.OUT_OF_RANGE)


class PoolAllocator:
    """One pool's allocator over the compiled bitmap core (see the module docstring for the contract)."""

    __slots__ = ("_core", "_excluded", "_max", "_reserved", "_spans")

    def __init__(self, *, version: int, ranges: Sequence[IPRange]) -> None:
        version = check_version(version)
        self._start(version, pool_spans(version, ranges))

    def _start(self, version: int, spans: list[IPRange]) -> None:
        try:
            self._core = _fastalloc.BitmapCore(version, spans)
        except (ValueError, OverflowError, TypeError) as error:  # the gate validated these: a bug, said precisely
            raise AllocatorError(field="ranges", value=f"{len(spans)} merged ranges", reason=str(error)) from None
        self._spans = spans
        self._max = FAMILY_MAX[version]
        self._excluded: list[IPRange] = []
        self._reserved: list[IPRange] = []

    def __repr__(self) -> str:
        return f"PoolAllocator(version={self.version}, capacity={self.capacity}, used={self.used_count})"

    @property
    def version(self) -> int:
        return self._core.version

    @property
    def capacity(self) -> int:
        """Distinct addresses in the pool's ranges (excluded and reserved ones included)."""
        return self._core.capacity

    @property
    def used_count(self) -> int:
        return self._core.used_count

    @property
    def free_count(self) -> int:
        """Addresses ``allocate`` could hand out now: neither used nor excluded nor reserved."""
        return self._core.free_count

    def _checked(self, address: object) -> int:
        if type(address) is int and 0 <= address <= self._max:
            return address
        return check_address(self.version, address)  # raises, naming the value

    def set_excluded(self, ranges: Sequence[IPRange]) -> None:
        """Replace the excluded set (``spec.excludeIPs``); parts outside the pool are ignored."""
        self._excluded = self._core.index_ranges(check_ranges(self.version, ranges, field="excluded"))
        self._apply_blocked()

    def set_reserved(self, ranges: Sequence[IPRange]) -> None:
        """Replace the reserved set (SpiderReservedIP); parts outside the pool are ignored."""
        self._reserved = self._core.index_ranges(check_ranges(self.version, ranges, field="reserved"))
        self._apply_blocked()

    def _apply_blocked(self) -> None:
        try:
            self._core.set_blocked(merge_ranges(self._excluded + self._reserved))
        except ValueError as error:
            raise AllocatorError(field="blocked", value=len(self._excluded) + len(self._reserved),
                                 reason=str(error)) from None

    def allocate(self) -> int | None:
        """The lowest free address (ascending address order, as upstream), or None when none is free."""
        return self._core.allocate()

    def allocate_n(self, n: int) -> list[int] | None:
        """The ``n`` lowest free addresses, or None (and nothing taken) when fewer are free."""
        if check_count(n) > self._core.free_count:  # also keeps ints beyond C's range away from the core
            return None
        return self._core.allocate_n(n)

    def allocate_specific(self, address: int) -> Verdict:
        """Take ``address`` if it is in the pool, free, and neither excluded nor reserved."""
        return _VERDICTS[self._core.allocate_specific(self._checked(address))]

    def release(self, address: int) -> bool:
        """Free ``address``; True if it was used (an address outside the pool never is)."""
        return self._core.release(self._checked(address))

    def mark_used(self, address: int) -> bool:
        """Record ``address`` as used even if blocked (a watch event showed its record); True if newly marked."""
        marked = self._core.mark_used(self._checked(address))
        if marked < 0:
            raise AllocatorError(field="address", value=address, reason="is not in the pool's ranges")
        return marked == 1

    def is_used(self, address: int) -> bool:
        return self._core.is_used(self._checked(address))

    def load_used(self, addresses: Iterable[str]) -> list[str]:
        """Mark every address text (e.g. the keys of ``status.allocatedIPs``) used; parsing happens in C.

        Returns the texts rejected as malformed, of the other family or outside the pool, in input order. A
        non-string item raises AllocatorError before anything is marked.
        """
        if isinstance(addresses, str | bytes) or not isinstance(addresses, Iterable):
            check_address_texts(addresses)  # raises, naming the value
        try:
            return self._core.load_used(addresses)
        except TypeError as error:
            position, item = error.args
            raise AllocatorError(field=f"addresses[{position}]", value=item, reason="must be a string") from None

    def iter_used(self) -> Iterator[int]:
        """Used addresses in ascending order (do not change the allocator while iterating)."""
        return self._core.iter_used()

    def snapshot(self) -> bytes:
        """The whole state as bytes, identical to ``ReferenceAllocator.snapshot`` for the same state."""
        return encode_snapshot(SnapshotParts(version=self.version, spans=self._spans, excluded=self._excluded,
                                             reserved=self._reserved, words=self._core.used_words()))

    @classmethod
    def restore(cls, data: bytes) -> PoolAllocator:
        """An allocator from ``snapshot()`` bytes (of either implementation), validated as untrusted input."""
        parts = decode_snapshot(data)
        allocator = cls.__new__(cls)
        allocator._start(parts.version, parts.spans)
        allocator._excluded, allocator._reserved = parts.excluded, parts.reserved
        allocator._apply_blocked()
        try:
            allocator._core.load_words(parts.words)
        except ValueError as error:
            value = f"{len(parts.words)} bitmap bytes"
            raise AllocatorError(field="snapshot", value=value, reason=str(error)) from None
        return allocator


def parse_address(text: str) -> tuple[int, int]:
    """``(version, address)`` of an IP address text, parsed in C; AllocatorError naming the text otherwise."""
    try:
        return _fastalloc.parse_address(text)
    except TypeError:
        raise AllocatorError(field="address", value=text, reason="must be a string") from None
    except ValueError:
        raise AllocatorError(field="address", value=text, reason="not an IPv4 or IPv6 address") from None


def format_address(version: int, address: int) -> str:
    """Canonical text of ``address``: dotted quad, or compressed lowercase IPv6 as Python's ``ipaddress``."""
    version = check_version(version)
    return _fastalloc.format_address(version, check_address(version, address))

