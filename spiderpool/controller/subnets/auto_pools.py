"""Creating, resizing, keeping and deleting the auto-pools of applications, one pass at a time.

Growth claims the addresses in the subnet's ``controlledIPPools`` first, then writes the pool; shrinking writes the
pool first and lets the pass's final status sync release the claim. Either way a crash in between leaves the
claim a superset of the pool, never the other way round, so no address is ever in two pools.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, cast

from spiderpool.controller.subnets.snapshot import Body, ClusterSnapshot, PoolEntry, SubnetEntry
from spiderpool.controller.subnets.status import change_controlled
from spiderpool.core.addressing import IPRange, cidr_label_value, format_ip_ranges, merge_ranges, subtract_ranges
from spiderpool.core.pool_filters import auto_pool_affinity_labels
from spiderpool.core.selection_types import TopController
from spiderpool.core.subnet_planning import (
    LABEL_APP_UID,
    LABEL_RECLAIM,
    LABEL_SUBNET,
    AppRef,
    AutoPoolWant,
    ControlledPool,
    auto_pool_labels,
    auto_pool_name,
    free_ranges,
    identity_of,
    plan_resize,
)
from spiderpool.core.validation import is_auto_pool
from spiderpool.k8s.bodies import SpiderIPPool
from spiderpool.k8s.store import API_VERSION, SpiderStores

log = logging.getLogger(__name__)

LABEL_POOL_CIDR = "ipam.spidernet.io/ippool-cidr"


def taken_ranges(snapshot: ClusterSnapshot, subnet: SubnetEntry, *, pool: str) -> list[Sequence[IPRange]]:
    """Addresses of ``subnet``'s network that ``pool`` may not take: other pools' claims and addresses (of any
    subnet of the same network) and the reserved IPs of the family."""
    taken: list[Sequence[IPRange]] = [c.ips for name, c in subnet.controlled.items() if name != pool]
    taken += [other.spec.ips for other in snapshot.pools_in_cidr(subnet) if other.name != pool]
    for sibling in snapshot.sibling_subnets(subnet):
        taken += [c.ips for name, c in sibling.controlled.items() if name != pool]
    taken.append(snapshot.reserved.get(subnet.spec.ip_version, []))
    return taken


def pool_body(*, name: str, app: AppRef, want: AutoPoolWant, subnet: SubnetEntry, ips: Sequence[IPRange]) -> Body:
    spec = subnet.spec
    labels = auto_pool_labels(app=app, want=want) | {LABEL_POOL_CIDR: cidr_label_value(spec.subnet.text)}
    controller = TopController(kind=app.kind, name=app.name, namespace=app.namespace, uid=app.uid,
                               api_version=app.api_version)
    body_spec: dict[str, Any] = {
        "ipVersion": spec.ip_version,
        "subnet": spec.subnet.text,
        "ips": format_ip_ranges(ips, version=spec.ip_version),
        "podAffinity": {"matchLabels": auto_pool_affinity_labels(controller)},
    }
    subnet_dict = spec.to_dict()
    for key in ("gateway", "routes"):
        if key in subnet_dict:
            body_spec[key] = subnet_dict[key]
    owner = {"apiVersion": API_VERSION, "kind": "SpiderSubnet", "name": subnet.name, "uid": subnet.uid,
             "controller": True, "blockOwnerDeletion": True}
    return {"metadata": {"name": name, "labels": labels, "ownerReferences": [owner]}, "spec": body_spec}


class AutoPoolReconciler:
    """Brings one pass's auto-pools to what the live applications want."""

    def __init__(self, stores: SpiderStores, snapshot: ClusterSnapshot) -> None:
        self._stores = stores
        self._snapshot = snapshot

    def find(self, app: AppRef, want: AutoPoolWant) -> PoolEntry | None:
        """The application's existing pool: its own, or a kept one (reclaim false) of a same-kind same-name app."""
        identity = identity_of(auto_pool_labels(app=app, want=want))
        candidates = sorted(
            (pool for pool in self._snapshot.pools.values()
             if is_auto_pool(pool.labels) and not pool.deleting and identity_of(pool.labels) == identity),
            key=lambda pool: pool.name,
        )
        own = [pool for pool in candidates if pool.labels.get(LABEL_APP_UID) == app.uid]
        kept = [pool for pool in candidates if pool.labels.get(LABEL_RECLAIM) == "false"]
        found = own or kept
        return found[0] if found else None

    def pool_name(self, app: AppRef, want: AutoPoolWant) -> str:
        existing = self.find(app, want)
        return existing.name if existing else auto_pool_name(version=want.version, app=app, nic=want.nic)

    async def ensure(self, app: AppRef, want: AutoPoolWant) -> None:
        """Create or resize the pool; ValueError/StoreError say why it could not be done now."""
        subnet = self._snapshot.subnets.get(want.subnet)
        if subnet is None:
            raise ValueError(f"SpiderSubnet {want.subnet} (of {app.kind} {app.namespace}/{app.name}) does not exist")
        if subnet.spec.ip_version != want.version:
            raise ValueError(f"SpiderSubnet {want.subnet} is IPv{subnet.spec.ip_version}, named as the IPv"
                             f"{want.version} subnet of {app.kind} {app.namespace}/{app.name}")
        existing = self.find(app, want)
        name = existing.name if existing else auto_pool_name(version=want.version, app=app, nic=want.nic)
        allocated = self._snapshot.allocated_ips(existing) if existing else []
        pool_ips = merge_ranges(existing.spec.ips) if existing else []
        target = self._target_ips(subnet, name=name, current=pool_ips, allocated=allocated, desired=want.ip_count)
        if existing is not None and target == pool_ips:
            await self._update_pool(existing, app=app, want=want, subnet=subnet, ips=target)
            return
        if existing is not None and _inside(target, pool_ips):
            # Shrinking: the pool gives addresses back first; the status sync then drops them from the claim.
            await self._update_pool(existing, app=app, want=want, subnet=subnet, ips=target)
            return
        subnet = await self._claim(subnet, name=name, app=app, current=pool_ips, allocated=allocated,
                                   desired=want.ip_count)
        ips = list(subnet.controlled[name].ips)
        if existing is None:
            await self._create_pool(name=name, app=app, want=want, subnet=subnet, ips=ips)
        else:
            await self._update_pool(existing, app=app, want=want, subnet=subnet, ips=ips)

    def _target_ips(self, subnet: SubnetEntry, *, name: str, current: list[IPRange], allocated: list[int],
                    desired: int) -> list[IPRange]:
        claimed = subnet.controlled.get(name)
        base = merge_ranges([*current, *(claimed.ips if claimed else ())])
        taken = [*taken_ranges(self._snapshot, subnet, pool=name), base]
        free = free_ranges(subnet.spec.usable_ranges, taken=taken)
        return plan_resize(pool=name, subnet=subnet.name, current=base, allocated=allocated, desired=desired,
                           free=free)

    async def _claim(self, subnet: SubnetEntry, *, name: str, app: AppRef, current: list[IPRange],
                     allocated: list[int], desired: int) -> SubnetEntry:
        def change(entry: SubnetEntry) -> dict[str, ControlledPool]:
            ips = self._target_ips(entry, name=name, current=current, allocated=allocated, desired=desired)
            return {**entry.controlled, name: ControlledPool(ips=tuple(ips), application=app.application)}

        stored = await change_controlled(self._stores.subnets, subnet, change)
        self._snapshot.subnets[stored.name] = stored
        return stored

    async def _create_pool(self, *, name: str, app: AppRef, want: AutoPoolWant, subnet: SubnetEntry,
                           ips: Sequence[IPRange]) -> None:
        body = pool_body(name=name, app=app, want=want, subnet=subnet, ips=ips)
        created = await self._stores.ippools.create(cast(SpiderIPPool, body))
        self._snapshot.put_pool(dict(created))
        log.info("auto-pool %s created for %s %s/%s: %d IPs from SpiderSubnet %s", name, app.kind, app.namespace,
                 app.name, want.ip_count, subnet.name)

    async def _update_pool(self, pool: PoolEntry, *, app: AppRef, want: AutoPoolWant, subnet: SubnetEntry,
                           ips: Sequence[IPRange]) -> None:
        fresh = pool_body(name=pool.name, app=app, want=want, subnet=subnet, ips=ips)
        meta = pool.body["metadata"]
        labels = {**(meta.get("labels") or {}), **fresh["metadata"]["labels"]}
        spec = {**(pool.body.get("spec") or {}), "ips": fresh["spec"]["ips"],
                "podAffinity": fresh["spec"]["podAffinity"]}
        if labels == meta.get("labels") and spec == pool.body.get("spec"):
            return
        body = {**pool.body, "metadata": {**meta, "labels": labels}, "spec": spec}
        stored = await self._stores.ippools.replace(cast(SpiderIPPool, body))
        self._snapshot.put_pool(dict(stored))
        log.info("auto-pool %s of %s %s/%s now has %d IPs", pool.name, app.kind, app.namespace, app.name,
                 sum(last - first + 1 for first, last in ips))

    async def retire(self, pool: PoolEntry) -> None:
        """An auto-pool nobody wants: deleted once it holds no allocation, or (reclaim false) kept with only its
        allocated addresses, for a same-kind same-name application to reuse."""
        allocated = self._snapshot.allocated_ips(pool)
        if pool.labels.get(LABEL_RECLAIM) == "false":
            kept = merge_ranges((ip, ip) for ip in allocated)
            if kept != merge_ranges(pool.spec.ips):
                body = {**pool.body, "spec": {**(pool.body.get("spec") or {}),
                                              "ips": format_ip_ranges(kept, version=pool.spec.ip_version)}}
                stored = await self._stores.ippools.replace(cast(SpiderIPPool, body))
                self._snapshot.put_pool(dict(stored))
                log.info("auto-pool %s kept (ippool-reclaim false), its free IPs returned to SpiderSubnet %s",
                         pool.name, pool.labels.get(LABEL_SUBNET))
            return
        if allocated:
            log.info("auto-pool %s: application gone; deleted once its %d allocations are released", pool.name,
                     len(allocated))
            return
        version = pool.body["metadata"].get("resourceVersion")
        # Conditional on the resourceVersion read: an allocation written meanwhile makes the delete fail (409).
        await self._stores.ippools.delete(pool.name, resource_version=version)
        del self._snapshot.pools[pool.name]
        log.info("auto-pool %s deleted: its application is gone", pool.name)


def _inside(inner: Sequence[IPRange], outer: Sequence[IPRange]) -> bool:
    return not subtract_ranges(merge_ranges(inner), merge_ranges(outer))
