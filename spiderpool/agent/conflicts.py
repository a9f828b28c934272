"""Addresses another host was found holding (IP conflict detection), kept out of this agent's allocators for a while.

The pool records say nothing of hosts outside the cluster, so an address answered for by a foreign MAC would be the
lowest free one again at the next ADD. The pool book blocks each of these addresses in its pool's allocator until
its quarantine ends (then it is probed again by whichever pod gets it next).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from spiderpool.core.addressing import IPRange
from spiderpool.core.allocator import parse_address
from spiderpool.core.pool_overlap import held_ranges

DEFAULT_QUARANTINE: Final = 600.0  # seconds


class ConflictQuarantine:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._until: dict[str, dict[str, float]] = {}  # pool -> address -> end of its quarantine

    def add(self, pool: str, ip: str, *, seconds: float = DEFAULT_QUARANTINE) -> None:
        self._until.setdefault(pool, {})[ip] = self._clock() + seconds

    def expire(self) -> list[str]:
        """Drops the quarantines that are over; the pools that lost one (their allocators must be re-blocked)."""
        now = self._clock()
        changed = []
        for pool, addresses in list(self._until.items()):
            over = [ip for ip, until in addresses.items() if until <= now]
            for ip in over:
                del addresses[ip]
            if over:
                changed.append(pool)
            if not addresses:
                del self._until[pool]
        return changed

    def ranges(self, pool: str, version: int) -> list[IPRange]:
        """The quarantined addresses of ``pool`` (of IP ``version``) as ranges to block."""
        parsed = (parse_address(ip) for ip in self._until.get(pool, ()))
        return held_ranges(address for family, address in parsed if family == version)

    def __contains__(self, holding: object) -> bool:
        if not isinstance(holding, tuple) or len(holding) != 2:
            return False
        pool, ip = holding
        return ip in self._until.get(pool, {})
