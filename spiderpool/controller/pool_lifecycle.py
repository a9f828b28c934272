"""PoolLifecycle: keeps each SpiderIPPool's counts true and lets a terminating pool go once it holds no record.

- ``status.totalIPCount`` = |ips - excludeIPs| and ``status.allocatedIPCount`` = the number of records, written with
  compare-and-swap on the pool's resourceVersion; the records themselves are copied from the very object the write
  is conditioned on, so this never drops (or resurrects) a record.
- The ``spiderpool.spidernet.io`` finalizer of a terminating pool is removed only when ``status.allocatedIPs`` is
  empty: deleting a pool with allocations waits for the last release (agents and the leak collector still release
  from a terminating pool).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, Final

from spiderpool.controller.context import ControllerContext
from spiderpool.core.addressing import parse_cidr, parse_ip_ranges, total_ip_count
from spiderpool.core.allocations import allocated_ip_count, decode_allocated_ips
from spiderpool.core.errors import InvalidSpec
from spiderpool.core.record_text import RecordsCodec, RecordsCodecs
from spiderpool.k8s.bodies import SpiderIPPool
from spiderpool.k8s.store import IPPOOL, Conflict, NotFound
from spiderpool.k8s.watch_cache import WatchCache, WatchEvent, custom_object_source

log = logging.getLogger(__name__)

FINALIZER: Final = "spiderpool.spidernet.io"
_MAX_RACES: Final = 16


def desired_counts(pool: Mapping[str, Any], *, codec: RecordsCodec | None = None) -> dict[str, int]:
    """The counts the status should carry; ``totalIPCount`` is left out when the spec cannot be read.

    ``codec``: the pool's incremental decoder (every write of the pool comes here as an event: decoding each from
    scratch cost the controller a loop over every record per write).
    """
    status = pool.get("status") or {}
    text = status.get("allocatedIPs")
    records = codec.decode(text).records if codec is not None else decode_allocated_ips(text)
    counts = {"allocatedIPCount": allocated_ip_count(records)}
    spec = pool.get("spec") or {}
    try:
        version = int(spec.get("ipVersion") or parse_cidr(spec.get("subnet"), field="spec.subnet").version)
        ips = parse_ip_ranges(spec.get("ips") or [], version=version, field="spec.ips")
        excluded = parse_ip_ranges(spec.get("excludeIPs") or [], version=version, field="spec.excludeIPs")
    except (ValueError, InvalidSpec) as error:
        log.warning("pool %s: cannot count its addresses: %s", pool["metadata"]["name"], error)
        return counts
    counts["totalIPCount"] = total_ip_count(ips, excluded)
    return counts


def counts_drift(pool: Mapping[str, Any], *, codec: RecordsCodec | None = None) -> dict[str, int]:
    """The counts that differ from what the status says (empty: nothing to write)."""
    status = pool.get("status") or {}
    return {key: value for key, value in desired_counts(pool, codec=codec).items() if status.get(key) != value}


def may_drop_finalizer(pool: Mapping[str, Any]) -> bool:
    meta = pool["metadata"]
    return bool(meta.get("deletionTimestamp")) and FINALIZER in (meta.get("finalizers") or ()) \
        and not (pool.get("status") or {}).get("allocatedIPs")


class PoolLifecycle:
    name = "pool-lifecycle"

    def __init__(self, ctx: ControllerContext, *, resync: float = 60.0) -> None:
        self._ctx = ctx
        self._resync = resync
        self._dirty: set[str] = set()
        self._woken = asyncio.Event()
        self._codecs = RecordsCodecs()
        self.cache: WatchCache[SpiderIPPool] | None = None

    def _on_event(self, event: WatchEvent[SpiderIPPool]) -> None:
        name = event.object["metadata"]["name"]
        if event.type == "DELETED":
            self._codecs.forget(name)
        elif counts_drift(event.object, codec=self._codecs.of(name)) or may_drop_finalizer(event.object):
            self._dirty.add(event.object["metadata"]["name"])
            self._woken.set()
        if self.cache is not None:
            self._ctx.metrics.total_ippool_counts.set(len(self.cache))

    async def run(self) -> None:
        cache = self.cache = WatchCache(custom_object_source(self._ctx.api, IPPOOL), name="lifecycle-ippools")
        cache.add_handler(self._on_event)
        try:
            await cache.start()
            while True:
                if not self._dirty:
                    self._woken.clear()
                    try:  # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
                        async with asyncio.timeout(self._resync):
                            await self._woken.wait()
                    except TimeoutError:
                        self._dirty |= {pool["metadata"]["name"] for pool in cache.items()}
                    continue
                name = self._dirty.pop()
                try:
                    await self.reconcile(name)
                except Exception as error:  # one pool's failure must not stop the others
                    log.warning("pool %s: lifecycle step failed: %s", name, error)
        finally:
            await cache.stop()

    async def reconcile(self, name: str) -> None:
        """Fix the counts, then drop the finalizer if the pool is terminating and empty; CAS, retried on races."""
        store = self._ctx.stores.ippools
        for _ in range(_MAX_RACES):
            try:
                pool = await store.get(name)
            except NotFound:
                return
            drift = counts_drift(pool)
            if drift:
                body: Any = {**pool, "status": {**(pool.get("status") or {}), **drift}}
                await store.swap_status(body)  # won or lost, re-read: the next step must see the stored object
                continue
            if not may_drop_finalizer(pool):
                return
            kept = [f for f in pool["metadata"].get("finalizers") or () if f != FINALIZER]
            try:
                await store.replace({**pool, "metadata": {**pool["metadata"], "finalizers": kept}})
            except (Conflict, NotFound):
                continue
            log.info("pool %s: terminating and empty: finalizer removed", name)
            return
        raise Conflict(f"SpiderIPPool {name}: lost {_MAX_RACES} races", stale_resource_version="")
