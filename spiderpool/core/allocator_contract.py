"""What both allocators promise: the compiled ``PoolAllocator`` and its pure-Python oracle ``ReferenceAllocator``.

The error and verdict types, the API both implement (``AddressAllocator``), the input checks both run before they
touch state, and ``allocate_dual``, which works on either.  Nothing here may import the compiled module: the gate
(``spiderpool.core.allocator``) is its only importer.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Sequence
from typing import Final, Protocol

from spiderpool.core.addressing import IPRange, count_addresses, format_ip, merge_ranges
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


# ---- input checks (both allocators run them before touching state) ----


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
