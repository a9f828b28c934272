"""The batched pool status writer: group commit of allocation and release records, one compare-and-swap per write.

Per pool, while one status update is in flight, new intents queue; when it completes, the queue becomes the next
update (optionally after a short ``linger``).  Under load one write carries many records; alone, an intent pays one
round trip.  Every update is a compare-and-swap on the pool's ``resourceVersion``.  On 409 Conflict the writer reads
the pool afresh (a direct GET: a watch may lag) and re-applies every queued intent to it; an allocation whose address
was taken meanwhile is re-decided by the ``redecide`` callback (the allocator), never silently dropped.

Each write is planned on the freshest pool object the writer knows: its own last write or direct read, or the watch
cache's copy (``cached_pool``) when that is newer by ``resourceVersion`` (another writer changed the pool since).
Planning on an older copy would re-decide against records that are gone and lose the race for nothing.  Every
object read or written directly is passed to ``observe``, so the allocator's cache learns of it at once.

A caller's future resolves only once its record is in the API server (or is known to be there already), or fails
with a :class:`StatusWriteError` that names the pool and the reason.  What one write of a batch contains (and the
intent, outcome and error types) is decided by the pure planning step in :mod:`spiderpool.k8s.status_plan`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from spiderpool.core.allocations import AllocationsFormatError
from spiderpool.core.errors import FieldError
from spiderpool.core.record_text import DecodedRecords, RecordsCodecs
from spiderpool.k8s.api_errors import is_transient
from spiderpool.k8s.bodies import SpiderIPPool
from spiderpool.k8s.status_plan import (
    Allocated,
    AllocateIntent,
    BatchPlan,
    Intent,
    Outcome,
    PendingIntent,
    PoolNotFound,
    Redecide,
    Released,
    ReleaseIntent,
    StatusWriteError,
    WriteAbandoned,
    check_intent,
    encoded_status_body,
    plan_batch,
)
from spiderpool.k8s.store import Conflicted, CustomObjectStore, NotFound

log = logging.getLogger(__name__)


@dataclass(slots=True)
class WriterStats:
    """Counters (plain attributes; metrics are wired to them elsewhere)."""

    write_requests: int = 0
    writes: int = 0
    conflicts: int = 0
    fresh_reads: int = 0
    watch_catch_ups: int = 0  # lost races re-planned on the watch's newer copy instead of a read
    redecisions: int = 0
    transient_errors: int = 0
    intents_committed: int = 0
    intents_failed: int = 0
    largest_batch: int = 0
    longest_conflict_streak: int = 0
    foreign_changes: int = 0  # writes planned on the watch's newer copy: another writer had changed the pool


@dataclass(slots=True)
class _Lane:
    """One pool's queue, its worker, and the last pool object the writer knows (with its decoded records)."""

    queue: list[PendingIntent] = field(default_factory=list)
    worker: asyncio.Task[None] | None = None
    base: SpiderIPPool | None = None
    records: DecodedRecords | None = None
    lost: int | None = None  # the resourceVersion of the base the last write lost with
    inflight: int = 0  # intents taken into the write being made now


def _is_transient(error: BaseException) -> bool:
    return is_transient(error)  # the one classification: 429, 5xx, or no answer at all


def resource_version_number(obj: Mapping[str, Any] | None) -> int | None:
    """``metadata.resourceVersion`` as a number (etcd's revision), or None when absent or not a number.

    Kubernetes calls resource versions opaque; every API server backed by etcd issues them as increasing revision
    numbers, which is what lets the writer and the agent tell the newer of two copies of one object apart.
    """
    text = None if obj is None else obj.get("metadata", {}).get("resourceVersion")
    if not isinstance(text, str) or not text.isdigit():
        return None
    return int(text)


def is_newer(candidate: Mapping[str, Any] | None, than: Mapping[str, Any] | None) -> bool:
    """Whether ``candidate`` is a later version of the object than ``than`` (False when either is unknown)."""
    new, old = resource_version_number(candidate), resource_version_number(than)
    return new is not None and old is not None and new > old


