"""Pool candidates for a pod's NICs: which source applies, which pools it names, which of them may serve.

``plan_pool_candidates`` is the one call the agent makes per CNI ADD. Its two stages are public too:
``resolve_pool_names`` applies upstream's source precedence (first match wins, no merging)::

    subnet annotations (``subnets`` > ``subnet``) > ``ippools`` > ``ippool`` > namespace default pools
    > CNI configuration defaults > pools with ``spec.default: true``

expands wildcard names and drops disabled IP families (silently, as upstream, so single-stack pods work in a
dual-stack cluster); ``select_candidates`` then checks the names, filters the pools (``pool_filters``) and orders the
survivors by priority with a stable sort. A ``SubnetPlan`` (auto-pool from a SpiderSubnet) is returned as data: the
caller finds the auto-pool and continues with ``SubnetPlan.with_pools`` and ``select_candidates``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache

from spiderpool.core.annotations import (
    IPPOOL,
    IPPOOLS,
    POOL_IP_NUMBER,
    POOL_RECLAIM,
    SUBNETS,
    PoolNames,
    has_subnet_annotation,
    parse_ippool_annotation,
    parse_ippools_annotation,
    parse_namespace_default_pools,
    parse_pool_ip_number,
    parse_pool_reclaim,
    parse_subnet_annotations,
)
from spiderpool.core.errors import NoAvailablePoolError, PoolSelectionError
from spiderpool.core.multus import multus_network_for_nic
from spiderpool.core.pool_filters import FilterContext, rejection_reason, sort_by_priority
from spiderpool.core.selection_types import (
    AutoPoolRequest,
    CniPoolDefaults,
    FamilyCandidates,
    NamespaceView,
    NicCandidates,
    NicPoolNames,
    NodeView,
    PodView,
    PoolNamePlan,
    PoolPlan,
    PoolRequest,
    PoolSource,
    SelectionConfig,
    SubnetPlan,
    TopController,
)
from spiderpool.core.specs import PoolView
from spiderpool.core.wildcards import BadPatternError, expand_pool_names, has_wildcard

__all__ = [
    "AutoPoolRequest",
    "CniPoolDefaults",
    "FamilyCandidates",
    "NamespaceView",
    "NicCandidates",
    "NicPoolNames",
    "NodeView",
    "PodView",
    "PoolNamePlan",
    "PoolPlan",
    "PoolRequest",
    "PoolSource",
    "PoolView",
    "SelectionConfig",
    "SubnetPlan",
    "TopController",
    "plan_pool_candidates",
    "resolve_pool_names",
    "select_candidates",
]

VERSIONS = (4, 6)


def plan_pool_candidates(
    request: PoolRequest, *, pools: Mapping[str, PoolView], config: SelectionConfig,
    refused: Mapping[str, str] | None = None,
) -> PoolPlan | SubnetPlan:
    """The candidate plan of the pod's NICs, or the SpiderSubnet auto-pools the pod asks for.

    ``refused``: pools that exist but may not be used (invalid), with the reason an error naming them gives.
    """
    names = resolve_pool_names(request, pools=pools, config=config)
    if isinstance(names, SubnetPlan):
        return names
    return select_candidates(names, request=request, pools=pools, config=config, refused=refused)


def resolve_pool_names(
    request: PoolRequest, *, pools: Mapping[str, PoolView], config: SelectionConfig
) -> PoolNamePlan | SubnetPlan:
    """Stage one: the source that applies and the pool names it gives each NIC."""
    annotations = request.pod.annotations
    if config.enable_spider_subnet:
        if config.enable_auto_pool:
            subnet_plan = _subnet_plan(request, config=config)
            if subnet_plan is not None:
                return subnet_plan
        elif has_subnet_annotation(annotations):
            raise PoolSelectionError(
                "the ipam.spidernet.io/subnet(s) annotation needs the SpiderSubnet auto-pool feature, which is off")
    expand = _expander(pools)
    if IPPOOLS in annotations:
        return _ippools_plan(request, expand=expand, config=config)
    if IPPOOL in annotations:
        return _single_nic_plan(PoolSource.POD_IPPOOL, parse_ippool_annotation(annotations[IPPOOL]),
                                request=request, expand=expand, config=config)
    namespace_pools = parse_namespace_default_pools(request.namespace.annotations)
    if not namespace_pools.is_empty:
        return _single_nic_plan(PoolSource.NAMESPACE, namespace_pools, request=request, expand=expand, config=config)
    cni_pools = PoolNames(ipv4=request.cni.ipv4, ipv6=request.cni.ipv6)
    if not cni_pools.is_empty:
        return _single_nic_plan(PoolSource.CNI_CONFIG, cni_pools, request=request, expand=expand, config=config)
    default_pools = PoolNames(
        ipv4=tuple(sorted(name for name, pool in pools.items() if pool.spec.default and pool.spec.ip_version == 4)),
        ipv6=tuple(sorted(name for name, pool in pools.items() if pool.spec.default and pool.spec.ip_version == 6)),
    )
    if default_pools.is_empty:
        raise PoolSelectionError(
            f"no IPPool selection rule applies to pod {request.pod.namespace}/{request.pod.name}: no pool annotation, "
            "no namespace default pools, no CNI configuration defaults and no IPPool with spec.default true")
    return _single_nic_plan(PoolSource.CLUSTER_DEFAULT, default_pools, request=request, expand=expand, config=config)


_Expander = Callable[[tuple[str, ...], int], tuple[str, ...]]


def _expander(pools: Mapping[str, PoolView]) -> _Expander:
    @cache
    def names_of(version: int) -> tuple[str, ...]:
        return tuple(name for name, pool in pools.items() if pool.spec.ip_version == version)

    def expand(names: tuple[str, ...], version: int) -> tuple[str, ...]:
        if not any(has_wildcard(name) for name in names):
            return names
        try:
            return tuple(expand_pool_names(names, names_of(version)))
        except BadPatternError as error:
            raise PoolSelectionError(f"bad IPv{version} IPPool name pattern: {error}") from None

    return expand


def _nic_names(
    nic: str, clean_gateway: bool, requested: PoolNames, *, expand: _Expander, config: SelectionConfig
) -> NicPoolNames:
    families: dict[int, tuple[str, ...]] = {}
    for version in VERSIONS:
        names = requested.for_version(version)
        if not names or not config.family_enabled(version):
            continue
        expanded = expand(names, version)
        if not expanded:
            rejections = [(name, f"no IPv{version} IPPool matches this pattern") for name in names]
            raise NoAvailablePoolError(nic=nic, version=version, rejections=rejections)
        families[version] = expanded
    if not families:
        requested_versions = [f"IPv{v}" for v in VERSIONS if requested.for_version(v)]
        detail = f"only of disabled IP families ({', '.join(requested_versions)})" if requested_versions else "none"
        raise PoolSelectionError(f"interface {nic}: the pool selection names {detail} IPPools")
    return NicPoolNames(nic, clean_gateway, PoolNames(ipv4=families.get(4, ()), ipv6=families.get(6, ())))


def _single_nic_plan(
    source: PoolSource, requested: PoolNames, *, request: PoolRequest, expand: _Expander, config: SelectionConfig
) -> PoolNamePlan:
    nic = _nic_names(request.nic, request.cni.clean_gateway, requested, expand=expand, config=config)
    return PoolNamePlan(source=source, nics=(nic,))


def _ippools_plan(request: PoolRequest, *, expand: _Expander, config: SelectionConfig) -> PoolNamePlan:
    items, unnamed = parse_ippools_annotation(request.pod.annotations[IPPOOLS], current_nic=request.nic)
    nics = tuple(_nic_names(item.nic, item.clean_gateway, item.pools, expand=expand, config=config) for item in items)
    return PoolNamePlan(source=PoolSource.POD_IPPOOLS, nics=nics, unnamed_nics=unnamed)


def _subnet_plan(request: PoolRequest, *, config: SelectionConfig) -> SubnetPlan | None:
    annotations = request.pod.annotations
    subnet_requests = parse_subnet_annotations(annotations)
    if subnet_requests is None:
        return None
    source = PoolSource.SUBNETS if SUBNETS in annotations else PoolSource.SUBNET
    controller = request.pod.controller
    if controller.is_orphan_pod:
        raise PoolSelectionError(f"the SpiderSubnet feature ({source.value}) does not support a pod without a "
                                 f"controller: {request.pod.namespace}/{request.pod.name}")
    item = next((item for item in subnet_requests if item.nic == request.nic), None)
    if item is None:
        raise PoolSelectionError(f"annotation {source.value} has no item for interface {request.nic}")
    auto_pools = tuple(
        AutoPoolRequest(nic=item.nic, version=version, subnet=subnet)
        for version, subnet in ((4, item.ipv4), (6, item.ipv6))
        if subnet and config.family_enabled(version)
    )
    if not auto_pools:
        raise PoolSelectionError(f"interface {request.nic}: {source.value} names only subnets of disabled IP families")
    ip_number = parse_pool_ip_number(annotations[POOL_IP_NUMBER]) if POOL_IP_NUMBER in annotations else None
    if ip_number is None and controller.is_third_party:
        raise PoolSelectionError(
            f"{controller.kind} {controller.namespace}/{controller.name} is not a built-in controller, so its pods "
            f"must set the {POOL_IP_NUMBER} annotation (the replica count is unknown)")
    reclaim = parse_pool_reclaim(annotations[POOL_RECLAIM]) if POOL_RECLAIM in annotations else True
    return SubnetPlan(source=source, nic=item.nic, clean_gateway=request.cni.clean_gateway, auto_pools=auto_pools,
                      ip_number=ip_number, reclaim=reclaim)


def select_candidates(
    plan: PoolNamePlan, *, request: PoolRequest, pools: Mapping[str, PoolView], config: SelectionConfig,
    refused: Mapping[str, str] | None = None,
) -> PoolPlan:
    """Stage two: per NIC and family, the pools that may serve, ordered; NoAvailablePoolError when none may."""
    nics = tuple(_nic_candidates(nic, request=request, pools=pools, config=config, refused=refused or {})
                 for nic in plan.nics)
    return PoolPlan(source=plan.source, nics=nics, unnamed_nics=plan.unnamed_nics)


def _multus_lookup(nic: str, *, request: PoolRequest, config: SelectionConfig) -> Callable[[], str]:
    @cache
    def network() -> str:
        if request.multus_network is not None and nic == request.nic:
            return request.multus_network
        return multus_network_for_nic(nic=nic, pod_namespace=request.pod.namespace,
                                      annotations=request.pod.annotations,
                                      cluster_network=config.multus_cluster_network,
                                      agent_namespace=config.agent_namespace)

    return network


def _nic_candidates(
    names: NicPoolNames, *, request: PoolRequest, pools: Mapping[str, PoolView], config: SelectionConfig,
    refused: Mapping[str, str],
) -> NicCandidates:
    context = FilterContext(pod=request.pod, namespace=request.namespace, node=request.node, config=config,
                            multus_network=_multus_lookup(names.nic, request=request, config=config))
    families = []
    for version in VERSIONS:
        wanted = names.pools.for_version(version)
        if wanted:
            families.append(_family_candidates(names.nic, version, wanted, pools=pools, context=context,
                                               refused=refused))
    return NicCandidates(nic=names.nic, clean_gateway=names.clean_gateway, families=tuple(families))


def _family_candidates(
    nic: str, version: int, wanted: tuple[str, ...], *, pools: Mapping[str, PoolView], context: FilterContext,
    refused: Mapping[str, str],
) -> FamilyCandidates:
    duplicates = sorted({name for name in wanted if wanted.count(name) > 1})
    if duplicates:
        raise PoolSelectionError(f"IPPool {duplicates[0]} is named twice for the IPv{version} of interface {nic}")
    missing = [name for name in wanted if name not in pools]
    invalid = [name for name in missing if name in refused]
    if invalid:
        raise PoolSelectionError(f"IPv{version} IPPool {invalid[0]} for interface {nic} is refused: "
                                 f"{refused[invalid[0]]}")
    if missing:
        raise PoolSelectionError(f"IPv{version} IPPool {missing[0]} for interface {nic} does not exist")
    accepted: list[PoolView] = []
    rejections: list[tuple[str, str]] = []
    for name in wanted:
        reason = rejection_reason(pools[name], version=version, context=context)
        if reason is None:
            accepted.append(pools[name])
        else:
            rejections.append((name, reason))
    if not accepted:
        raise NoAvailablePoolError(nic=nic, version=version, rejections=rejections)
    return FamilyCandidates(version=version, pools=tuple(sort_by_priority(accepted)))
