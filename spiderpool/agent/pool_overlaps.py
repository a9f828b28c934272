"""The pool book's view of overlapping pools: the owner of each contested address, kept current as pools change.

The decision is the pure one of :mod:`spiderpool.core.pool_overlap` (the oldest pool owns it), made over every pool
whose spec passed validation; this module keeps the candidates, re-plans when one of them changes, and says which
pools' losses or peers changed so the book can re-block their allocators (and report the loss).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from spiderpool.core.addressing import IPRange
from spiderpool.core.pool_overlap import Loss, OverlapCandidate, OverlapPlan, plan_overlap_owners
from spiderpool.core.specs import PoolView

log = logging.getLogger(__name__)


class OverlapTracker:
    def __init__(self) -> None:
        self._candidates: dict[str, OverlapCandidate] = {}
        self._plan = OverlapPlan()

    def update(self, name: str, view: PoolView | None, *, created: str) -> tuple[list[str], set[str]]:
        """Pool ``name`` is now ``view`` (None: gone or invalid); the pools whose losses or peers changed (to
        re-block, sorted), and those whose losses changed (to report)."""
        candidate = None if view is None else OverlapCandidate(name=name, created=created, spec=view.spec)
        if self._candidates.get(name) == candidate:
            return [], set()
        if candidate is None:
            del self._candidates[name]
        else:
            self._candidates[name] = candidate
        before, self._plan = self._plan, plan_overlap_owners(self._candidates.values())
        lost = {pool for pool in {*before.losses, *self._plan.losses}
                if before.losses.get(pool) != self._plan.losses.get(pool)}
        changed = sorted(lost | {pool for pool in {*before.peers, *self._plan.peers}
                                 if before.peers.get(pool) != self._plan.peers.get(pool)})
        for pool in sorted(lost):
            losses = self._plan.losses.get(pool, ())
            if losses:
                log.warning("SpiderIPPool %s overlaps older pools: %s; those addresses are not handed out from it",
                            pool, "; ".join(loss.describe() for loss in losses))
            else:
                log.info("SpiderIPPool %s no longer loses addresses to an overlapping pool", pool)
        return changed, lost

    def blocked(self, name: str) -> list[IPRange]:
        return self._plan.blocked(name)

    def peers(self, name: str) -> tuple[str, ...]:
        """The pools that share an address with ``name`` (whose records it must not hand out)."""
        return self._plan.peers.get(name, ())

    def losses(self, name: str) -> tuple[Loss, ...]:
        return self._plan.losses.get(name, ())

    def counts(self) -> Iterator[tuple[str, str, int]]:
        """(pool, owner, addresses the pool loses to the owner) of every loss."""
        for pool, losses in sorted(self._plan.losses.items()):
            for loss in losses:
                yield pool, loss.owner, loss.count
