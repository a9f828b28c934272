from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spiderpool.core.pool_filters import (
    FilterContext,
    auto_pool_affinity_labels,
    priority_key,
    rejection_reason,
    sort_by_priority,
)
from spiderpool.core.selection_types import NamespaceView, NodeView, PodView, SelectionConfig, TopController
from spiderpool.core.specs import PoolView, parse_ippool_spec
from spiderpool.core.validation import LABEL_OWNER_APPLICATION_NAME

DEPLOYMENT = TopController(kind="Deployment", name="web", namespace="app", uid="d-uid", api_version="apps/v1")
POD = PodView(namespace="app", name="web-1", uid="p-uid", node_name="worker-1", controller=DEPLOYMENT,
              labels={"app": "web"})


def pool(name: str = "p", *, labels: dict[str, str] | None = None, deleting: bool = False, **spec: Any) -> PoolView:
    raw = {"subnet": "10.0.0.0/24", "ips": ["10.0.0.10-10.0.0.20"], **spec}
    return PoolView(name=name, spec=parse_ippool_spec(raw), labels=labels or {}, deleting=deleting)


def context(*, network: str | None = "kube-system/macvlan", node_labels: dict[str, str] | None = None,
            namespace_labels: dict[str, str] | None = None) -> FilterContext:
    def multus_network() -> str:
        if network is None:
            raise ValueError("no Multus network in the k8s.v1.cni.cncf.io/networks annotation")
        return network

    return FilterContext(
        pod=POD,
        namespace=NamespaceView(name="app", labels=namespace_labels or {"kubernetes.io/metadata.name": "app"}),
        node=NodeView(name="worker-1", labels=node_labels or {"kubernetes.io/hostname": "worker-1"}),
        config=SelectionConfig(agent_namespace="kube-system"),
        multus_network=multus_network,
    )


AUTO_LABELS = {LABEL_OWNER_APPLICATION_NAME: "web"}


@pytest.mark.parametrize(
    ("candidate", "version", "reason_part"),
    [
        (pool(), 4, None),
        (pool(deleting=True), 4, "terminating"),
        (pool(disable=True), 4, "disabled"),
        (pool(), 6, "expected an IPv6 IPPool, this one is IPv4"),
        (pool(nodeName=["worker-1", "worker-2"]), 4, None),
        (pool(nodeName=["worker-2"]), 4, "nodeName ['worker-2'] does not include node worker-1"),
        # nodeName beats nodeAffinity, as upstream: a listed node is enough.
        (pool(nodeName=["worker-1"], nodeAffinity={"matchLabels": {"x": "y"}}), 4, None),
        (pool(nodeAffinity={"matchLabels": {"kubernetes.io/hostname": "worker-1"}}), 4, None),
        (pool(nodeAffinity={"matchExpressions": [{"key": "node-role.kubernetes.io/master", "operator": "Exists"}]}),
         4, "nodeAffinity does not match node worker-1"),
        (pool(nodeAffinity={"matchExpressions": [{"key": "a", "operator": "In"}]}), 4, "invalid nodeAffinity"),
        (pool(namespaceName=["app"]), 4, None),
        (pool(namespaceName=["other"]), 4, "namespaceName ['other'] does not include namespace app"),
        (pool(namespaceName=["app"], namespaceAffinity={"matchLabels": {"x": "y"}}), 4, None),
        (pool(namespaceAffinity={"matchLabels": {"kubernetes.io/metadata.name": "test-ns"}}), 4,
         "namespaceAffinity does not match namespace app"),
        (pool(podAffinity={"matchLabels": {"app": "web"}}), 4, None),
        (pool(podAffinity={"matchLabels": {"app": "static"}}), 4, "podAffinity does not match the labels of pod"),
        (pool(podAffinity={"matchLabels": auto_pool_affinity_labels(DEPLOYMENT)}, labels=AUTO_LABELS), 4, None),
        (pool(podAffinity={"matchLabels": {**auto_pool_affinity_labels(DEPLOYMENT),
                                           "ipam.spidernet.io/app-name": "api"}}, labels=AUTO_LABELS),
         4, "auto-created IPPool belongs to another application than Deployment app/web"),
        (pool(multusName=["macvlan"]), 4, None),
        (pool(multusName=["other/x", "kube-system/macvlan"]), 4, None),
        (pool(multusName=["ns/macvlan"]), 4, "does not include the interface's Multus network kube-system/macvlan"),
    ],
)
def test_rejection_reasons(candidate: PoolView, version: int, reason_part: str | None) -> None:
    """PF01: Rejection reasons."""
    reason = rejection_reason(candidate, version=version, context=context())
    if reason_part is None:
        assert reason is None
    else:
        assert reason is not None
        assert reason_part in reason