def _jitter(attempt: int, *, base: float, cap: float) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2^attempt)], so racing writers fall out of step."""
    return random.uniform(0.0, min(cap, base * (1 << min(attempt, 16))))


class PoolStatusWriter:
    """Group-commit writer of ``SpiderIPPool`` records (see the module doc).

    ``batching=False`` writes one intent per update (still compare-and-swap): the baseline the benchmark compares
    against.  ``linger`` delays each write to gather more intents (0 = pure group commit).  A batch that loses
    ``max_conflicts`` races in a row, or that cannot be written within ``deadline`` seconds, fails with
    :class:`WriteAbandoned`.  ``cached_pool`` (e.g. a watch cache's ``get``) supplies a pool's first base object
    instead of a GET, and replaces the base whenever it is newer; after any conflict or error the writer reads the
    pool directly.  ``observe`` is called with every pool object the writer reads or writes directly.

    Optimistic concurrency has no fairness: under sustained races one writer can lose tens of times in a row
    (``stats.longest_conflict_streak``).  The conflict backoff defaults were chosen with ``perf/bench_store.py``:
    a longer cap cut both 409s and the longest streak about in half against (2 ms, 100 ms), at equal throughput.
    """

    def __init__(
        self,
        pools: CustomObjectStore[SpiderIPPool],
        *,
        redecide: Redecide,
        batching: bool = True,
        linger: float = 0.0,
        max_batch: int = 1000,
        max_conflicts: int = 128,
        deadline: float = 30.0,
        conflict_backoff: tuple[float, float] = (0.005, 0.3),
        error_backoff: tuple[float, float] = (0.05, 2.0),
        cached_pool: Callable[[str], SpiderIPPool | None] | None = None,
        observe: Callable[[SpiderIPPool], object] | None = None,
        codecs: RecordsCodecs | None = None,
    ) -> None:
        if max_batch < 1:
            raise FieldError(field="max_batch", value=max_batch, reason="must be at least 1")
        self.stats = WriterStats()
        self._pools = pools
        self._redecide = redecide
        self._max_batch = max_batch if batching else 1
        self._batching = batching
        self._linger = linger
        self._max_conflicts = max_conflicts
        self._deadline = deadline
        self._conflict_backoff, self._error_backoff = conflict_backoff, error_backoff
        self._cached_pool = cached_pool
        self._observe = observe
        self._codecs = codecs if codecs is not None else RecordsCodecs()
        self._lanes: dict[str, _Lane] = {}
        # Called with a pool's name when another writer got in the way (a lost race, or a newer copy in the cache).
        self.on_contention: Callable[[str], object] | None = None
        self._closed = False

    async def allocate(self, pool: str, intent: AllocateIntent) -> Allocated:
        return cast(Allocated, await self.submit(pool, intent))

    async def release(self, pool: str, intent: ReleaseIntent) -> Released:
        return cast(Released, await self.submit(pool, intent))

    def submit(self, pool: str, intent: Intent) -> asyncio.Future[Outcome]:
        """Queue ``intent`` for ``pool``; the future resolves once it is durable (or fails)."""
        if self._closed:
            raise RuntimeError("the status writer is closed")
        choice = check_intent(intent)
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        lane = self._lanes.setdefault(pool, _Lane())
        lane.queue.append(PendingIntent(intent, future, choice))
        if lane.worker is None:
            lane.worker = asyncio.create_task(self._drain(pool, lane), name=f"pool-status-writer-{pool}")
        return future

    async def close(self) -> None:
        """Refuse new intents and wait until every queued one is resolved."""
        self._closed = True
        workers = [lane.worker for lane in self._lanes.values() if lane.worker is not None]
        await asyncio.gather(*workers, return_exceptions=True)

    # ------------------------------------------------------------------------------------------------ internals

    def _take(self, lane: _Lane, room: int) -> list[PendingIntent]:
        taken = lane.queue[:room]
        del lane.queue[:room]
        lane.inflight += len(taken)
        return taken

    async def _drain(self, name: str, lane: _Lane) -> None:
        batch: list[PendingIntent] = []
        try:
            while lane.queue:
                if self._linger > 0:
                    await asyncio.sleep(self._linger)
                batch = self._take(lane, self._max_batch)
                self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
                try:
                    await self._commit(name, lane, batch)
                    lane.inflight = 0
                except Exception as error:  # a bug must fail this batch's callers, not strand the lane
                    lane.inflight = 0
                    log.exception("pool %s: status write failed unexpectedly", name)
                    lane.base = None
                    self._fail(batch, StatusWriteError(name, f"pool {name}: status write failed: {error!r}"))
        except BaseException:
            self._fail(batch + lane.queue, StatusWriteError(name, f"pool {name}: the status writer was stopped"))
            lane.queue.clear()
            raise
        finally:
            lane.worker = None

    async def _commit(self, name: str, lane: _Lane, batch: list[PendingIntent]) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        conflicts = errors = 0
        fresh, use_cache, newer_than = False, True, None
        while True:
            try:
                if lane.base is None or lane.records is None:
                    fresh = await self._load_base(name, lane, use_cache=use_cache, newer_than=newer_than)
                    use_cache, newer_than = False, None
                    continue
                if self._catch_up(name, lane):
                    fresh = False
                plan = plan_batch(name, lane.base, lane.records.records, batch, self._redecide)
                self.stats.redecisions += plan.redecisions
                if not plan.changed and not fresh:
                    lane.base = None  # "nothing to write" must be judged on the server's state, not on a cached copy
                    continue
                if not plan.changed or await self._write(lane, plan):
                    self._resolve(batch, plan.outcomes)
                    return
                conflicts += 1
                self.stats.longest_conflict_streak = max(self.stats.longest_conflict_streak, conflicts)
                if conflicts > self._max_conflicts or loop.time() - started >= self._deadline:
                    elapsed = loop.time() - started
                    raise WriteAbandoned(name, f"pool {name}: gave up after {conflicts} conflicts in {elapsed:.1f}s")
                await asyncio.sleep(_jitter(conflicts, base=self._conflict_backoff[0], cap=self._conflict_backoff[1]))
                newer_than = lane.lost  # the watch's copy will do once it is newer than what lost
                if self._batching and len(batch) < self._max_batch:
                    batch.extend(self._take(lane, self._max_batch - len(batch)))
                    self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
            except StatusWriteError as failure:
                self._fail(batch, failure)
                return
            except Exception as error:
                lane.base = None
                elapsed = loop.time() - started
                if not _is_transient(error) or elapsed >= self._deadline:
                    self._fail(batch, self._failure(name, error, elapsed=elapsed))
                    return
                errors += 1
                self.stats.transient_errors += 1
                log.warning("pool %s: status write failed (%s); retrying", name, error or type(error).__name__)
                await asyncio.sleep(_jitter(errors, base=self._error_backoff[0], cap=self._error_backoff[1]))

    async def _load_base(self, name: str, lane: _Lane, *, use_cache: bool, newer_than: int | None = None) -> bool:
        """Load the pool object to plan on; True when it was read directly from the API server.

        ``use_cache``: the watch cache's copy will do; ``newer_than``: it will do if its resourceVersion is above
        that (after a lost race: the watch event of the write that won, whichever comes first, it or a read).
        """
        pool = self._cached_pool(name) if self._cached_pool is not None else None
        if pool is not None and not use_cache:
            version = resource_version_number(pool)
            if newer_than is None or version is None or version <= newer_than:
                pool = None
            else:
                self.stats.watch_catch_ups += 1
        fresh = pool is None
        if pool is None:
            self.stats.fresh_reads += 1
            pool = await self._pools.get(name)
            self._observed(pool)
        self._set_base(lane, pool)
        return fresh

    def _catch_up(self, name: str, lane: _Lane) -> bool:
        """Plan on the watch cache's copy when it is newer than the base (another writer changed the pool)."""
        cached = self._cached_pool(name) if self._cached_pool is not None else None
        if cached is None or not is_newer(cached, lane.base):
            return False
        self._set_base(lane, cached)
        self.stats.foreign_changes += 1
        self._contended(name)
        return True

    def _contended(self, name: str) -> None:
        if self.on_contention is not None:
            self.on_contention(name)

    def busy(self, pool: str) -> bool:
        """Whether a write of ``pool`` is in flight or queued here now."""
        lane = self._lanes.get(pool)
        return lane is not None and lane.worker is not None

    def pending(self, pool: str) -> int:
        """Intents of ``pool`` queued or being written here now."""
        lane = self._lanes.get(pool)
        return 0 if lane is None else len(lane.queue) + lane.inflight

    def _set_base(self, lane: _Lane, pool: SpiderIPPool) -> None:
        codec = self._codecs.of(pool["metadata"]["name"])
        lane.records = codec.decode(pool.get("status", {}).get("allocatedIPs"))
        lane.base = pool

    def _observed(self, pool: SpiderIPPool) -> None:
        if self._observe is None:
            return
        try:
            self._observe(pool)
        except Exception:  # the observer's failure must not fail a write that succeeded
            log.exception("pool %s: the status writer's observer failed", pool["metadata"].get("name"))

    async def _write(self, lane: _Lane, plan: BatchPlan) -> bool:
        """Compare-and-swap the planned records; False (and the base dropped) when the pool changed meanwhile."""
        assert lane.base is not None
        assert lane.records is not None
        name = lane.base["metadata"]["name"]
        codec = self._codecs.of(name)
        encoded = codec.encode(plan.records, base=lane.records, removed=plan.removed, added=plan.added)
        body = encoded_status_body(lane.base, encoded.text, len(plan.records))
        lane.base = None  # until the outcome is known: after an error the write may or may not have landed
        self.stats.write_requests += 1
        result = await self._pools.swap_status(body)
        if isinstance(result, Conflicted):
            self.stats.conflicts += 1
            lane.lost = resource_version_number(body)
            self._contended(name)
            return False
        self.stats.writes += 1
        lane.base, lane.records = result.object, encoded
        self._observed(result.object)
        return True

    def _failure(self, name: str, error: Exception, *, elapsed: float) -> StatusWriteError:
        if isinstance(error, NotFound):
            return PoolNotFound(name, f"pool {name} not found")
        if isinstance(error, AllocationsFormatError):
            return StatusWriteError(name, f"pool {name}: status.allocatedIPs is malformed: {error}")
        if _is_transient(error):
            return WriteAbandoned(name, f"pool {name}: no successful write within {elapsed:.1f}s: {error}")
        return StatusWriteError(name, f"pool {name}: {error}")

    def _resolve(self, batch: list[PendingIntent], outcomes: list[Outcome | StatusWriteError]) -> None:
        for pending, outcome in zip(batch, outcomes, strict=True):
            if pending.future.done():
                continue
            if isinstance(outcome, StatusWriteError):
                self.stats.intents_failed += 1
                pending.future.set_exception(outcome)
            else:
                self.stats.intents_committed += 1
                pending.future.set_result(outcome)

    def _fail(self, batch: list[PendingIntent], failure: StatusWriteError) -> None:
        self._resolve(batch, [failure] * len(batch))
