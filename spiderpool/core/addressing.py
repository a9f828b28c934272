"""IP addresses, ranges and CIDRs as upstream Spiderpool writes them, as integers for everything else.

An address is an ``int``; a range is an inclusive pair ``(first, last)``; a list of ranges handed out by this module
is sorted and merged (no overlap, no adjacency), which is what the allocator (``PoolAllocator(version=, ranges=)``)
consumes. Text is canonical as Go's ``net.IP.String()`` prints it (RFC 5952 for IPv6), single addresses bare and
ranges ``first-last``.
"""

from __future__ import annotations

import ipaddress
import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Final

from spiderpool.core.errors import FieldError, InvalidSpec

IPV4: Final = 4
IPV6: Final = 6
ADDRESS_BITS: Final = {IPV4: 32, IPV6: 128}

IPRange = tuple[int, int]

_OCTET: Final = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
# Canonical dotted quad only: no leading zeros, no spaces. Most keys and range ends are IPv4, so this skips
# ``ipaddress`` (several times slower) on the common path.
_IPV4_CANONICAL: Final = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}")
_FIRST: Final = itemgetter(0)

#: ``match_canonical_ipv4(text)`` is truthy when ``text`` is a canonical dotted quad (the codec's fast path).
match_canonical_ipv4: Final = _IPV4_CANONICAL.fullmatch

_HEXTET: Final = r"(?:0|[1-9a-f][0-9a-f]{0,3})"
_IPV6_SHAPE: Final = re.compile(rf"(?:{_HEXTET}(?::{_HEXTET})*)?(?:::(?:{_HEXTET}(?::{_HEXTET})*)?)?")


def _longest_zero_run(groups: list[str]) -> int:
    longest = run = 0
    for group in groups:
        run = run + 1 if group == "0" else 0
        longest = max(longest, run)
    return longest


def is_canonical_ipv6(text: str) -> bool:
    """Whether ``text`` is an IPv6 address exactly as Go and RFC 5952 print it, without parsing it to an int.

    Lowercase, no leading zeros, ``::`` replacing the first longest run (of at least two) of zero groups; the
    codec uses it to skip ``ipaddress`` for canonical keys. IPv4-mapped forms answer False.
    """
    if not _IPV6_SHAPE.fullmatch(text):
        return False
    head, double_colon, tail = text.partition("::")
    if not double_colon:
        return text.count(":") == 7 and ":0:0:" not in f":{text}:"
    heads = head.split(":") if head else []
    tails = tail.split(":") if tail else []
    if not heads and len(tails) == 3 and tails[0] == "ffff":
        return False  # ::ffff:a.b.c.d, IPv4-mapped
    run = 8 - len(heads) - len(tails)
    if run < 2 or (heads and heads[-1] == "0") or (tails and tails[0] == "0"):
        return False
    return _longest_zero_run(heads) < run and _longest_zero_run(tails) <= run


def check_version(version: object, *, field: str = "ipVersion") -> int:
    if isinstance(version, bool) or not isinstance(version, int) or version not in (IPV4, IPV6):
        raise FieldError(field=field, value=version, reason="supported values: 4, 6")
    return version


def ip_version_of(text: str) -> int | None:
    """4 or 6 for an address, range or CIDR text (judged by its first address); None when it is none of those."""
    head = text.split("/", 1)[0].split("-", 1)[0]
    try:
        return parse_ip_text(head)[0]
    except ValueError:
        return None


def parse_ip_text(text: str) -> tuple[int, int]:
    """``(version, value)`` of an address of either family; ValueError when it is not one."""
    if _IPV4_CANONICAL.fullmatch(text):
        a, b, c, d = text.split(".")
        return IPV4, (int(a) << 24) | (int(b) << 16) | (int(c) << 8) | int(d)
    if "%" in text:
        raise ValueError("zone indexes are not allowed")
    address = ipaddress.ip_address(text)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        # Go prints these as dotted IPv4 and treats them as IPv4: they cannot be told apart on the wire.
        raise ValueError("IPv4-mapped IPv6 addresses are not allowed")
    return address.version, int(address)


