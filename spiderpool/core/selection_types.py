"""The data pool selection reads and returns: small frozen dataclasses, cheap to build from watch caches.

Inputs: ``PodView`` (with its ``TopController``), ``NamespaceView``, ``NodeView``, ``CniPoolDefaults``, the
cluster's ``SelectionConfig``, and the pools as ``PoolView`` (from ``specs``). Outputs come in two stages: a
``PoolNamePlan`` (which pools each NIC asks for, wildcards expanded) or a ``SubnetPlan`` (use the auto-created pool
of a SpiderSubnet), then a ``PoolPlan`` with, per NIC and IP family, the admissible pools in the order to try them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from spiderpool.core.annotations import IPPOOL, IPPOOLS, SUBNET, SUBNETS, PoolIPNumber, PoolNames
from spiderpool.core.specs import PoolView

K8S_API_VERSIONS: Final = ("v1", "apps/v1", "batch/v1")
K8S_KINDS: Final = ("Pod", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob")


def split_api_version(api_version: str) -> tuple[str, str]:
    """``apps/v1`` -> (``apps``, ``v1``); a core ``v1`` -> (``""``, ``v1``)."""
    group, slash, version = api_version.partition("/")
    return (group, version) if slash else ("", group)


@dataclass(frozen=True, slots=True)
class TopController:
    """The pod's top owner (Pod -> ReplicaSet -> Deployment, Job -> CronJob, ...); the pod itself when orphan."""

    kind: str
    name: str
    namespace: str
    uid: str
    api_version: str

    @property
    def is_orphan_pod(self) -> bool:
        return self.api_version == "v1" and self.kind == "Pod"

    @property
    def is_third_party(self) -> bool:
        return self.api_version not in K8S_API_VERSIONS or self.kind not in K8S_KINDS

    @property
    def group_and_version(self) -> tuple[str, str]:
        return split_api_version(self.api_version)


@dataclass(frozen=True, slots=True)
class PodView:
    namespace: str
    name: str
    uid: str
    node_name: str
    controller: TopController
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NamespaceView:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NodeView:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CniPoolDefaults:
    """The CNI network configuration's ``default_ipv4_ippool`` / ``default_ipv6_ippool`` / ``clean_gateway``."""

    ipv4: tuple[str, ...] = ()
    ipv6: tuple[str, ...] = ()
    clean_gateway: bool = False


@dataclass(frozen=True, slots=True)
class SelectionConfig:
    """Cluster settings that steer selection (upstream's configmap and agent environment)."""

    enable_ipv4: bool = True
    enable_ipv6: bool = True
    enable_spider_subnet: bool = True
    enable_auto_pool: bool = True
    # Spiderpool's namespace: the default namespace of a pool's multusName and of the default Multus network.
    agent_namespace: str = "kube-system"
    # Multus' clusterNetwork, for a first NIC without a v1.multus-cni.io/default-network annotation.
    multus_cluster_network: str | None = None

    def family_enabled(self, version: int) -> bool:
        return self.enable_ipv4 if version == 4 else self.enable_ipv6


@dataclass(frozen=True, slots=True)
class PoolRequest:
    """One CNI ADD: the pod, the NIC being added, and what selection reads around them."""

    pod: PodView
    nic: str
    namespace: NamespaceView
    node: NodeView
    cni: CniPoolDefaults = field(default_factory=CniPoolDefaults)
    # The Multus network (``namespace/name``) of ``nic`` when the caller knows it; else read from the annotations.
    multus_network: str | None = None


class PoolSource(StrEnum):
    """Where the pools came from; the first source that applies wins and sources never merge."""

    SUBNETS = SUBNETS
    SUBNET = SUBNET
    POD_IPPOOLS = IPPOOLS
    POD_IPPOOL = IPPOOL
    NAMESPACE = "namespace annotations ipam.spidernet.io/default-ipv4-ippool, ipam.spidernet.io/default-ipv6-ippool"
    CNI_CONFIG = "CNI configuration default_ipv4_ippool, default_ipv6_ippool"
    CLUSTER_DEFAULT = "IPPools with spec.default true"


@dataclass(frozen=True, slots=True)
class NicPoolNames:
    nic: str
    clean_gateway: bool
    pools: PoolNames


@dataclass(frozen=True, slots=True)
class PoolNamePlan:
    """Per NIC, the pool names to consider (wildcards expanded, disabled IP families dropped)."""

    source: PoolSource
    nics: tuple[NicPoolNames, ...]
    # ``ippools`` without interface names: NICs are "0", "1", ... in annotation order (upstream's no-name mode).
    unnamed_nics: bool = False


@dataclass(frozen=True, slots=True)
class AutoPoolRequest:
    """Decision: NIC ``nic`` takes its IPv``version`` address from the auto-created pool of SpiderSubnet ``subnet``."""

    nic: str
    version: int
    subnet: str


@dataclass(frozen=True, slots=True)
class SubnetPlan:
    """The pod asks for SpiderSubnet auto-pools; the caller finds (or, for third-party controllers, makes) them."""

    source: PoolSource
    nic: str
    clean_gateway: bool
    auto_pools: tuple[AutoPoolRequest, ...]
    # None: the annotation is absent, so the pool gets replicas plus the cluster's default redundant count.
    ip_number: PoolIPNumber | None
    reclaim: bool

    def with_pools(self, pool_names: Mapping[int, str]) -> PoolNamePlan:
        """The plan once the auto-pools are known (IP version -> pool name), ready for candidate selection."""
        names = PoolNames(
            ipv4=(pool_names[4],) if 4 in pool_names else (),
            ipv6=(pool_names[6],) if 6 in pool_names else (),
        )
        return PoolNamePlan(source=self.source, nics=(NicPoolNames(self.nic, self.clean_gateway, names),))


@dataclass(frozen=True, slots=True)
class FamilyCandidates:
    """The admissible pools of one IP family of one NIC, in the order to try them (next one when exhausted)."""

    version: int
    pools: tuple[PoolView, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(pool.name for pool in self.pools)


@dataclass(frozen=True, slots=True)
class NicCandidates:
    nic: str
    clean_gateway: bool
    families: tuple[FamilyCandidates, ...]

    def family(self, version: int) -> FamilyCandidates | None:
        return next((family for family in self.families if family.version == version), None)


@dataclass(frozen=True, slots=True)
class PoolPlan:
    """The candidate plan of every NIC the source describes (all of them for ``ippools``, else the one being added)."""

    source: PoolSource
    nics: tuple[NicCandidates, ...]
    unnamed_nics: bool = False

    def nic(self, name: str) -> NicCandidates | None:
        return next((nic for nic in self.nics if nic.nic == name), None)
