"""Typed bodies: each kind's object exactly as the API server returns it (camelCase keys, upstream field names).

These are plain ``TypedDict``s over the decoded JSON, so reading a watched object costs nothing beyond the JSON
decode.  Almost every field is optional because the API omits empty fields (``status.allocatedIPs`` is absent,
not ``""``, when a pool holds no records), and create bodies carry neither server-set metadata nor ``apiVersion``/
``kind`` (the store fills those in; list items of core kinds lack them too).
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

# ---------------------------------------------------------------------------------------------------- shared parts


class OwnerReference(TypedDict, total=False):
    apiVersion: str
    kind: str
    name: str
    uid: str
    controller: bool
    blockOwnerDeletion: bool


class ObjectMeta(TypedDict, total=False):
    name: str
    generateName: str
    namespace: str
    uid: str
    resourceVersion: str
    generation: int
    creationTimestamp: str
    deletionTimestamp: str
    deletionGracePeriodSeconds: int
    labels: dict[str, str]
    annotations: dict[str, str]
    finalizers: list[str]
    ownerReferences: list[OwnerReference]


class ListMeta(TypedDict, total=False):
    resourceVersion: str
    # ``continue`` is a Python keyword; the key is read with ``meta.get("continue")``.


class LabelSelectorRequirement(TypedDict, total=False):
    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str]


class LabelSelector(TypedDict, total=False):
    matchLabels: dict[str, str]
    matchExpressions: list[LabelSelectorRequirement]


class Route(TypedDict):
    dst: str
    gw: str


# ---------------------------------------------------------------------------------------------------- SpiderIPPool


class SpiderIPPoolSpec(TypedDict, total=False):
    ipVersion: Literal[4, 6]
    subnet: str
    ips: list[str]
    excludeIPs: list[str]
    gateway: str
    routes: list[Route]
    podAffinity: LabelSelector
    namespaceAffinity: LabelSelector
    namespaceName: list[str]
    nodeAffinity: LabelSelector
    nodeName: list[str]
    multusName: list[str]
    default: bool
    disable: bool


class SpiderIPPoolStatus(TypedDict, total=False):
    # A JSON *string* (upstream's wire format): {"<ip>": {"pod": "<ns>/<name>", "podUid": "<uid>"}}, absent when empty.
    allocatedIPs: str
    allocatedIPCount: int
    totalIPCount: int


class SpiderIPPool(TypedDict):
    apiVersion: NotRequired[str]
    kind: NotRequired[Literal["SpiderIPPool"]]
    metadata: ObjectMeta
    spec: NotRequired[SpiderIPPoolSpec]
    status: NotRequired[SpiderIPPoolStatus]


# ---------------------------------------------------------------------------------------------------- SpiderSubnet


class SpiderSubnetSpec(TypedDict, total=False):
    ipVersion: Literal[4, 6]
    subnet: str
    ips: list[str]
    excludeIPs: list[str]
    gateway: str
    routes: list[Route]


class SpiderSubnetStatus(TypedDict, total=False):
    # A JSON string: {"<pool>": {"ips": ["a-b", ...], "application": "apps_v1_Deployment_ns_name"}}.
    controlledIPPools: str
    totalIPCount: int
    allocatedIPCount: int


class SpiderSubnet(TypedDict):
    apiVersion: NotRequired[str]
    kind: NotRequired[Literal["SpiderSubnet"]]
    metadata: ObjectMeta
    spec: NotRequired[SpiderSubnetSpec]
    status: NotRequired[SpiderSubnetStatus]


# ---------------------------------------------------------------------------------------------------- SpiderReservedIP


class SpiderReservedIPSpec(TypedDict, total=False):
    ipVersion: Literal[4, 6]
    ips: list[str]


class SpiderReservedIP(TypedDict):
    apiVersion: NotRequired[str]
    kind: NotRequired[Literal["SpiderReservedIP"]]
    metadata: ObjectMeta
    spec: NotRequired[SpiderReservedIPSpec]


# ---------------------------------------------------------------------------------------------------- SpiderEndpoint


class IPAllocationDetail(TypedDict, total=False):
    interface: str
    ipv4: str
    ipv6: str
    ipv4Pool: str
    ipv6Pool: str
    vlan: int
    ipv4Gateway: str
    ipv6Gateway: str
    cleanGateway: bool
    routes: list[Route]
    mac: str


class PodIPAllocation(TypedDict, total=False):
    uid: str
    node: str
    ips: list[IPAllocationDetail]


class SpiderEndpointStatus(TypedDict, total=False):
    current: PodIPAllocation
    ownerControllerType: str
    ownerControllerName: str


class SpiderEndpoint(TypedDict):
    apiVersion: NotRequired[str]
    kind: NotRequired[Literal["SpiderEndpoint"]]
    metadata: ObjectMeta
    # No spec, and no status subresource: the status is written with the object itself.
    status: NotRequired[SpiderEndpointStatus]


# ------------------------------------------------------------------------------------------------ SpiderMultusConfig


class BondConfig(TypedDict, total=False):
    name: str
    mode: int
    options: str


class SpiderPoolPools(TypedDict, total=False):
    matchMasterSubnet: bool
    ipv4: list[str]
    ipv6: list[str]


class MacvlanConfig(TypedDict, total=False):
    master: list[str]
    mtu: int
    vlanID: int
    bond: BondConfig
    rdmaResourceName: str
    ippools: SpiderPoolPools


class VlanConfig(MacvlanConfig, total=False):
    vlanMode: Literal["manual", "auto"]


class SriovConfig(TypedDict, total=False):
    resourceName: str
    vlanID: int
    mtu: int
    minTxRateMbps: int
    maxTxRateMbps: int
    rdmaIsolation: bool
    ippools: SpiderPoolPools


class IbSriovConfig(TypedDict, total=False):
    resourceName: str
    pkey: str
    linkState: Literal["auto", "enable", "disable"]
    rdmaIsolation: bool
    enableIbKubernetes: bool
    ippools: SpiderPoolPools


class IpoibConfig(TypedDict, total=False):
    master: str
    ippools: SpiderPoolPools


class Trunk(TypedDict, total=False):
    minID: int
    maxID: int
    id: int


class OvsConfig(TypedDict, total=False):
    bridge: str
    vlan: int
    trunk: list[Trunk]
    deviceID: str
    ippools: SpiderPoolPools


class SpiderCoordinatorSpec(TypedDict, total=False):
    mode: Literal["auto", "underlay", "overlay", "disabled"]
    podCIDRType: Literal["auto", "cluster", "calico", "cilium", "none"]
    hijackCIDR: list[str]
    policyRoutes: list[Route]
    podMACPrefix: str
    tunePodRoutes: bool
    podDefaultRouteNIC: str
    hostRuleTable: int
    podRPFilter: int
    txQueueLen: int
    vethLinkAddress: str
    vethMTU: int


class SpiderMultusConfigSpec(TypedDict, total=False):
    cniType: Literal["macvlan", "ipvlan", "vlan", "sriov", "ovs", "ib-sriov", "ipoib", "custom"]
    macvlan: MacvlanConfig
    ipvlan: MacvlanConfig
    vlan: VlanConfig
    sriov: SriovConfig
    ibsriov: IbSriovConfig
    ipoib: IpoibConfig
    ovs: OvsConfig
    enableCoordinator: bool
    disableIPAM: bool
    coordinator: SpiderCoordinatorSpec
    chainCNIJsonData: list[str]
    customCNI: str


class SpiderMultusConfig(TypedDict):
    apiVersion: NotRequired[str]
    kind: NotRequired[Literal["SpiderMultusConfig"]]
    metadata: ObjectMeta
    spec: NotRequired[SpiderMultusConfigSpec]


# ---------------------------------------------------------------------------------------------------- SpiderCoordinator


class SpiderCoordinatorStatus(TypedDict, total=False):
    phase: Literal["Synced", "NotReady"]
    reason: str
    overlayPodCIDR: list[str]
    serviceCIDR: list[str]


class SpiderCoordinator(TypedDict):
    apiVersion: NotRequired[str]
    kind: NotRequired[Literal["SpiderCoordinator"]]
    metadata: ObjectMeta
    spec: NotRequired[SpiderCoordinatorSpec]
    status: NotRequired[SpiderCoordinatorStatus]


# ---------------------------------------------------------------------------------------------------- core kinds
# Only the fields the agent and the collector read; the rest of the object is still in the dict.


class PodSpec(TypedDict, total=False):
    nodeName: str
    hostNetwork: bool
    terminationGracePeriodSeconds: int


class PodIP(TypedDict):
    ip: str


class PodStatus(TypedDict, total=False):
    phase: Literal["Pending", "Running", "Succeeded", "Failed", "Unknown"]
    podIPs: list[PodIP]


class Pod(TypedDict):
    apiVersion: NotRequired[str]
    kind: NotRequired[Literal["Pod"]]
    metadata: ObjectMeta
    spec: NotRequired[PodSpec]
    status: NotRequired[PodStatus]


class NodeAddress(TypedDict):
    type: str
    address: str


class NodeStatus(TypedDict, total=False):
    addresses: list[NodeAddress]


class Node(TypedDict):
    apiVersion: NotRequired[str]
    kind: NotRequired[Literal["Node"]]
    metadata: ObjectMeta
    status: NotRequired[NodeStatus]


class Namespace(TypedDict):
    apiVersion: NotRequired[str]
    kind: NotRequired[Literal["Namespace"]]
    metadata: ObjectMeta
