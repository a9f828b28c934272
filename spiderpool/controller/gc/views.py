"""The collector's view of API objects: the shared converters (``core.gc_facts``) and its decision policy."""

from __future__ import annotations

from spiderpool.controller.settings import GcSettings
from spiderpool.core.gc_facts import (
    STATEFULSET,
    endpoint_holdings,
    endpoint_seen,
    endpoint_uid,
    node_state,
    pod_seen,
    statefulset_seen,
    timestamp,
)
from spiderpool.core.gc_planning import GcPolicy

__all__ = [
    "STATEFULSET",
    "endpoint_holdings",
    "endpoint_seen",
    "endpoint_uid",
    "node_state",
    "pod_seen",
    "policy_of",
    "statefulset_seen",
    "timestamp",
]


def policy_of(settings: GcSettings, *, enable_statefulset: bool) -> GcPolicy:
    """The decision policy of a ``GcSettings``."""
    return GcPolicy(
        terminating_on_ready_node=settings.terminating_on_ready_node,
        terminating_on_not_ready_node=settings.terminating_on_not_ready_node,
        running_pod_on_empty_pod_ips=settings.running_pod_on_empty_pod_ips,
        additional_grace_delay=settings.additional_grace_delay,
        statefulset_hold=settings.statefulset_hold,
        enable_statefulset=enable_statefulset,
    )
