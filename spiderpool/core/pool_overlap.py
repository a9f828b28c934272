"""Who owns an address that two SpiderIPPools both list: a decision every agent reaches alone, from the pools only.

The controller's webhook refuses overlapping pools, but a pool can reach the API server without it (the controller
down, its webhooks unregistered, a pool created before they were).  The agent then must still never hand one
address to two pods.  The rule: an address that the usable ranges (``ips - excludeIPs``) of several pools of one IP
version contain belongs to the oldest of them (``metadata.creationTimestamp``, then the name as tie-break); every
other pool loses it and its allocator blocks it.  Nothing here depends on the order the pools were seen in or on
which agent decides, so two agents that know the same pools decide the same.

Ownership alone cannot undo the past: when the owner changes (an older pool's ranges grow over a newer one's, an
invalid older pool is fixed, two pools created in one second arrive in the other order), the losing pool may hold
records of addresses the owner now serves.  So every pool also blocks the addresses its overlapping peers hold
records of (``OverlapPlan.peers`` and :func:`held_ranges`): an address is handed out again only once no pool
records it.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from spiderpool.core.addressing import (
    IPRange,
    count_addresses,
    format_ip_ranges,
    intersect_ranges,
    merge_ranges,
    subtract_ranges,
)
from spiderpool.core.specs import IPPoolSpec


@dataclass(frozen=True, slots=True)
class OverlapCandidate:
    """A pool as the overlap rule sees it: its name, its ``metadata.creationTimestamp`` text and its spec."""

    name: str
    created: str
    spec: IPPoolSpec


@dataclass(frozen=True, slots=True)
class Loss:
    """The addresses ``ranges`` (merged) of a pool that the older pool ``owner`` lists too."""

    owner: str
    ranges: tuple[IPRange, ...]
    version: int

    @property
    def count(self) -> int:
        return count_addresses(self.ranges)

    def describe(self) -> str:
        shown = format_ip_ranges(list(self.ranges[:3]), version=self.version)
        more = f" and {len(self.ranges) - 3} more ranges" if len(self.ranges) > 3 else ""
        return f"{self.count} addresses ({', '.join(shown)}{more}) belong to the older SpiderIPPool {self.owner}"


@dataclass(frozen=True, slots=True)
class OverlapPlan:
    """Per pool that loses addresses, what it loses to which owner (pools that lose nothing are absent); per pool
    that shares an address with others, those others (``peers``, both ways, sorted)."""

    losses: Mapping[str, tuple[Loss, ...]] = field(default_factory=dict)
    peers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def blocked(self, pool: str) -> list[IPRange]:
        """The ranges ``pool``'s allocator must not hand out, merged."""
        return merge_ranges(r for loss in self.losses.get(pool, ()) for r in loss.ranges)

    def lost_count(self, pool: str) -> int:
        return sum(loss.count for loss in self.losses.get(pool, ()))


def _seniority(candidate: OverlapCandidate) -> tuple[int, datetime | str, str]:
    """Sort key: older first; a timestamp that does not parse sorts after every one that does (then by name)."""
    try:
        created = datetime.fromisoformat(candidate.created.replace("Z", "+00:00"))
    except ValueError:
        return 1, candidate.created, candidate.name
    return 0, created, candidate.name


def plan_overlap_owners(pools: Iterable[OverlapCandidate]) -> OverlapPlan:
    """The owner of every address several pools list: the oldest pool that lists it (see the module doc)."""
    ordered = sorted(pools, key=_seniority)
    names = [candidate.name for candidate in ordered]
    if len(set(names)) != len(names):
        raise ValueError(f"pool names must be unique, got {sorted(names)}")
    usable = [merge_ranges(candidate.spec.usable_ranges) for candidate in ordered]
    losses: dict[str, tuple[Loss, ...]] = {}
    peers: dict[str, set[str]] = {}
    for rank, older_ranks in _older_neighbours(ordered, usable).items():
        version, name = ordered[rank].spec.ip_version, ordered[rank].name
        remaining = usable[rank]
        lost: list[Loss] = []
        for older in sorted(older_ranks):
            if intersect_ranges(usable[rank], usable[older]):
                peers.setdefault(name, set()).add(ordered[older].name)
                peers.setdefault(ordered[older].name, set()).add(name)
            common = intersect_ranges(remaining, usable[older])
            if common:
                lost.append(Loss(owner=ordered[older].name, ranges=tuple(common), version=version))
                remaining = subtract_ranges(remaining, common)
        if lost:
            losses[name] = tuple(lost)
    return OverlapPlan(losses=losses, peers={name: tuple(sorted(names)) for name, names in peers.items()})


def held_ranges(held: Iterable[int]) -> list[IPRange]:
    """Addresses (of one family) that peers hold records of, as the merged ranges an allocator blocks."""
    return merge_ranges((address, address) for address in held)


def _older_neighbours(ordered: Sequence[OverlapCandidate], usable: Sequence[list[IPRange]]) -> dict[int, set[int]]:
    """Per pool (by seniority rank), the older pools of its IP version whose address hull meets its own.

    A sweep over the hulls in address order, so the many pools that are far apart cost no pairwise comparison.
    """
    hulls = sorted((ordered[rank].spec.ip_version, ranges[0][0], ranges[-1][1], rank)
                   for rank, ranges in enumerate(usable) if ranges)
    neighbours: dict[int, set[int]] = {}
    active: list[tuple[int, int]] = []  # (hull end, rank) of the pools still open at the sweep position
    current_version = 0
    for version, first, last, rank in hulls:
        if version != current_version:
            active, current_version = [], version
        while active and active[0][0] < first:
            heapq.heappop(active)
        for _, other in active:
            newer, older = max(rank, other), min(rank, other)
            neighbours.setdefault(newer, set()).add(older)
        heapq.heappush(active, (last, rank))
    return neighbours