def parse_ip(text: object, *, version: int, field: str) -> int:
    """The address ``text`` of IP family ``version`` as an int; FieldError naming ``field`` otherwise."""
    if not isinstance(text, str):
        raise FieldError(field=field, value=text, reason="must be a string")
    try:
        found, value = parse_ip_text(text)
    except ValueError as error:
        raise FieldError(field=field, value=text, reason=f"not a valid IP address ({error})") from None
    if found != version:
        raise FieldError(field=field, value=text, reason=f"not an IPv{version} address")
    return value


def format_ip(value: int, *, version: int) -> str:
    if version == IPV4:
        return f"{value >> 24}.{(value >> 16) & 255}.{(value >> 8) & 255}.{value & 255}"
    return ipaddress.IPv6Address(value).compressed


def canonical_ip(text: str, *, version: int, field: str) -> str:
    return format_ip(parse_ip(text, version=version, field=field), version=version)


def parse_ip_range(text: object, *, version: int, field: str) -> IPRange:
    """``a`` or ``a-b`` (no spaces, ``a <= b``) as an inclusive pair."""
    if not isinstance(text, str):
        raise FieldError(field=field, value=text, reason="must be a string")
    parts = text.split("-")
    if len(parts) > 2:
        raise FieldError(field=field, value=text, reason="must be an IP address or a range 'first-last'")
    try:
        first = parse_ip(parts[0], version=version, field=field)
        last = parse_ip(parts[-1], version=version, field=field)
    except FieldError as error:
        raise FieldError(field=field, value=text, reason=error.reason) from None
    if first > last:
        raise FieldError(field=field, value=text, reason="the first address of the range is above the last")
    return first, last


def parse_ip_ranges(values: object, *, version: int, field: str) -> list[IPRange]:
    """Every item of ``values`` parsed, then merged and sorted; InvalidSpec lists each bad item (``field[i]``)."""
    return merge_ranges(parse_ip_range_items(values, version=version, field=field))


def parse_ip_range_items(values: object, *, version: int, field: str) -> list[IPRange]:
    """Every item of ``values`` parsed, in the given order, unmerged (validation reports items by index)."""
    if not isinstance(values, list | tuple):
        raise InvalidSpec([FieldError(field=field, value=values, reason="must be a list of strings")])
    ranges: list[IPRange] = []
    errors: list[FieldError] = []
    for index, item in enumerate(values):
        try:
            ranges.append(parse_ip_range(item, version=version, field=f"{field}[{index}]"))
        except FieldError as error:
            errors.append(error)
    if errors:
        raise InvalidSpec(errors)
    return ranges


def format_ip_range(first: int, last: int, *, version: int) -> str:
    if first == last:
        return format_ip(first, version=version)
    return f"{format_ip(first, version=version)}-{format_ip(last, version=version)}"


def format_ip_ranges(ranges: Sequence[IPRange], *, version: int) -> list[str]:
    """Canonical text of ``ranges`` as upstream's webhook writes it (``10.0.0.10-10.0.0.99``, single IPs bare)."""
    return [format_ip_range(first, last, version=version) for first, last in ranges]


def canonical_ip_ranges(values: object, *, version: int, field: str) -> list[str]:
    return format_ip_ranges(parse_ip_ranges(values, version=version, field=field), version=version)


def merge_ranges(ranges: Iterable[IPRange]) -> list[IPRange]:
    """Sorted, with overlapping and adjacent ranges joined."""
    merged: list[IPRange] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            if last > merged[-1][1]:
                merged[-1] = (merged[-1][0], last)
        else:
            merged.append((first, last))
    return merged


def subtract_ranges(ranges: Sequence[IPRange], removed: Sequence[IPRange]) -> list[IPRange]:
    """Addresses of ``ranges`` not in ``removed``; both must be merged (as this module returns them)."""
    result: list[IPRange] = []
    cut = 0
    for first, last in ranges:
        start = first
        while cut < len(removed) and removed[cut][1] < start:
            cut += 1
        probe = cut
        while probe < len(removed) and removed[probe][0] <= last:
            low, high = removed[probe]
            if low > start:
                result.append((start, low - 1))
            start = max(start, high + 1)
            if high >= last:
                break
            probe += 1
        if start <= last:
            result.append((start, last))
    return result


def intersect_ranges(a: Sequence[IPRange], b: Sequence[IPRange]) -> list[IPRange]:
    """Addresses in both ``a`` and ``b`` (both merged)."""
    result: list[IPRange] = []
    i = j = 0
    while i < len(a) and j < len(b):
        low = max(a[i][0], b[j][0])
        high = min(a[i][1], b[j][1])
        if low <= high:
            result.append((low, high))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return result