def test_unknown_multus_network_rejects_only_pools_that_ask_for_one() -> None:
    """PF02: Unknown multus network rejects only pools that ask for one."""
    assert rejection_reason(pool(), version=4, context=context(network=None)) is None
    reason = rejection_reason(pool(multusName=["macvlan"]), version=4, context=context(network=None))
    assert reason is not None
    assert "Multus network is unknown" in reason


def test_the_first_failed_rule_is_reported() -> None:
    """PF03: The first failed rule is reported."""
    reason = rejection_reason(pool(disable=True, nodeName=["nowhere"]), version=6, context=context())
    assert reason == "IPPool is disabled"


def test_auto_pool_labels_of_a_core_and_a_grouped_controller() -> None:
    """PF04: Auto pool labels of a core and a grouped controller."""
    assert auto_pool_affinity_labels(DEPLOYMENT) == {
        "ipam.spidernet.io/app-api-group": "apps",
        "ipam.spidernet.io/app-api-version": "v1",
        "ipam.spidernet.io/app-kind": "Deployment",
        "ipam.spidernet.io/app-namespace": "app",
        "ipam.spidernet.io/app-name": "web",
    }
    core = TopController(kind="Pod", name="p", namespace="n", uid="u", api_version="v1")
    assert auto_pool_affinity_labels(core)["ipam.spidernet.io/app-api-group"] == ""
    assert auto_pool_affinity_labels(core)["ipam.spidernet.io/app-api-version"] == "v1"


def test_priority_follows_upstream_key_order() -> None:
    """PF05: Priority follows upstream key order."""
    plain = pool("plain")
    multus = pool("multus", multusName=["m"])
    ns_affinity = pool("ns-affinity", namespaceAffinity={"matchLabels": {"a": "b"}})
    ns_name = pool("ns-name", namespaceName=["app"])
    node_affinity = pool("node-affinity", nodeAffinity={"matchLabels": {"a": "b"}})
    node_name = pool("node-name", nodeName=["worker-1"])
    pod_affinity = pool("pod-affinity", podAffinity={"matchLabels": {"app": "web"}})
    both = pool("pod-and-node", podAffinity={"matchLabels": {"app": "web"}}, nodeName=["worker-1"])
    given_order = [plain, multus, ns_affinity, ns_name, node_affinity, node_name, pod_affinity, both]
    assert [p.name for p in sort_by_priority(given_order)] == [
        "pod-and-node", "pod-affinity", "node-name", "node-affinity", "ns-name", "ns-affinity", "multus", "plain"]


_FEATURES = st.fixed_dictionaries({}, optional={
    "podAffinity": st.just({"matchLabels": {"app": "web"}}),
    "nodeName": st.just(["worker-1"]),
    "nodeAffinity": st.just({"matchLabels": {"a": "b"}}),
    "namespaceName": st.just(["app"]),
    "namespaceAffinity": st.just({"matchLabels": {"a": "b"}}),
    "multusName": st.just(["m"]),
})


@given(st.lists(_FEATURES, max_size=12))
def test_sort_is_stable_and_ordered(features: list[dict[str, Any]]) -> None:
    """PF06: Sort is stable and ordered."""
    pools = [pool(f"pool-{index}", **spec) for index, spec in enumerate(features)]
    ordered = sort_by_priority(pools)
    keys = [priority_key(p.spec) for p in ordered]
    assert keys == sorted(keys)
    assert sorted(p.name for p in ordered) == sorted(p.name for p in pools)
    for earlier, later in itertools.pairwise(ordered):
        if priority_key(earlier.spec) == priority_key(later.spec):
            # Ties keep the user's order: the fallback order is the one written in the annotation.
            assert pools.index(earlier) < pools.index(later)
