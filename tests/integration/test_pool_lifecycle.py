"""PoolLifecycle against the real API server: counts kept true, a pool with records held by its finalizer
(PL01, PL02 in docs/gc.md)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest
from kubernetes_asyncio.client import ApiClient

from spiderpool.controller.context import ControllerContext
from spiderpool.controller.pool_lifecycle import FINALIZER, PoolLifecycle, desired_counts
from spiderpool.k8s.core_objects import CoreObjects
from spiderpool.k8s.status_plan import AllocateIntent, ReleaseIntent
from spiderpool.k8s.status_writer import PoolStatusWriter
from spiderpool.k8s.store import NotFound, SpiderStores

pytestmark = pytest.mark.integration


@pytest.fixture
async def lifecycle(api: ApiClient) -> AsyncIterator[PoolLifecycle]:
    component = PoolLifecycle(ControllerContext(api=api, stores=SpiderStores(api), core=CoreObjects(api)))
    task = asyncio.create_task(component.run())
    await eventually(lambda: component.cache is not None and component.cache.synced)
    yield component
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def eventually(predicate: Callable[[], bool | Coroutine[Any, Any, bool]], *, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if not isinstance(value, bool):
            value = await value
        if value:
            return
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def make_pool(api: ApiClient, **spec: Any) -> str:
    name = f"life-{uuid.uuid4().hex[:8]}"
    body: Any = {"metadata": {"name": name, "finalizers": [FINALIZER]},
                 "spec": {"subnet": "10.88.0.0/16", "ips": ["10.88.0.1-10.88.0.100"], **spec}}
    await SpiderStores(api).ippools.create(body)
    return name


async def test_pl01_total_and_allocated_counts(api: ApiClient, lifecycle: PoolLifecycle) -> None:
    """PL01: ``totalIPCount`` follows ``ips - excludeIPs`` when the spec changes; ``allocatedIPCount`` the records."""
    name = await make_pool(api, excludeIPs=["10.88.0.1-10.88.0.10"])
    store = SpiderStores(api).ippools

    async def counted() -> bool:
        status = (await store.get(name)).get("status", {})
        return status.get("totalIPCount") == 90 and status.get("allocatedIPCount") == 0

    await eventually(counted)
    pool = await store.get(name)
    await store.replace({**pool, "spec": {**pool["spec"], "ips": ["10.88.0.1-10.88.0.200"]}})

    async def grown() -> bool:
        return (await store.get(name)).get("status", {}).get("totalIPCount") == 190

    await eventually(grown)
    assert desired_counts(await store.get(name)) == {"allocatedIPCount": 0, "totalIPCount": 190}


async def test_pl02_deletion_held_until_last_record_released(api: ApiClient, lifecycle: PoolLifecycle) -> None:
    """PL02: a deleted pool that holds a record keeps its finalizer (the lifecycle has seen it terminating and
    reconciled it); once the record is released the pool goes."""
    name = await make_pool(api)
    store = SpiderStores(api).ippools
    writer = PoolStatusWriter(store, redecide=lambda *_: None)
    try:
        await writer.allocate(name, AllocateIntent("ns/p", "uid-1", "10.88.0.5"))
        await store.delete(name)

        def deletion_seen() -> bool:
            cached = lifecycle.cache.get(name) if lifecycle.cache is not None else None
            return cached is not None and bool(cached["metadata"].get("deletionTimestamp"))

        await eventually(deletion_seen)  # the lifecycle's handler has had the terminating pool
        await lifecycle.reconcile(name)  # and what its reconcile does with it now: keep the finalizer
        held = await store.get(name)
        assert held["metadata"].get("deletionTimestamp")
        assert FINALIZER in held["metadata"]["finalizers"]
        released = await writer.release(name, ReleaseIntent("10.88.0.5", "uid-1"))
        assert released.removed

        async def gone() -> bool:
            try:
                await store.get(name)
            except NotFound:
                return True
            return False

        await eventually(gone)
    finally:
        await writer.close()
