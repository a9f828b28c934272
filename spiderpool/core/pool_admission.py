"""The webhook rules that compare one SpiderIPPool / SpiderSubnet / SpiderReservedIP with the other objects.

Per-object rules live in ``validation``; these need the peers (other pools, subnets, allocations) and return every
broken rule as a ``FieldError`` naming the field, the offending value and the peer it collides with.  Beyond
upstream: a reserved IP that is allocated right now is refused, naming the pool and the pod holding it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from spiderpool.core.addressing import (
    IPRange,
    format_ip_range,
    intersect_ranges,
    merge_ranges,
    parse_ip_text,
    subtract_ranges,
)
from spiderpool.core.allocations import PoolIPAllocation
from spiderpool.core.errors import FieldError
from spiderpool.core.specs import IPPoolSpec, ReservedIPSpec, SubnetSpec


@dataclass(frozen=True, slots=True)
class PeerPool:
    """Another SpiderIPPool (or one admitted and not yet stored) as the webhook rules see it."""

    name: str
    spec: IPPoolSpec
    allocated: Mapping[str, PoolIPAllocation] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PeerSubnet:
    name: str
    spec: SubnetSpec
    uid: str = ""


def _first_range_text(ranges: Sequence[IPRange], *, version: int) -> str:
    first, last = ranges[0]
    return format_ip_range(first, last, version=version)


def ippool_peer_errors(name: str, spec: IPPoolSpec, peers: Sequence[PeerPool], *, path: str = "spec"
                       ) -> list[FieldError]:
    """Pools of one IP version: identical or disjoint subnets; within one subnet, no usable IP in two pools."""
    errors: list[FieldError] = []
    usable = merge_ranges(spec.usable_ranges)
    for peer in sorted(peers, key=lambda p: p.name):
        other = peer.spec
        if peer.name == name or other.ip_version != spec.ip_version:
            continue
        if other.subnet != spec.subnet:
            if other.subnet.overlaps(spec.subnet):
                errors.append(FieldError(
                    field=f"{path}.subnet", value=spec.subnet.text,
                    reason=f"overlaps spec.subnet {other.subnet.text} of SpiderIPPool {peer.name}; pools of one "
                           "IP version must have identical or disjoint subnets"))
            continue
        common = intersect_ranges(usable, merge_ranges(other.usable_ranges))
        if common:
            errors.append(FieldError(
                field=f"{path}.ips", value=_first_range_text(common, version=spec.ip_version),
                reason=f"overlaps the IPs of SpiderIPPool {peer.name} in subnet {spec.subnet.text}"))
    return errors


def ippool_subnet_errors(spec: IPPoolSpec, owner: PeerSubnet, *, path: str = "spec") -> list[FieldError]:
    """A pool owned by a SpiderSubnet takes its IPs from the subnet's ``ips``."""
    outside = subtract_ranges(merge_ranges(spec.ips), merge_ranges(owner.spec.ips))
    if not outside:
        return []
    return [FieldError(field=f"{path}.ips", value=_first_range_text(outside, version=spec.ip_version),
                       reason=f"outside spec.ips of its SpiderSubnet {owner.name}")]


def owning_subnet(spec: IPPoolSpec, subnets: Sequence[PeerSubnet]) -> PeerSubnet | None:
    """The SpiderSubnet whose subnet equals the pool's (the one that adopts it), if any."""
    return next((subnet for subnet in sorted(subnets, key=lambda s: s.name) if subnet.spec.subnet == spec.subnet),
                None)


def subnet_peer_errors(name: str, spec: SubnetSpec, peers: Sequence[PeerSubnet], *, path: str = "spec"
                       ) -> list[FieldError]:
    """SpiderSubnets of one IP version never overlap (not even with an identical CIDR)."""
    return [
        FieldError(field=f"{path}.subnet", value=spec.subnet.text,
                   reason=f"overlaps spec.subnet {peer.spec.subnet.text} of SpiderSubnet {peer.name}")
        for peer in sorted(peers, key=lambda p: p.name)
        if peer.name != name and peer.spec.ip_version == spec.ip_version and peer.spec.subnet.overlaps(spec.subnet)
    ]


def subnet_pool_errors(spec: SubnetSpec, pools: Sequence[PeerPool], *, path: str = "spec") -> list[FieldError]:
    """The pools of the subnet's CIDR must keep fitting in its ``ips``: IPs handed to a pool cannot be removed."""
    errors = []
    subnet_ips = merge_ranges(spec.ips)
    for pool in sorted(pools, key=lambda p: p.name):
        if pool.spec.subnet != spec.subnet:
            continue
        outside = subtract_ranges(merge_ranges(pool.spec.ips), subnet_ips)
        if outside:
            errors.append(FieldError(
                field=f"{path}.ips", value=_first_range_text(outside, version=spec.ip_version),
                reason=f"is used by SpiderIPPool {pool.name}; remove it from that pool first"))
    return errors


def reserved_allocated_errors(spec: ReservedIPSpec, pools: Sequence[PeerPool], *, path: str = "spec"
                              ) -> list[FieldError]:
    """Beyond upstream: reserving an address a pod holds now is refused (it would bite at that pod's next ADD)."""
    reserved = merge_ranges(spec.ips)
    errors = []
    for pool in sorted(pools, key=lambda p: p.name):
        if pool.spec.ip_version != spec.ip_version:
            continue
        for ip_text, record in sorted(pool.allocated.items()):
            value = parse_ip_text(ip_text)[1]
            if intersect_ranges(reserved, [(value, value)]):
                errors.append(FieldError(
                    field=f"{path}.ips", value=ip_text,
                    reason=f"is allocated to Pod {record.pod} (uid {record.pod_uid}) in SpiderIPPool {pool.name}; "
                           "release it before reserving it"))
    return errors


def terminating_spec_errors(old_spec: object, new_spec: object, *, path: str = "spec") -> list[FieldError]:
    """A pool or subnet being deleted keeps its spec: its finalizer is waiting for the last record to go."""
    if old_spec == new_spec:
        return []
    return [FieldError(field=path, value="<changed>",
                       reason="cannot be edited while the object is terminating (metadata.deletionTimestamp is set)")]
