"""Why a pool may not serve a pod NIC, and the priority order of the pools that may.

The rules and their order are upstream's ``selectByPod``: terminating, disabled, IP version, node (``nodeName``
beats ``nodeAffinity``), namespace (``namespaceName`` beats ``namespaceAffinity``), pod affinity (auto-created pools
match the pod's top controller), Multus network. Exhaustion, excluded and reserved IPs are not filtered here; they
surface when the allocator walks the ordered candidates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from spiderpool.core.multus import qualify_multus_name
from spiderpool.core.selection_types import NamespaceView, NodeView, PodView, SelectionConfig, TopController
from spiderpool.core.selectors import LabelSelector
from spiderpool.core.specs import IPPoolSpec, PoolView
from spiderpool.core.validation import AUTO_POOL_AFFINITY_KEYS, is_auto_pool


@dataclass(frozen=True, slots=True)
class FilterContext:
    """What the filters of one NIC read; ``multus_network`` answers the NIC's network or raises ValueError."""

    pod: PodView
    namespace: NamespaceView
    node: NodeView
    config: SelectionConfig
    multus_network: Callable[[], str]


def _selector_reason(selector: LabelSelector, labels: Mapping[str, str], *, what: str, subject: str) -> str | None:
    try:
        matched = selector.matches(labels)
    except ValueError as error:
        return f"invalid {what}: {error}"
    return None if matched else f"{what} does not match {subject}"


def _node_reason(spec: IPPoolSpec, context: FilterContext) -> str | None:
    node = context.pod.node_name
    if spec.node_name:
        return None if node in spec.node_name else f"nodeName {list(spec.node_name)} does not include node {node}"
    if spec.node_affinity is not None:
        return _selector_reason(spec.node_affinity, context.node.labels, what="nodeAffinity", subject=f"node {node}")
    return None


def _namespace_reason(spec: IPPoolSpec, context: FilterContext) -> str | None:
    namespace = context.pod.namespace
    if spec.namespace_name:
        if namespace in spec.namespace_name:
            return None
        return f"namespaceName {list(spec.namespace_name)} does not include namespace {namespace}"
    if spec.namespace_affinity is not None:
        return _selector_reason(spec.namespace_affinity, context.namespace.labels, what="namespaceAffinity",
                                subject=f"namespace {namespace}")
    return None


def auto_pool_affinity_labels(controller: TopController) -> dict[str, str]:
    """The five ``ipam.spidernet.io/app-*`` labels an auto-created pool's podAffinity carries for ``controller``."""
    group, version = controller.group_and_version
    values = (group, version, controller.kind, controller.namespace, controller.name)
    return dict(zip(AUTO_POOL_AFFINITY_KEYS, values, strict=True))


def _pod_affinity_reason(pool: PoolView, context: FilterContext) -> str | None:
    selector = pool.spec.pod_affinity
    if selector is None:
        return None
    if is_auto_pool(pool.labels):
        wanted = dict(selector.match_labels)
        expected = auto_pool_affinity_labels(context.pod.controller)
        if any(wanted.get(key) != value for key, value in expected.items()):
            controller = context.pod.controller
            return (f"auto-created IPPool belongs to another application than "
                    f"{controller.kind} {controller.namespace}/{controller.name}")
        return None
    pod = context.pod
    subject = f"the labels of pod {pod.namespace}/{pod.name}"
    return _selector_reason(selector, pod.labels, what="podAffinity", subject=subject)


def _multus_reason(spec: IPPoolSpec, context: FilterContext) -> str | None:
    if not spec.multus_name:
        return None
    try:
        network = context.multus_network()
    except ValueError as error:
        return f"multusName {list(spec.multus_name)} set but the interface's Multus network is unknown: {error}"
    namespace = context.config.agent_namespace
    if any(qualify_multus_name(name, agent_namespace=namespace) == network for name in spec.multus_name):
        return None
    return f"multusName {list(spec.multus_name)} does not include the interface's Multus network {network}"


def rejection_reason(pool: PoolView, *, version: int, context: FilterContext) -> str | None:
    """None when ``pool`` may serve this NIC for IPv``version``; else the first reason it may not."""
    spec = pool.spec
    if pool.deleting:
        return "IPPool is terminating"
    if spec.disable:
        return "IPPool is disabled"
    if spec.ip_version != version:
        return f"expected an IPv{version} IPPool, this one is IPv{spec.ip_version}"
    for check in (_node_reason, _namespace_reason):
        reason = check(spec, context)
        if reason is not None:
            return reason
    reason = _pod_affinity_reason(pool, context)
    if reason is not None:
        return reason
    return _multus_reason(spec, context)


def priority_key(spec: IPPoolSpec) -> tuple[bool, bool, bool, bool, bool, bool]:
    """Upstream's ``ByPoolPriority``: podAffinity > nodeName > nodeAffinity > namespaceName > namespaceAffinity
    > multusName, compared key by key (False sorts first, so a pool having the property comes first)."""
    return (
        spec.pod_affinity is None,
        not spec.node_name,
        spec.node_affinity is None,
        not spec.namespace_name,
        spec.namespace_affinity is None,
        not spec.multus_name,
    )


def sort_by_priority(pools: Iterable[PoolView]) -> list[PoolView]:
    """Pools by priority; ties keep the given (user's) order.

    Upstream sorts with Go's unstable ``sort.Sort`` over pools collected from a map, so equal-priority pools come
    out in any order and "fall back to the next pool" is not the order the user wrote. ``sorted`` is stable.
    """
    return sorted(pools, key=lambda pool: priority_key(pool.spec))
