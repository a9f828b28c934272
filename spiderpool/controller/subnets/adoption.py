"""Adoption of manual SpiderIPPools by the SpiderSubnet of their network, and the subnets' status sync.

A pool created before its subnet (or while the webhook was down) gets the subnet as controller owner and the
``ipam.spidernet.io/owner-spider-subnet`` label, as the mutating webhook would have given it at creation.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import cast

from spiderpool.controller.subnets.snapshot import ClusterSnapshot, PoolEntry, SubnetEntry
from spiderpool.controller.subnets.status import change_controlled
from spiderpool.core.addressing import format_ip_ranges, subtract_ranges
from spiderpool.core.subnet_planning import LABEL_APP_NAME, LABEL_SUBNET, ControlledPool
from spiderpool.k8s.bodies import SpiderIPPool
from spiderpool.k8s.store import API_VERSION, SpiderStores

log = logging.getLogger(__name__)


def adoptive_subnet(snapshot: ClusterSnapshot, pool: PoolEntry) -> SubnetEntry | None:
    """The subnet that should own ``pool`` (same network, first by name), None when it has an owner or none fits."""
    if LABEL_SUBNET in pool.labels or pool.deleting:
        return None
    owners = pool.body["metadata"].get("ownerReferences") or []
    if any(owner.get("controller") for owner in owners):
        return None
    fitting = sorted((s for s in snapshot.subnets.values()
                      if s.spec.ip_version == pool.spec.ip_version and s.spec.subnet == pool.spec.subnet),
                     key=lambda s: s.name)
    return fitting[0] if fitting else None


async def adopt_manual_pools(stores: SpiderStores, snapshot: ClusterSnapshot) -> None:
    for pool in list(snapshot.pools.values()):
        subnet = adoptive_subnet(snapshot, pool)
        if subnet is None:
            continue
        outside = subtract_ranges(pool.spec.ips, subnet.spec.ips)
        if outside:
            log.error("SpiderIPPool %s not adopted by SpiderSubnet %s: spec.ips %s are outside the subnet's "
                      "spec.ips", pool.name, subnet.name, format_ip_ranges(outside, version=pool.spec.ip_version))
            continue
        meta = pool.body["metadata"]
        owner = {"apiVersion": API_VERSION, "kind": "SpiderSubnet", "name": subnet.name, "uid": subnet.uid,
                 "controller": True, "blockOwnerDeletion": True}
        labels = {**(meta.get("labels") or {}), LABEL_SUBNET: subnet.name}
        body = {**pool.body, "metadata": {**meta, "labels": labels,
                                          "ownerReferences": [*(meta.get("ownerReferences") or []), owner]}}
        stored = await stores.ippools.replace(cast(SpiderIPPool, body))
        snapshot.put_pool(dict(stored))
        log.info("SpiderIPPool %s adopted by SpiderSubnet %s", pool.name, subnet.name)


async def sync_subnet_status(
    stores: SpiderStores, snapshot: ClusterSnapshot, subnet: SubnetEntry, *, pending: Collection[str]
) -> None:
    """``controlledIPPools`` = the subnet's pools as they are, plus claims for pools still being created
    (``pending``); then the counts."""
    def change(entry: SubnetEntry) -> dict[str, ControlledPool]:
        controlled: dict[str, ControlledPool] = {}
        for pool in snapshot.owned_pools(entry.name):
            old = entry.controlled.get(pool.name)
            application = old.application if old and old.application else None
            if application is None and LABEL_APP_NAME in pool.labels:
                application = _application_from_labels(pool.labels)
            controlled[pool.name] = ControlledPool(ips=tuple(pool.spec.ips), application=application)
        for name, claim in entry.controlled.items():
            if name not in controlled and name in pending:
                controlled[name] = claim
        return controlled

    stored = await change_controlled(stores.subnets, subnet, change)
    snapshot.subnets[stored.name] = stored


def _application_from_labels(labels: dict[str, str]) -> str:
    keys = ("gv", "kind", "namespace", "name")
    return "_".join(labels.get(f"ipam.spidernet.io/owner-application-{key}", "") for key in keys)
