"""The collector's memory: pods to look at, when to look again, since when a holder is a leak, failed attempts.

Upstream's PodEntry database, bounded by ``max_entries``: past it, new trace entries are dropped (the periodic scan
finds those holders again).  Nothing here is durable: after a restart or a leadership change the first full scan
rebuilds it, and a StatefulSet hold restarts from that scan (a later release, never an earlier one).
"""

from __future__ import annotations

import asyncio
import heapq
from dataclasses import dataclass, field

from spiderpool.controller.gc.scan import PodKey
from spiderpool.core.gc_planning import Holder


@dataclass(slots=True)
class Tracer:
    max_entries: int = 100_000
    dirty: set[PodKey] = field(default_factory=set)
    woken: asyncio.Event = field(default_factory=asyncio.Event)
    _due: dict[PodKey, float] = field(default_factory=dict)
    _heap: list[tuple[float, PodKey]] = field(default_factory=list)
    _leak_since: dict[Holder, float] = field(default_factory=dict)
    _failures: dict[PodKey, int] = field(default_factory=dict)

    def mark(self, pod: PodKey) -> None:
        """Look at ``pod`` as soon as a worker is free."""
        self.dirty.add(pod)
        self.woken.set()

    def take(self) -> PodKey | None:
        if not self.dirty:
            self.woken.clear()
            return None
        return self.dirty.pop()

    def schedule(self, pod: PodKey, at: float) -> None:
        """Look at ``pod`` again at ``at`` (the earliest of all requested times wins)."""
        current = self._due.get(pod)
        if current is not None and current <= at:
            return
        if current is None and len(self._due) >= self.max_entries:
            return
        self._due[pod] = at
        heapq.heappush(self._heap, (at, pod))

    def next_due(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def mark_due(self, now: float) -> int:
        """Move every pod whose time has come to the dirty set; how many moved."""
        moved = 0
        while self._heap and self._heap[0][0] <= now:
            at, pod = heapq.heappop(self._heap)
            if self._due.get(pod) == at:
                del self._due[pod]
                self.mark(pod)
                moved += 1
        return moved

    def leak_since(self, holder: Holder, now: float) -> float:
        """When ``holder`` was first seen as a (possible) leak; remembered from now on."""
        return self._leak_since.setdefault(holder, now)

    def known_since(self, holder: Holder) -> float | None:
        return self._leak_since.get(holder)

    def forget(self, holder: Holder) -> None:
        self._leak_since.pop(holder, None)

    def failed(self, pod: PodKey) -> int:
        self._failures[pod] = self._failures.get(pod, 0) + 1
        return self._failures[pod]

    def succeeded(self, pod: PodKey) -> None:
        self._failures.pop(pod, None)

    @property
    def backlog(self) -> int:
        return len(self._leak_since)
