"""What the IPAM flows share: the node, the settings, the caches, the pool book and the writers."""

from __future__ import annotations

from dataclasses import dataclass

from spiderpool.agent.allocation import RecordAllocator
from spiderpool.agent.endpoints import EndpointBook
from spiderpool.agent.owners import OwnerResolver
from spiderpool.agent.pods import PodLookup
from spiderpool.agent.pool_book import PoolBook
from spiderpool.cluster_config import ClusterSettings
from spiderpool.core.selection_types import NamespaceView, NodeView
from spiderpool.k8s.bodies import Namespace, Node, SpiderIPPool
from spiderpool.k8s.store import CustomObjectStore
from spiderpool.k8s.watch_cache import WatchCache
from spiderpool.k8s.workloads import WorkloadReader


@dataclass(frozen=True, slots=True)
class IpamContext:
    node_name: str
    settings: ClusterSettings
    book: PoolBook
    records: RecordAllocator
    endpoints: EndpointBook
    pods: PodLookup
    owners: OwnerResolver
    reader: WorkloadReader
    namespaces: WatchCache[Namespace]
    nodes: WatchCache[Node]
    pool_store: CustomObjectStore[SpiderIPPool]
    statefulset_hold: float = 0.0  # see AgentConfig.statefulset_hold

    def namespace_view(self, name: str) -> NamespaceView:
        namespace = self.namespaces.get(name)
        meta = namespace["metadata"] if namespace is not None else {}
        return NamespaceView(name=name, labels=meta.get("labels") or {}, annotations=meta.get("annotations") or {})

    def node_view(self) -> NodeView:
        node = self.nodes.get(self.node_name)
        labels = (node["metadata"].get("labels") or {}) if node is not None else {}
        return NodeView(name=self.node_name, labels=labels)
