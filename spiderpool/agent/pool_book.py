"""The agent's book of pools: one compiled allocator per SpiderIPPool, kept in step with the watch and with this agent.

Per pool, the allocator's used set is the pool's records (``status.allocatedIPs`` of the newest pool object this
agent knows, plus this agent's own writes once they are durable) united with this agent's in-flight choices (chosen,
write pending).  The newest object is the watch event's or the status writer's own read or write result
(:meth:`PoolBook.observe`), whichever has the higher ``resourceVersion``; an older copy arriving later is ignored.
Each of them patches the used set with the difference between the previous and the new records, so a record removed
by another writer is free here as soon as either shows it; the allocator is rebuilt only when the pool's ranges
change.  A mark that no record and no in-flight choice justifies is dropped when its choice settles, and when the
writer asks for a new choice (``redecide``) while nothing looks free.  SpiderReservedIP changes re-block every pool
of that family.  An index pod UID -> (pool, address) serves DEL, GC and CHECK.  Status strings are decoded
incrementally (:mod:`spiderpool.core.record_text`, one codec per pool shared with the status writer), and each new
object is applied as its difference from the last: a write costs an agent O(changed records) in Python.

Admission is not trusted: every pool is checked with the webhook's per-object rules (addresses, gateway and routes
inside the subnet) and an invalid one is refused with the reason (``refusals``); an address several valid pools
list is handed out only by the oldest of them (:mod:`spiderpool.agent.pool_overlaps`), the others block it.

This is a cache, never the truth: a choice made here is written with compare-and-swap by the status writer, which
re-decides through :meth:`PoolBook.redecide` when the server disagrees, and "exhausted" is only ever concluded on
the server's fresh records (see ``redecide``).  Not thread-safe: the agent's event loop owns it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterator, Set
from dataclasses import dataclass, field

from spiderpool.agent.conflicts import ConflictQuarantine
from spiderpool.agent.pool_overlaps import OverlapTracker
from spiderpool.core.addressing import IPRange, merge_ranges
from spiderpool.core.allocations import AllocationsFormatError, PoolIPAllocation
from spiderpool.core.allocator import AllocatorError, PoolAllocator, format_address, parse_address
from spiderpool.core.errors import InvalidSpec
from spiderpool.core.pool_overlap import Loss, held_ranges
from spiderpool.core.record_text import DecodedRecords, RecordsCodecs, changed_addresses
from spiderpool.core.specs import PoolView, ReservedIPSpec, parse_reservedip_spec
from spiderpool.core.validation import validate_ippool_object
from spiderpool.k8s.bodies import SpiderIPPool, SpiderReservedIP
from spiderpool.k8s.status_plan import AllocateIntent
from spiderpool.k8s.status_writer import is_newer, resource_version_number
from spiderpool.k8s.watch_cache import WatchEvent

log = logging.getLogger(__name__)

Holding = tuple[str, str]
"""(pool name, address) of one record."""


@dataclass(slots=True)
class _Pool:
    view: PoolView | None = None  # None while the pool is invalid
    allocator: PoolAllocator | None = None
    ranges_key: tuple[object, ...] = ()
    records: dict[str, PoolIPAllocation] = field(default_factory=dict)
    seen: DecodedRecords = field(default_factory=lambda: DecodedRecords(None, {}, []))  # of the newest object applied
    newest: SpiderIPPool | None = None  # that object (its resourceVersion orders the copies that arrive)
    inflight: set[str] = field(default_factory=set)
    problem: str | None = None
    checked: tuple[object, ...] | None = None  # (spec, labels, deletionTimestamp) the view was validated from


OverlapNotice = Callable[[SpiderIPPool, tuple[Loss, ...]], object]
"""Called with a pool object and what it loses to older overlapping pools, whenever that changes (empty: nothing)."""


def _not_newer(pool: SpiderIPPool, newest: SpiderIPPool | None) -> bool:
    """Whether ``pool`` is known to be the same or an older version than ``newest`` (unknown order: False)."""
    new, old = resource_version_number(pool), resource_version_number(newest)
    return new is not None and old is not None and new <= old


class PoolBook:
    def __init__(self, *, enable_ipv4: bool = True, enable_ipv6: bool = True,
                 on_overlap: OverlapNotice | None = None, codecs: RecordsCodecs | None = None) -> None:
        self.codecs = codecs if codecs is not None else RecordsCodecs()  # shared with the status writer
        self._pools: dict[str, _Pool] = {}
        self._reserved: dict[str, ReservedIPSpec] = {}
        self._blocked: dict[int, list[IPRange]] = {4: [], 6: []}
        self._owners: dict[str, set[Holding]] = defaultdict(set)
        self._families = {"enable_ipv4": enable_ipv4, "enable_ipv6": enable_ipv6}
        self._overlaps = OverlapTracker()
        self._on_overlap = on_overlap
        self.quarantine = ConflictQuarantine()

    # ------------------------------------------------------------------------------------------------ reading

    def view(self, pool: str) -> PoolView | None:
        entry = self._pools.get(pool)
        return None if entry is None else entry.view

    def views(self) -> dict[str, PoolView]:
        """Every pool whose spec parses, by name: what pool selection chooses from."""
        return {name: entry.view for name, entry in self._pools.items() if entry.view is not None}

    def held_by(self, pod_uid: str) -> set[Holding]:
        """Every (pool, address) whose record names ``pod_uid``."""
        return set(self._owners.get(pod_uid, ()))

    def holders(self) -> dict[str, str]:
        """Every pod UID holding a record -> the pod (``namespace/name``) its records name."""
        found: dict[str, str] = {}
        for uid, held in self._owners.items():
            for pool, ip in held:
                record = self.record(pool, ip)
                if record is not None:
                    found[uid] = record.pod
                    break
        return found

    def record(self, pool: str, ip: str) -> PoolIPAllocation | None:
        entry = self._pools.get(pool)
        return None if entry is None else entry.records.get(ip)

    def problem(self, pool: str) -> str | None:
        """Why the pool cannot allocate here (its spec or its records do not parse), if it cannot."""
        entry = self._pools.get(pool)
        return None if entry is None else entry.problem

    def refusals(self) -> dict[str, str]:
        """Every pool refused as invalid, by name, with the reason (pool selection names it in its error)."""
        return {name: entry.problem for name, entry in self._pools.items()
                if entry.view is None and entry.problem is not None}

    def overlaps(self) -> Iterator[tuple[str, str, int]]:
        """(pool, older pool, addresses of the pool that the older one owns) of every overlap."""
        return self._overlaps.counts()

    def usage(self) -> Iterator[tuple[str, int, int]]:
        """(pool, totalIPCount, allocated records) of every pool, for the usage gauges."""
        for name, entry in self._pools.items():
            total = entry.view.spec.total_ip_count if entry.view is not None else 0
            yield name, total, len(entry.records)

    # ------------------------------------------------------------------------------------------------ allocating

    def choose(self, pool: str, pod_uid: str) -> str | None:
        """The address to ask the writer for: the pod's record in this pool if it has one, else the lowest free
        address here (now in flight), else None (let the writer decide on the server's records)."""
        held = next((ip for name, ip in self._owners.get(pod_uid, ()) if name == pool), None)
        if held is not None:
            return held
        for expired in self.quarantine.expire():
            self._reblock_named(expired)
        entry = self._pools.get(pool)
        if entry is None or entry.allocator is None:
            return None
        address = entry.allocator.allocate()
        if address is None:
            return None
        text = format_address(entry.allocator.version, address)
        entry.inflight.add(text)
        return text

    def candidates(self, pool: str, chosen: str | None, count: int = 128) -> tuple[str, ...]:
        """``chosen`` and the ``count`` next free addresses here, in allocation order, none of them taken: what the
        agent offers the record combiner (empty when there is no choice, so the writer decides)."""
        entry = self._pools.get(pool)
        if chosen is None or entry is None or entry.allocator is None:
            return () if chosen is None else (chosen,)
        allocator = entry.allocator
        room = min(count, allocator.free_count)
        peeked = (allocator.allocate_n(room) or []) if room > 0 else []
        for address in peeked:
            allocator.release(address)
        return (chosen, *(format_address(allocator.version, address) for address in peeked))

    def redecide(self, pool: SpiderIPPool, taken: Set[str], intent: AllocateIntent) -> str | None:
        """The writer's callback: another address, given the server's ``taken`` ones; None when truly full.

        The book has applied the object the writer plans on (watch event or ``observe``), so its marks already hold
        ``taken`` but for what it has not seen yet: the next free address not in ``taken`` is the answer, found in
        O(1) per address skipped.  Only when nothing looks free are marks that neither ``taken`` nor an in-flight
        choice justifies dropped and the search repeated: "exhausted" is concluded on the server's records alone.
        """
        entry = self._pools.get(pool["metadata"]["name"])
        if entry is None or entry.allocator is None:
            return None
        text = self._next_free_outside(entry, taken)
        if text is None:
            self._forget_unknown_marks(entry, taken)
            entry.allocator.load_used(taken)  # texts outside the pool come back rejected: nothing to mark
            text = self._next_free_outside(entry, taken)
        if text is not None:
            entry.inflight.add(text)
        return text

    @staticmethod
    def _next_free_outside(entry: _Pool, taken: Set[str]) -> str | None:
        """The lowest address free here and not in ``taken`` (now marked), or None; a taken one found free here is
        left marked: the server holds it."""
        allocator = entry.allocator
        assert allocator is not None
        while (address := allocator.allocate()) is not None:
            text = format_address(allocator.version, address)
            if text not in taken:
                return text
        return None

    def _forget_unknown_marks(self, entry: _Pool, taken: Set[str]) -> None:
        """Free every mark that neither ``taken`` (the server's records the writer plans on, with the batch's
        choices), nor a record known here, nor an in-flight choice justifies."""
        assert entry.allocator is not None
        allocator = entry.allocator
        version = allocator.version
        keep = {address for text in (*taken, *entry.inflight)
                for family, address in (parse_address(text),) if family == version}
        stale = [address for address in allocator.iter_used() if address not in keep]
        for address in stale:
            allocator.release(address)

    def settle(self, pool: str, chosen: str | None, *, ip: str | None, pod: str, pod_uid: str,
               existing: bool = False, nic: str = "") -> None:
        """The writer answered for the address ``chosen`` here: ``ip`` is now durably the pod's (None: failed).

        A choice that was not written (replaced, or the write failed) stays marked only while a record known here
        or another in-flight choice holds it: the writer planned on an object this book has already applied, so a
        record that took the choice is in ``records``, and a record the write may have left behind after all comes
        back with the next watch event.
        """
        entry = self._pools.get(pool)
        if entry is None:
            return
        if chosen is not None:
            entry.inflight.discard(chosen)
            if chosen != ip and chosen not in entry.records and chosen not in entry.inflight:
                self._unmark(entry, chosen)
        if ip is not None:
            self._put(pool, entry, ip, PoolIPAllocation(pod=pod, pod_uid=pod_uid, nic=nic))
            self._mark(entry, ip)

    def released(self, pool: str, ip: str, pod_uid: str) -> None:
        """A release of ``ip`` by ``pod_uid`` is durable."""
        entry = self._pools.get(pool)
        if entry is None:
            return
        record = entry.records.get(ip)
        if record is not None and record.pod_uid == pod_uid:
            self._drop(pool, entry, ip)
            if ip not in entry.inflight:
                self._unmark(entry, ip)

    def rebound(self, pool: str, ip: str, *, pod: str, pod_uid: str) -> None:
        """A record now names ``pod_uid`` (a StatefulSet pod re-created under its old name; its NIC is kept)."""
        entry = self._pools.get(pool)
        if entry is not None:
            old = entry.records.get(ip)
            self._put(pool, entry, ip, PoolIPAllocation(pod=pod, pod_uid=pod_uid, nic=old.nic if old else ""))

    # ------------------------------------------------------------------------------------------------ watch events

    def on_pool_event(self, event: WatchEvent[SpiderIPPool]) -> None:
        name = event.object["metadata"]["name"]
        if event.type == "DELETED":
            gone = self._pools.pop(name, None)
            self.codecs.forget(name)
            for ip, record in (gone.records if gone is not None else {}).items():
                self._owners_discard(record.pod_uid, (name, ip))
            self._track_overlaps(name, None, created="")
            return
        self._apply(name, self._pools.setdefault(name, _Pool()), event.object)

    def observe(self, pool: SpiderIPPool) -> None:
        """A pool object the status writer read or wrote directly: applied if newer than what this book has.

        Only known pools are updated: a read that raced the pool's deletion must not bring it back.
        """
        name = pool["metadata"]["name"]
        entry = self._pools.get(name)
        if entry is not None and is_newer(pool, entry.newest):
            self._apply(name, entry, pool)

    def _apply(self, name: str, entry: _Pool, pool: SpiderIPPool) -> None:
        if _not_newer(pool, entry.newest):
            return  # a copy this book has already applied, or an older one (the watch lags behind the writer)
        entry.newest = pool
        self._apply_spec(name, entry, pool)
        try:
            fresh = self.codecs.of(name).decode(pool.get("status", {}).get("allocatedIPs"))
        except AllocationsFormatError as error:
            if entry.view is not None:  # an invalid pool keeps its spec's reason
                entry.problem = f"pool {name}: {error}"
            log.error("pool %s: %s; allocations from it are refused until it is fixed", name, error)
            return
        self._apply_records(name, entry, fresh)

    def _apply_spec(self, name: str, entry: _Pool, pool: SpiderIPPool) -> None:
        meta = pool["metadata"]
        checked = (pool.get("spec"), meta.get("labels"), meta.get("deletionTimestamp"))
        if checked == entry.checked and (entry.view is None or entry.allocator is not None):
            if entry.view is not None:
                entry.problem = None  # a records-only change: the spec was validated already
            return
        entry.checked = checked
        try:
            view = validate_ippool_object(pool, **self._families)
        except InvalidSpec as error:
            entry.view, entry.allocator, entry.ranges_key = None, None, ()
            entry.problem = f"pool {name} is invalid: {error}"
            log.error("%s; allocations from it are refused until it is fixed", entry.problem)
            self._track_overlaps(name, None, created="")
            return
        entry.view, entry.problem = view, None
        key = (view.spec.ip_version, view.spec.ips, view.spec.exclude_ips)
        if entry.allocator is None or key != entry.ranges_key:
            entry.ranges_key = key
            self._rebuild(name, entry, view)
        self._track_overlaps(name, view, created=str(meta.get("creationTimestamp") or ""))

    def _track_overlaps(self, name: str, view: PoolView | None, *, created: str) -> None:
        changed, lost = self._overlaps.update(name, view, created=created)
        for pool in changed:
            entry = self._pools.get(pool)
            if entry is None:
                continue
            self._reblock_pool(pool, entry)
            if pool in lost and self._on_overlap is not None and entry.newest is not None:
                self._on_overlap(entry.newest, self._overlaps.losses(pool))

    def _reblock_peers(self, name: str) -> None:
        """``name``'s records changed: every pool sharing addresses with it blocks what it now holds."""
        for peer in self._overlaps.peers(name):
            entry = self._pools.get(peer)
            if entry is not None:
                self._reblock_pool(peer, entry)

    def conflicted(self, pool: str, ip: str) -> None:
        """Another host answers for ``ip``: it is not handed out from ``pool`` here while quarantined."""
        self.quarantine.add(pool, ip)
        self._reblock_named(pool)

    def _reblock_named(self, name: str) -> None:
        entry = self._pools.get(name)
        if entry is not None:
            self._reblock_pool(name, entry)

    def _reblock_pool(self, name: str, entry: _Pool) -> None:
        if entry.allocator is not None:
            entry.allocator.set_reserved(self._blocked_in(name, entry.allocator.version))

    def _blocked_in(self, name: str, version: int) -> list[IPRange]:
        """What the pool's allocator must not hand out besides excludeIPs: reserved IPs, what older overlapping
        pools own, and what overlapping pools hold records of."""
        held = [address for peer in self._overlaps.peers(name) for text in self._records_in(peer)
                for family, address in (parse_address(text),) if family == version]
        return merge_ranges([*self._blocked[version], *self._overlaps.blocked(name), *held_ranges(held),
                             *self.quarantine.ranges(name, version)])

    def _records_in(self, pool: str) -> Iterator[str]:
        entry = self._pools.get(pool)
        return iter(entry.records) if entry is not None else iter(())

    def _rebuild(self, name: str, entry: _Pool, view: PoolView) -> None:
        version = view.spec.ip_version
        try:
            allocator = PoolAllocator(version=version, ranges=list(view.spec.ips))
            allocator.set_excluded(list(view.spec.exclude_ips))
            allocator.set_reserved(self._blocked_in(name, version))
        except AllocatorError as error:
            entry.allocator, entry.problem = None, f"pool {name} cannot be served: {error}"
            log.error("%s", entry.problem)
            return
        allocator.load_used([*entry.records, *entry.inflight])
        entry.allocator = allocator

    def _apply_records(self, name: str, entry: _Pool, fresh: DecodedRecords) -> None:
        """Patch the book with what changed from the last applied object's records: O(changes) in Python."""
        previous, entry.seen = entry.seen, fresh
        gone, came = changed_addresses(previous, fresh)
        for ip in gone:
            self._drop(name, entry, ip)
            if ip not in entry.inflight:
                self._unmark(entry, ip)
        for ip in came:
            self._put(name, entry, ip, fresh.records[ip])
            self._mark(entry, ip)
            entry.inflight.discard(ip)
        if gone or any(ip not in previous.records for ip in came):
            self._reblock_peers(name)

    def on_reserved_event(self, event: WatchEvent[SpiderReservedIP]) -> None:
        name = event.object["metadata"]["name"]
        self._reserved.pop(name, None)
        if event.type != "DELETED" and not event.object["metadata"].get("deletionTimestamp"):
            try:
                self._reserved[name] = parse_reservedip_spec(event.object.get("spec"))
            except InvalidSpec as error:
                log.error("SpiderReservedIP %s ignored: %s", name, error)
        self._reblock()

    def _reblock(self) -> None:
        blocked: dict[int, list[IPRange]] = {4: [], 6: []}
        for spec in self._reserved.values():
            blocked[spec.ip_version].extend(spec.ips)
        blocked = {version: merge_ranges(ranges) for version, ranges in blocked.items()}
        changed = [version for version in (4, 6) if blocked[version] != self._blocked[version]]
        self._blocked = blocked
        for name, entry in self._pools.items():
            if entry.allocator is not None and entry.allocator.version in changed:
                entry.allocator.set_reserved(self._blocked_in(name, entry.allocator.version))

    # ------------------------------------------------------------------------------------------------ internals

    def _put(self, pool: str, entry: _Pool, ip: str, record: PoolIPAllocation) -> None:
        before = entry.records.get(ip)
        if before is not None and before.pod_uid != record.pod_uid:
            self._owners_discard(before.pod_uid, (pool, ip))
        entry.records[ip] = record
        self._owners[record.pod_uid].add((pool, ip))

    def _drop(self, pool: str, entry: _Pool, ip: str) -> None:
        record = entry.records.pop(ip, None)
        if record is not None:
            self._owners_discard(record.pod_uid, (pool, ip))

    def _owners_discard(self, pod_uid: str, holding: Holding) -> None:
        held = self._owners.get(pod_uid)
        if held is not None:
            held.discard(holding)
            if not held:
                del self._owners[pod_uid]

    @staticmethod
    def _mark(entry: _Pool, ip: str) -> None:
        if entry.allocator is not None:
            entry.allocator.load_used([ip])

    @staticmethod
    def _unmark(entry: _Pool, ip: str) -> None:
        if entry.allocator is None:
            return
        try:
            version, address = parse_address(ip)
        except AllocatorError:
            return
        if version == entry.allocator.version:
            entry.allocator.release(address)
