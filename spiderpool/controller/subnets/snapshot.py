"""One reconcile pass's view of SpiderSubnets, SpiderIPPools and SpiderReservedIPs, read fresh from the API server.

Read with LISTs (not the watch caches) at the start of each pass, and updated in place with every object the pass
writes, so a decision never rests on a cache that has not yet seen the pass's own previous write: two pools planned
one after the other never take the same address.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from spiderpool.core.addressing import IPRange, merge_ranges, parse_ip
from spiderpool.core.allocations import PoolIPAllocation, decode_allocated_ips
from spiderpool.core.errors import AllocationsFormatError, InvalidSpec
from spiderpool.core.specs import IPPoolSpec, SubnetSpec, parse_ippool_spec, parse_reservedip_spec, parse_subnet_spec
from spiderpool.core.subnet_planning import LABEL_SUBNET, ControlledPool, decode_controlled_pools
from spiderpool.k8s.store import SpiderStores

log = logging.getLogger(__name__)

Body = dict[str, Any]


@dataclass(slots=True)
class SubnetEntry:
    body: Body
    spec: SubnetSpec
    controlled: dict[str, ControlledPool]

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])

    @property
    def uid(self) -> str:
        return str(self.body["metadata"].get("uid", ""))


@dataclass(slots=True)
class PoolEntry:
    body: Body
    spec: IPPoolSpec

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])

    @property
    def labels(self) -> dict[str, str]:
        labels: dict[str, str] = self.body["metadata"].get("labels") or {}
        return labels

    @property
    def deleting(self) -> bool:
        return self.body["metadata"].get("deletionTimestamp") is not None

    def records(self) -> dict[str, PoolIPAllocation]:
        text = (self.body.get("status") or {}).get("allocatedIPs")
        return decode_allocated_ips(text, version=self.spec.ip_version)


def subnet_entry(body: Body) -> SubnetEntry:
    spec = parse_subnet_spec(body.get("spec"))
    text = (body.get("status") or {}).get("controlledIPPools")
    return SubnetEntry(body=body, spec=spec, controlled=decode_controlled_pools(text, version=spec.ip_version))


@dataclass(slots=True)
class ClusterSnapshot:
    subnets: dict[str, SubnetEntry] = field(default_factory=dict)
    pools: dict[str, PoolEntry] = field(default_factory=dict)
    reserved: dict[int, list[IPRange]] = field(default_factory=dict)

    @classmethod
    async def read(cls, stores: SpiderStores) -> ClusterSnapshot:
        snapshot = cls()
        for subnet in (await stores.subnets.list()).items:
            try:
                snapshot.subnets[subnet["metadata"]["name"]] = subnet_entry(dict(subnet))
            except (InvalidSpec, ValueError) as error:
                log.error("SpiderSubnet %s skipped: %s", subnet["metadata"]["name"], error)
        for pool in (await stores.ippools.list()).items:
            snapshot.put_pool(dict(pool))
        reserved: dict[int, list[IPRange]] = {4: [], 6: []}
        for reserved_ip in (await stores.reserved_ips.list()).items:
            if reserved_ip["metadata"].get("deletionTimestamp"):
                continue  # upstream ignores terminating SpiderReservedIPs
            try:
                spec = parse_reservedip_spec(reserved_ip.get("spec"))
            except (InvalidSpec, ValueError) as error:
                log.error("SpiderReservedIP %s skipped: %s", reserved_ip["metadata"]["name"], error)
                continue
            reserved[spec.ip_version].extend(spec.ips)
        snapshot.reserved = {version: merge_ranges(ranges) for version, ranges in reserved.items()}
        return snapshot

    def put_pool(self, body: Body) -> None:
        name = body["metadata"]["name"]
        try:
            self.pools[name] = PoolEntry(body=body, spec=parse_ippool_spec(body.get("spec")))
        except (InvalidSpec, ValueError) as error:
            log.error("SpiderIPPool %s skipped: %s", name, error)

    def pools_in_cidr(self, subnet: SubnetEntry) -> Iterator[PoolEntry]:
        """Every pool of ``subnet``'s CIDR, owned by it or not (they all take addresses from the same network)."""
        for pool in self.pools.values():
            if pool.spec.ip_version == subnet.spec.ip_version and pool.spec.subnet == subnet.spec.subnet:
                yield pool

    def owned_pools(self, subnet: str) -> Iterator[PoolEntry]:
        return (pool for pool in self.pools.values() if pool.labels.get(LABEL_SUBNET) == subnet)

    def sibling_subnets(self, subnet: SubnetEntry) -> Iterator[SubnetEntry]:
        """Other subnets of the same network: their controlled addresses are not free for ``subnet`` either."""
        for other in self.subnets.values():
            if other.name != subnet.name and other.spec.subnet == subnet.spec.subnet:
                yield other

    def allocated_ips(self, pool: PoolEntry) -> list[int]:
        try:
            records = pool.records()
        except AllocationsFormatError as error:
            raise ValueError(f"SpiderIPPool {pool.name}: {error}") from error
        return [parse_ip(ip, version=pool.spec.ip_version, field="status.allocatedIPs") for ip in records]

