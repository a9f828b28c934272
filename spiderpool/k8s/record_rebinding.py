"""Rebinding pool records to a new pod UID: how a StatefulSet pod re-created under its old name keeps its addresses.

Upstream's ``UpdateAllocatedIPs``: each record keeps its ``pod`` (``namespace/name``) and gets the new ``podUid``,
written with one compare-and-swap per pool (retried with jitter on conflict).  A record that names another pod is
"data broken" and refused; a record that is gone (released meanwhile) is reported, so the caller allocates afresh.
This runs beside the batched writer, not through it: the writer's next write to the pool conflicts once and
re-reads, which is the compare-and-swap contract working as intended.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence

from spiderpool.core.allocations import PoolIPAllocation, decode_allocated_ips
from spiderpool.k8s.bodies import SpiderIPPool
from spiderpool.k8s.status_plan import StatusWriteError, WriteAbandoned, status_body
from spiderpool.k8s.store import Conflicted, CustomObjectStore

__all__ = ["RecordMissing", "RecordOwnedByAnotherPod", "rebind_records"]


class RecordMissing(StatusWriteError):
    """An address to rebind has no record any more (released meanwhile): allocate afresh instead."""


class RecordOwnedByAnotherPod(StatusWriteError):
    """A record to rebind names another pod: upstream's "data broken"; nothing was written."""


def _rebound(pool: str, records: dict[str, PoolIPAllocation], ips: Sequence[str], *, pod: str, pod_uid: str) -> bool:
    """Rewrite ``records`` in place; True when something changed."""
    changed = False
    for ip in ips:
        record = records.get(ip)
        if record is None:
            raise RecordMissing(pool, f"pool {pool}: {ip} has no record to rebind to {pod} (uid {pod_uid})")
        if record.pod != pod:
            raise RecordOwnedByAnotherPod(pool, f"pool {pool}: the record of {ip} names pod {record.pod}, not {pod}")
        if record.pod_uid != pod_uid:
            records[ip] = PoolIPAllocation(pod=pod, pod_uid=pod_uid, nic=record.nic)
            changed = True
    return changed


async def rebind_records(
    pools: CustomObjectStore[SpiderIPPool],
    *,
    pool: str,
    ips: Sequence[str],
    pod: str,
    pod_uid: str,
    max_conflicts: int = 16,
) -> bool:
    """Make every record of ``ips`` in ``pool`` name ``pod_uid``; True when a write was needed.

    Raises :class:`RecordMissing`, :class:`RecordOwnedByAnotherPod`, :class:`WriteAbandoned` after
    ``max_conflicts`` lost races, or the store's errors.
    """
    for attempt in range(max_conflicts + 1):
        current = await pools.get(pool)
        records = decode_allocated_ips(current.get("status", {}).get("allocatedIPs"))
        if not _rebound(pool, records, ips, pod=pod, pod_uid=pod_uid):
            return False
        if not isinstance(await pools.swap_status(status_body(current, records)), Conflicted):
            return True
        await asyncio.sleep(random.uniform(0.0, min(0.1, 0.002 * (1 << min(attempt, 10)))))
    raise WriteAbandoned(pool, f"pool {pool}: rebinding {', '.join(ips)} to {pod_uid} lost {max_conflicts + 1} races")
