"""Usage figures of pools and subnets (``get pools`` / ``get subnets``), from their API objects: pure.

``total`` is the spec's ``|ips - excludeIPs|`` (upstream's ``totalIPCount``), ``reserved`` the addresses of the pool
that a SpiderReservedIP holds back, and ``free`` what the allocator could still hand out: total minus the union of
allocated and reserved addresses (an address reserved after it was allocated counts once).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from spiderpool.core.addressing import (
    IPRange,
    contains_address,
    count_addresses,
    intersect_ranges,
    merge_ranges,
    parse_ip_text,
)
from spiderpool.core.allocations import AllocationsFormatError, decode_allocated_ips
from spiderpool.core.errors import InvalidSpec
from spiderpool.core.specs import parse_ippool_spec, parse_reservedip_spec, parse_subnet_spec

_AFFINITY_FIELDS = (
    ("podAffinity", "pod"),
    ("namespaceAffinity", "namespace"),
    ("namespaceName", "namespaceName"),
    ("nodeAffinity", "node"),
    ("nodeName", "nodeName"),
    ("multusName", "multus"),
)


@dataclass(frozen=True, slots=True)
class Usage:
    name: str
    version: int | None
    subnet: str
    total: int
    allocated: int
    reserved: int
    free: int
    default: bool | None  # None for subnets, which have no such field
    affinity: str
    problem: str = ""  # why the figures are partial (invalid spec, unreadable records)

    def as_document(self) -> dict[str, object]:
        return {
            "name": self.name, "ipVersion": self.version, "subnet": self.subnet, "total": self.total,
            "allocated": self.allocated, "free": self.free, "reserved": self.reserved, "default": self.default,
            "affinity": self.affinity, "problem": self.problem or None,
        }


def reserved_ranges(reserved_ips: Sequence[Mapping[str, Any]]) -> dict[int, list[IPRange]]:
    """Reserved addresses by IP version; terminating and invalid SpiderReservedIPs reserve nothing (as upstream)."""
    collected: dict[int, list[IPRange]] = {4: [], 6: []}
    for reserved in reserved_ips:
        if (reserved.get("metadata") or {}).get("deletionTimestamp"):
            continue
        try:
            spec = parse_reservedip_spec(reserved.get("spec"))
        except (InvalidSpec, ValueError):
            continue
        collected[spec.ip_version].extend(spec.ips)
    return {version: merge_ranges(ranges) for version, ranges in collected.items()}


def affinity_summary(spec: Mapping[str, Any]) -> str:
    """Which placement constraints a pool has, e.g. ``pod,nodeName``; ``-`` when it takes any pod."""
    present = [label for field, label in _AFFINITY_FIELDS if spec.get(field)]
    return ",".join(present) or "-"


def pool_usage(pool: Mapping[str, Any], reserved: Mapping[int, list[IPRange]]) -> Usage:
    meta, raw_spec, status = pool.get("metadata") or {}, pool.get("spec") or {}, pool.get("status") or {}
    name = str(meta.get("name", ""))
    problem = ""
    try:
        records = decode_allocated_ips(status.get("allocatedIPs"))
    except AllocationsFormatError as error:
        records, problem = {}, str(error)
    try:
        spec = parse_ippool_spec(raw_spec)
    except (InvalidSpec, ValueError) as error:
        return Usage(name, raw_spec.get("ipVersion"), str(raw_spec.get("subnet", "")),
                     int(status.get("totalIPCount") or 0), len(records), 0, 0, bool(raw_spec.get("default")),
                     affinity_summary(raw_spec), problem=f"invalid spec: {error}")
    usable = spec.usable_ranges
    held = intersect_ranges(usable, reserved.get(spec.ip_version, []))
    reserved_count = count_addresses(held)
    allocated_reserved = sum(1 for ip in records if contains_address(held, parse_ip_text(ip)[1]))
    total = spec.total_ip_count
    free = max(0, total - len(records) - reserved_count + allocated_reserved)
    return Usage(name, spec.ip_version, spec.subnet.text, total, len(records), reserved_count, free, spec.default,
                 affinity_summary(raw_spec), problem=problem)


def subnet_usage(subnet: Mapping[str, Any], reserved: Mapping[int, list[IPRange]]) -> Usage:
    """A subnet's ``allocated`` is what it has handed to pools (its ``status.allocatedIPCount``), not to pods."""
    meta, raw_spec, status = subnet.get("metadata") or {}, subnet.get("spec") or {}, subnet.get("status") or {}
    name = str(meta.get("name", ""))
    allocated = int(status.get("allocatedIPCount") or 0)
    try:
        spec = parse_subnet_spec(raw_spec)
    except (InvalidSpec, ValueError) as error:
        return Usage(name, raw_spec.get("ipVersion"), str(raw_spec.get("subnet", "")),
                     int(status.get("totalIPCount") or 0), allocated, 0, 0, None, "-",
                     problem=f"invalid spec: {error}")
    reserved_count = count_addresses(intersect_ranges(spec.usable_ranges, reserved.get(spec.ip_version, [])))
    free = max(0, spec.total_ip_count - allocated - reserved_count)
    return Usage(name, spec.ip_version, spec.subnet.text, spec.total_ip_count, allocated, reserved_count, free, None,
                 "-")