def overlaps(ranges_a: Sequence[IPRange], ranges_b: Sequence[IPRange]) -> bool:
    """Whether any address is in both (both merged); the webhook's pool-vs-pool check."""
    i = j = 0
    while i < len(ranges_a) and j < len(ranges_b):
        if max(ranges_a[i][0], ranges_b[j][0]) <= min(ranges_a[i][1], ranges_b[j][1]):
            return True
        if ranges_a[i][1] < ranges_b[j][1]:
            i += 1
        else:
            j += 1
    return False


def count_addresses(ranges: Iterable[IPRange]) -> int:
    return sum(last - first + 1 for first, last in ranges)


def contains_address(ranges: Sequence[IPRange], value: int) -> bool:
    """Membership in merged ``ranges`` by bisection."""
    index = bisect_right(ranges, value, key=_FIRST) - 1
    return index >= 0 and value <= ranges[index][1]


def total_ip_count(ips: Sequence[IPRange], exclude_ips: Sequence[IPRange]) -> int:
    """``status.totalIPCount`` as upstream derives it: |ips - excludeIPs| (reserved IPs are not subtracted)."""
    return count_addresses(subtract_ranges(ips, exclude_ips))


@dataclass(frozen=True, slots=True)
class Cidr:
    """A network: ``network`` is the masked address, so host bits given in the text are already cleared."""

    version: int
    network: int
    prefix_len: int

    @property
    def first(self) -> int:
        return self.network

    @property
    def last(self) -> int:
        return self.network | ((1 << (ADDRESS_BITS[self.version] - self.prefix_len)) - 1)

    @property
    def text(self) -> str:
        return f"{format_ip(self.network, version=self.version)}/{self.prefix_len}"

    def contains(self, value: int) -> bool:
        return self.first <= value <= self.last

    def contains_range(self, first: int, last: int) -> bool:
        return self.first <= first and last <= self.last

    def overlaps(self, other: Cidr) -> bool:
        return self.version == other.version and self.first <= other.last and other.first <= self.last

    def __str__(self) -> str:
        return self.text


def parse_cidr(text: object, *, version: int | None = None, field: str) -> Cidr:
    """``address/prefix`` (host bits allowed and cleared, as Go's ``net.ParseCIDR``); family checked if given."""
    if not isinstance(text, str):
        raise FieldError(field=field, value=text, reason="must be a string")
    address, slash, prefix = text.partition("/")
    if not slash or not prefix.isascii() or not prefix.isdigit():
        raise FieldError(field=field, value=text, reason="must be CIDR notation 'address/prefix-length'")
    try:
        found, value = parse_ip_text(address)
    except ValueError as error:
        raise FieldError(field=field, value=text, reason=f"not a valid CIDR ({error})") from None
    if version is not None and found != version:
        raise FieldError(field=field, value=text, reason=f"not an IPv{version} CIDR")
    bits = ADDRESS_BITS[found]
    prefix_len = int(prefix)
    if prefix_len > bits:
        raise FieldError(field=field, value=text, reason=f"prefix length must be 0..{bits}")
    host_mask = (1 << (bits - prefix_len)) - 1
    return Cidr(version=found, network=value & ~host_mask, prefix_len=prefix_len)


def canonical_cidr(text: str, *, field: str = "cidr") -> str:
    """The canonical form of a CIDR (``10.6.0.1/16`` -> ``10.6.0.0/16``)."""
    return parse_cidr(text, field=field).text


def is_canonical_cidr(text: str) -> bool:
    """Upstream's ``IsFormatCIDR``: the text is a CIDR written exactly as Go would print it."""
    try:
        return canonical_cidr(text) == text
    except FieldError:
        return False


def cidr_label_value(cidr: str) -> str:
    """Upstream's ``ipam.spidernet.io/ippool-cidr`` (and ``subnet-cidr``) label value of a CIDR.

    ``10.148.4.0/24`` -> ``10-148-4-0-24``. Upstream substitutes the text as written; we substitute the canonical
    form so ``10.6.0.1/16`` and ``10.6.0.0/16`` (the same network) get the same label.
    """
    return canonical_cidr(cidr).replace(".", "-").replace(":", "-").replace("/", "-")
