"""What every controller component receives, and what a leader-only component must provide.

The daemon (``spiderpool.controller.daemon``) builds one ``ControllerContext``, serves the webhooks on every replica,
and starts the ``LeaderComponent``s only while this replica holds the lease; losing the lease cancels their ``run``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from spiderpool.cluster_config import ClusterSettings
from spiderpool.controller.metrics import ControllerMetrics
from spiderpool.controller.settings import GcSettings
from spiderpool.k8s.client import ApiClient
from spiderpool.k8s.core_objects import CoreObjects
from spiderpool.k8s.store import SpiderStores

# The spiderpool-conf keys, shared with the agent (one definition: spiderpool.cluster_config).
ClusterFlags = ClusterSettings


@dataclass(slots=True)
class ControllerContext:
    api: ApiClient
    stores: SpiderStores
    core: CoreObjects
    gc: GcSettings = field(default_factory=GcSettings)
    cluster: ClusterFlags = field(default_factory=ClusterFlags)
    metrics: ControllerMetrics = field(default_factory=ControllerMetrics)


class LeaderComponent(Protocol):
    """A reconciler or collector that runs on the leader only."""

    name: str

    async def run(self) -> None:
        """Work until cancelled (leadership lost or shutdown); cancellation must leave nothing half-written."""
        ...
