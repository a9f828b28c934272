"""Writing ``SpiderSubnet.status``: ``controlledIPPools`` and the two counts, always by compare-and-swap.

A pool's addresses are claimed here *before* the pool is created or resized, so the subnet's status is the one
record of which address belongs to which pool: two pools never take the same address, and a crash between the
claim and the pool write leaves a claim that the next pass finds and completes (or drops, if nobody wants it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, cast

from spiderpool.controller.subnets.snapshot import Body, SubnetEntry, subnet_entry
from spiderpool.core.subnet_planning import ControlledPool, controlled_ip_count, encode_controlled_pools
from spiderpool.k8s.bodies import SpiderSubnet
from spiderpool.k8s.store import Conflicted, CustomObjectStore, Swapped

log = logging.getLogger(__name__)

# Given the subnet as stored now, the controlledIPPools to write (None: nothing to change). May raise to abandon.
ControlledChange = Callable[[SubnetEntry], dict[str, ControlledPool] | None]

_MAX_ATTEMPTS = 8


class SubnetStatusConflict(RuntimeError):
    """The subnet's status kept changing under us; the next pass retries."""


def status_body(entry: SubnetEntry, controlled: dict[str, ControlledPool]) -> dict[str, Any]:
    status: dict[str, Any] = {
        "totalIPCount": entry.spec.total_ip_count,
        "allocatedIPCount": controlled_ip_count(controlled),
    }
    text = encode_controlled_pools(controlled, version=entry.spec.ip_version)
    if text is not None:
        status["controlledIPPools"] = text
    return status


def status_is_current(entry: SubnetEntry, controlled: dict[str, ControlledPool]) -> bool:
    return (entry.body.get("status") or {}) == status_body(entry, controlled)


async def change_controlled(
    store: CustomObjectStore[SpiderSubnet], entry: SubnetEntry, change: ControlledChange
) -> SubnetEntry:
    """Apply ``change`` to the subnet's status by compare-and-swap, re-reading and re-deriving on every conflict.

    ``entry`` is the caller's latest view (tried first, saving a read when it is current); the stored subnet comes
    back. Exceptions from ``change`` propagate and nothing is written.
    """
    current = entry
    for _ in range(_MAX_ATTEMPTS):
        controlled = change(current)
        if controlled is None:
            controlled = current.controlled
        if status_is_current(current, controlled):
            return current
        body: Body = {**current.body, "status": status_body(current, controlled)}
        outcome = await store.swap_status(cast(SpiderSubnet, body))
        if isinstance(outcome, Swapped):
            return subnet_entry(dict(outcome.object))
        assert isinstance(outcome, Conflicted)
        log.debug("SpiderSubnet %s: status changed since resourceVersion %s; re-reading", current.name,
                  outcome.stale_resource_version)
        current = subnet_entry(dict(await store.get(current.name)))
    raise SubnetStatusConflict(f"SpiderSubnet {entry.name}: status.controlledIPPools still conflicting after "
                               f"{_MAX_ATTEMPTS} attempts")
