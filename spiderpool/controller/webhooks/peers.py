"""The peers a webhook decision compares against, read fresh from the API server (never from a lagging cache)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from spiderpool.controller.webhooks.ledger import PendingEntry
from spiderpool.core.allocations import decode_allocated_ips
from spiderpool.core.errors import AllocationsFormatError, InvalidSpec
from spiderpool.core.pool_admission import PeerPool, PeerSubnet
from spiderpool.core.specs import parse_ippool_spec, parse_subnet_spec
from spiderpool.k8s.store import SpiderStores

log = logging.getLogger(__name__)


def _pool(obj: dict[str, Any]) -> PeerPool | None:
    name = obj["metadata"]["name"]
    try:
        spec = parse_ippool_spec(obj.get("spec"))
        allocated = decode_allocated_ips((obj.get("status") or {}).get("allocatedIPs"), version=spec.ip_version)
    except (InvalidSpec, AllocationsFormatError) as error:
        log.warning("SpiderIPPool %s is unreadable, ignored by the webhook: %s", name, error)
        return None
    return PeerPool(name=name, spec=spec, allocated=allocated)


def _subnet(obj: dict[str, Any]) -> PeerSubnet | None:
    meta = obj["metadata"]
    try:
        return PeerSubnet(name=meta["name"], spec=parse_subnet_spec(obj.get("spec")), uid=str(meta.get("uid", "")))
    except InvalidSpec as error:
        log.warning("SpiderSubnet %s is unreadable, ignored by the webhook: %s", meta["name"], error)
        return None


def _pending(entries: Iterable[PendingEntry], kind: str, listed: set[str]) -> list[dict[str, Any]]:
    return [{"metadata": {"name": e.name}, "spec": e.spec} for e in entries if e.kind == kind and e.name not in listed]


async def list_pools(stores: SpiderStores, pending: Iterable[PendingEntry] = ()) -> list[PeerPool]:
    """Every stored pool, plus the pending ones not stored yet."""
    listed: list[dict[str, Any]] = [dict(item) for item in (await stores.ippools.list()).items]
    names = {obj["metadata"]["name"] for obj in listed}
    objects = listed + _pending(pending, "SpiderIPPool", names)
    return [pool for pool in map(_pool, objects) if pool is not None]


async def list_subnets(stores: SpiderStores, pending: Iterable[PendingEntry] = ()) -> list[PeerSubnet]:
    listed: list[dict[str, Any]] = [dict(item) for item in (await stores.subnets.list()).items]
    names = {obj["metadata"]["name"] for obj in listed}
    objects = listed + _pending(pending, "SpiderSubnet", names)
    return [subnet for subnet in map(_subnet, objects) if subnet is not None]
