from __future__ import annotations

from typing import Any

import pytest

from spiderpool.core.annotations import (
    IPPOOL,
    IPPOOLS,
    NS_DEFAULT_IPV4_POOL,
    NS_DEFAULT_IPV6_POOL,
    POOL_IP_NUMBER,
    POOL_RECLAIM,
    SUBNET,
    SUBNETS,
    PoolIPNumber,
    PoolNames,
)
from spiderpool.core.errors import AnnotationError, NoAvailablePoolError, PoolSelectionError
from spiderpool.core.multus import DEFAULT_NETWORK, NETWORKS
from spiderpool.core.selection import (
    AutoPoolRequest,
    CniPoolDefaults,
    NamespaceView,
    NodeView,
    PodView,
    PoolPlan,
    PoolRequest,
    PoolSource,
    PoolView,
    SelectionConfig,
    SubnetPlan,
    TopController,
    plan_pool_candidates,
    resolve_pool_names,
    select_candidates,
)
from spiderpool.core.specs import parse_ippool_spec

DEPLOYMENT = TopController(kind="Deployment", name="web", namespace="app", uid="d-uid", api_version="apps/v1")
ORPHAN = TopController(kind="Pod", name="web-1", namespace="app", uid="p-uid", api_version="v1")
CONFIG = SelectionConfig()


def view(name: str, subnet: str = "10.0.0.0/24", **spec: Any) -> PoolView:
    return PoolView(name=name, spec=parse_ippool_spec({"subnet": subnet, **spec}))


def v6(name: str, **spec: Any) -> PoolView:
    return view(name, "fd00::/64", **spec)


POOLS = {p.name: p for p in [
    view("v4-a"), view("v4-b"), view("v4-c"), v6("v6-a"), v6("v6-b"),
    view("default-v4", default=True), v6("default-v6", default=True),
]}


def request(annotations: dict[str, str] | None = None, *, nic: str = "eth0", controller: TopController = DEPLOYMENT,
            ns_annotations: dict[str, str] | None = None, cni: CniPoolDefaults | None = None,
            labels: dict[str, str] | None = None, multus_network: str | None = None) -> PoolRequest:
    pod = PodView(namespace="app", name="web-1", uid="p-uid", node_name="worker-1", controller=controller,
                  labels=labels or {"app": "web"}, annotations=annotations or {})
    return PoolRequest(pod=pod, nic=nic, namespace=NamespaceView(name="app", annotations=ns_annotations or {}),
                       node=NodeView(name="worker-1"), cni=cni or CniPoolDefaults(), multus_network=multus_network)


def plan(req: PoolRequest, pools: dict[str, PoolView] = POOLS, config: SelectionConfig = CONFIG) -> PoolPlan:
    result = plan_pool_candidates(req, pools=pools, config=config)
    assert isinstance(result, PoolPlan)
    return result


def names(result: PoolPlan, nic: str = "eth0") -> dict[int, tuple[str, ...]]:
    candidates = result.nic(nic)
    assert candidates is not None
    return {family.version: family.names for family in candidates.families}


SUBNET_ANNOTATION = {SUBNET: '{"ipv4": ["s4"], "ipv6": ["s6"]}'}
IPPOOLS_ANNOTATION = {IPPOOLS: '[{"interface": "eth0", "ipv4": ["v4-a"], "ipv6": ["v6-a"]}]'}
IPPOOL_ANNOTATION = {IPPOOL: '{"ipv4": ["v4-b"], "ipv6": ["v6-b"]}'}
NS_ANNOTATION = {NS_DEFAULT_IPV4_POOL: '["v4-c"]', NS_DEFAULT_IPV6_POOL: '["v6-b"]'}
CNI = CniPoolDefaults(ipv4=("v4-a",), ipv6=("v6-b",))


@pytest.mark.parametrize(
    ("annotations", "ns_annotations", "cni", "source", "expected"),
    [
        ({**IPPOOLS_ANNOTATION, **IPPOOL_ANNOTATION}, NS_ANNOTATION, CNI, PoolSource.POD_IPPOOLS,
         {4: ("v4-a",), 6: ("v6-a",)}),
        (IPPOOL_ANNOTATION, NS_ANNOTATION, CNI, PoolSource.POD_IPPOOL, {4: ("v4-b",), 6: ("v6-b",)}),
        ({}, NS_ANNOTATION, CNI, PoolSource.NAMESPACE, {4: ("v4-c",), 6: ("v6-b",)}),
        ({}, {}, CNI, PoolSource.CNI_CONFIG, {4: ("v4-a",), 6: ("v6-b",)}),
        ({}, {}, None, PoolSource.CLUSTER_DEFAULT, {4: ("default-v4",), 6: ("default-v6",)}),
    ],
)
def test_source_precedence_first_match_wins_without_merging(
    annotations: dict[str, str], ns_annotations: dict[str, str], cni: CniPoolDefaults | None, source: PoolSource,
    expected: dict[int, tuple[str, ...]],
) -> None:
    """SE01: Source precedence first match wins without merging."""
    result = plan(request(annotations, ns_annotations=ns_annotations, cni=cni))
    assert result.source is source
    assert names(result) == expected


def test_subnet_annotation_beats_every_pool_source() -> None:
    """SE02: Subnet annotation beats every pool source."""
    annotations = {**SUBNET_ANNOTATION, **IPPOOLS_ANNOTATION, **IPPOOL_ANNOTATION}
    result = plan_pool_candidates(request(annotations), pools=POOLS, config=CONFIG)
    assert result == SubnetPlan(source=PoolSource.SUBNET, nic="eth0", clean_gateway=False,
                                auto_pools=(AutoPoolRequest("eth0", 4, "s4"), AutoPoolRequest("eth0", 6, "s6")),
                                ip_number=None, reclaim=True)


def test_subnets_beats_subnet_and_picks_the_nic() -> None:
    """SE03: Subnets beats subnet and picks the NIC."""
    annotations = {**SUBNET_ANNOTATION, SUBNETS: '[{"interface": "eth0", "ipv4": ["a"]}, '
                                                 '{"interface": "net1", "ipv4": ["b"], "ipv6": ["c"]}]',
                   POOL_IP_NUMBER: "+2", POOL_RECLAIM: "false"}
    result = resolve_pool_names(request(annotations, nic="net1"), pools=POOLS, config=CONFIG)
    assert isinstance(result, SubnetPlan)
    assert result.source is PoolSource.SUBNETS
    assert result.auto_pools == (AutoPoolRequest("net1", 4, "b"), AutoPoolRequest("net1", 6, "c"))
    assert result.ip_number == PoolIPNumber(2, flexible=True)
    assert result.reclaim is False
    with pytest.raises(PoolSelectionError, match="no item for interface net2"):
        resolve_pool_names(request(annotations, nic="net2"), pools=POOLS, config=CONFIG)


def test_subnet_plan_continues_with_the_auto_pools() -> None:
    """SE04: Subnet plan continues with the auto pools."""
    pools = {**POOLS, "auto4-web-eth0-abcde": view("auto4-web-eth0-abcde", ips=["10.0.0.5"])}
    subnet_plan = resolve_pool_names(request(SUBNET_ANNOTATION), pools=pools, config=CONFIG)
    assert isinstance(subnet_plan, SubnetPlan)
    names_plan = subnet_plan.with_pools({4: "auto4-web-eth0-abcde", 6: "v6-a"})
    result = select_candidates(names_plan, request=request(SUBNET_ANNOTATION), pools=pools, config=CONFIG)
    assert names(result) == {4: ("auto4-web-eth0-abcde",), 6: ("v6-a",)}
    assert result.source is PoolSource.SUBNET


def test_subnet_rules_as_upstream() -> None:
    """SE05: Subnet rules as upstream."""
    with pytest.raises(PoolSelectionError, match="does not support a pod without a controller"):
        resolve_pool_names(request(SUBNET_ANNOTATION, controller=ORPHAN), pools=POOLS, config=CONFIG)
    third_party = TopController(kind="CloneSet", name="c", namespace="app", uid="u", api_version="apps.kruise.io/v1")
    with pytest.raises(PoolSelectionError, match=POOL_IP_NUMBER):
        resolve_pool_names(request(SUBNET_ANNOTATION, controller=third_party), pools=POOLS, config=CONFIG)
    fixed = resolve_pool_names(request({**SUBNET_ANNOTATION, POOL_IP_NUMBER: "3"}, controller=third_party),
                               pools=POOLS, config=CONFIG)
    assert isinstance(fixed, SubnetPlan)
    assert fixed.ip_number == PoolIPNumber(3, flexible=False)
    v4_only = resolve_pool_names(request(SUBNET_ANNOTATION), pools=POOLS, config=SelectionConfig(enable_ipv6=False))
    assert isinstance(v4_only, SubnetPlan)
    assert v4_only.auto_pools == (AutoPoolRequest("eth0", 4, "s4"),)
    with pytest.raises(PoolSelectionError, match="disabled IP families"):
        resolve_pool_names(request({SUBNET: '{"ipv6": ["s6"]}'}), pools=POOLS, config=SelectionConfig(
            enable_ipv6=False))


def test_subnet_feature_switches() -> None:
    """SE06: Subnet feature switches."""
    annotations = {**SUBNET_ANNOTATION, **IPPOOL_ANNOTATION}
    off = SelectionConfig(enable_spider_subnet=False)
    assert plan(request(annotations), config=off).source is PoolSource.POD_IPPOOL
    no_auto_pool = SelectionConfig(enable_auto_pool=False)
    with pytest.raises(PoolSelectionError, match="auto-pool feature"):
        resolve_pool_names(request(annotations), pools=POOLS, config=no_auto_pool)


def test_ippools_describes_every_nic() -> None:
    """SE07: IPPools describes every NIC."""
    annotations = {IPPOOLS: '[{"interface": "eth0", "ipv4": ["v4-a"]}, '
                            '{"interface": "net1", "ipv4": ["v4-b"], "ipv6": ["v6-a"], "cleangateway": true}]'}
    result = plan(request(annotations, nic="net1"))
    assert [(nic.nic, nic.clean_gateway) for nic in result.nics] == [("eth0", False), ("net1", True)]
    assert names(result, "eth0") == {4: ("v4-a",)}
    assert names(result, "net1") == {4: ("v4-b",), 6: ("v6-a",)}
    assert not result.unnamed_nics


def test_ippools_without_names_is_indexed() -> None:
    """SE08: IPPools without names is indexed."""
    result = plan(request({IPPOOLS: '[{"ipv4": ["v4-a"]}, {"ipv4": ["v4-b"]}]'}))
    assert result.unnamed_nics
    assert [nic.nic for nic in result.nics] == ["0", "1"]


def test_clean_gateway_comes_from_the_cni_configuration_for_single_nic_sources() -> None:
    """SE09: Clean gateway comes from the CNI configuration for single NIC sources."""
    result = plan(request(IPPOOL_ANNOTATION, cni=CniPoolDefaults(clean_gateway=True)))
    assert result.nics[0].clean_gateway


def test_wildcards_expand_against_pools_of_the_family() -> None:
    """SE10: Wildcards expand against pools of the family."""
    result = plan(request({IPPOOL: '{"ipv4": ["v4-c", "v4-*", "*-a"], "ipv6": ["v6-?"]}'}))
    assert names(result) == {4: ("v4-c", "v4-a", "v4-b"), 6: ("v6-a", "v6-b")}


def test_a_pattern_matching_nothing_is_reported() -> None:
    """SE11: A pattern matching nothing is reported."""
    with pytest.raises(NoAvailablePoolError) as caught:
        plan(request({IPPOOL: '{"ipv4": ["nothing-*"]}'}))
    assert caught.value.rejections == (("nothing-*", "no IPv4 IPPool matches this pattern"),)


def test_a_malformed_pattern_is_an_error() -> None:
    """SE12: A malformed pattern is an error."""
    with pytest.raises(PoolSelectionError, match="bad IPv4 IPPool name pattern"):
        plan(request({IPPOOL: '{"ipv4": ["v4-[]a]"]}'}))


def test_a_name_with_an_unclosed_bracket_is_a_plain_name_as_upstream() -> None:
    """SE13: A name with an unclosed bracket is a plain name as upstream."""
    with pytest.raises(PoolSelectionError, match=r"IPPool v4-\[a- for interface eth0 does not exist"):
        plan(request({IPPOOL: '{"ipv4": ["v4-[a-"]}'}))


def test_namespace_and_cni_defaults_take_wildcards() -> None:
    """SE14: Namespace and CNI defaults take wildcards."""
    assert names(plan(request(ns_annotations={NS_DEFAULT_IPV4_POOL: '["v4-[ab]"]'}))) == {4: ("v4-a", "v4-b")}
    assert names(plan(request(cni=CniPoolDefaults(ipv6=("v6-*",))))) == {6: ("v6-a", "v6-b")}


def test_disabled_families_are_dropped_silently() -> None:
    """SE15: Disabled families are dropped silently."""
    result = plan(request(IPPOOL_ANNOTATION), config=SelectionConfig(enable_ipv6=False))
    assert names(result) == {4: ("v4-b",)}
    with pytest.raises(PoolSelectionError, match=r"only of disabled IP families \(IPv6\)"):
        plan(request({IPPOOL: '{"ipv6": ["v6-a"]}'}), config=SelectionConfig(enable_ipv6=False))
    with pytest.raises(PoolSelectionError, match="names none"):
        plan(request({IPPOOL: "{}"}))


def test_duplicate_and_missing_pools_are_errors() -> None:
    """SE16: Duplicate and missing pools are errors."""
    with pytest.raises(PoolSelectionError, match="v4-a is named twice for the IPv4 of interface eth0"):
        plan(request({IPPOOL: '{"ipv4": ["v4-a", "v4-b", "v4-a"]}'}))
    with pytest.raises(PoolSelectionError, match="IPv4 IPPool ghost for interface eth0 does not exist"):
        plan(request({IPPOOL: '{"ipv4": ["ghost"]}'}))


def test_no_rule_at_all() -> None:
    """SE17: No rule at all."""
    without_defaults = {name: p for name, p in POOLS.items() if not p.spec.default}
    with pytest.raises(PoolSelectionError, match="no IPPool selection rule applies"):
        plan(request(), pools=without_defaults)


def test_cluster_default_pools_are_sorted_by_name() -> None:
    """SE18: Cluster default pools are sorted by name."""
    pools = {**POOLS, "a-default": view("a-default", default=True)}
    assert names(plan(request())) == {4: ("default-v4",), 6: ("default-v6",)}
    assert names(plan(request(), pools=pools))[4] == ("a-default", "default-v4")


@pytest.mark.parametrize(
    ("annotations", "ns_annotations", "annotation"),
    [({IPPOOL: "{"}, {}, IPPOOL), ({IPPOOLS: "[1]"}, {}, IPPOOLS), ({SUBNET: "x"}, {}, SUBNET),
     ({}, {NS_DEFAULT_IPV4_POOL: "[1]"}, NS_DEFAULT_IPV4_POOL)],
)
def test_malformed_annotations_name_the_annotation(annotations: dict[str, str], ns_annotations: dict[str, str],
                                                   annotation: str) -> None:
    """SE19: Malformed annotations name the annotation."""
    with pytest.raises(AnnotationError) as caught:
        plan(request(annotations, ns_annotations=ns_annotations))
    assert caught.value.annotation == annotation


def test_filtered_pools_are_listed_with_their_reasons() -> None:
    """SE20: Filtered pools are listed with their reasons."""
    pools = {**POOLS, "off": view("off", disable=True), "elsewhere": view("elsewhere", nodeName=["worker-9"]),
             "six": v6("six")}
    with pytest.raises(NoAvailablePoolError) as caught:
        plan(request({IPPOOL: '{"ipv4": ["off", "elsewhere", "six"]}'}), pools=pools)
    error = caught.value
    assert (error.nic, error.version) == ("eth0", 4)
    assert [pool for pool, _ in error.rejections] == ["off", "elsewhere", "six"]
    assert "off: IPPool is disabled" in str(error)
    assert "elsewhere: nodeName ['worker-9'] does not include node worker-1" in str(error)
    assert "six: expected an IPv4 IPPool, this one is IPv6" in str(error)


def test_candidates_keep_user_order_for_ties_and_put_affine_pools_first() -> None:
    """SE21: Candidates keep user order for ties and put affine pools first."""
    pools = {**POOLS, "pinned": view("pinned", nodeName=["worker-1"]), "tied-1": view("tied-1"),
             "tied-2": view("tied-2")}
    result = plan(request({IPPOOL: '{"ipv4": ["tied-2", "v4-c", "pinned", "tied-1", "v4-a"]}'}), pools=pools)
    assert names(result)[4] == ("pinned", "tied-2", "v4-c", "tied-1", "v4-a")
    family = result.nics[0].family(4)
    assert family is not None
    assert family.pools[0] is pools["pinned"]
    assert result.nics[0].family(6) is None


def test_multus_name_is_checked_per_nic() -> None:
    """SE22: Multus name is checked per NIC."""
    pools = {
        "eth0-pool": view("eth0-pool", multusName=["kube-system/macvlan-conf-ens192"]),
        "net1-pool": view("net1-pool", subnet="10.7.0.0/16", multusName=["macvlan-conf-ens224"]),
    }
    annotations = {DEFAULT_NETWORK: "kube-system/macvlan-conf-ens192", NETWORKS: "kube-system/macvlan-conf-ens224",
                   IPPOOLS: '[{"interface": "eth0", "ipv4": ["eth0-pool"]}, {"interface": "net1", '
                            '"ipv4": ["net1-pool"]}]'}
    result = plan(request(annotations), pools=pools)
    assert names(result, "eth0") == {4: ("eth0-pool",)}
    assert names(result, "net1") == {4: ("net1-pool",)}
    swapped = {**annotations, IPPOOLS: '[{"interface": "eth0", "ipv4": ["net1-pool"]}]'}
    with pytest.raises(NoAvailablePoolError, match="does not include the interface's Multus network"):
        plan(request(swapped), pools=pools)


def test_a_known_multus_network_of_the_current_nic_is_used() -> None:
    """SE23: A known multus network of the current NIC is used."""
    pools = {"p": view("p", multusName=["ns/given"])}
    assert names(plan(request({IPPOOL: '{"ipv4": ["p"]}'}, multus_network="ns/given"), pools=pools)) == {4: ("p",)}


def test_node_affinity_example_from_upstream() -> None:
    """SE24: Node affinity example from upstream."""
    pools = {
        "master-ipv4-ippool": view("master-ipv4-ippool", subnet="172.18.41.0/24", ips=["172.18.41.40"],
                                   nodeAffinity={"matchExpressions": [{"key": "node-role.kubernetes.io/master",
                                                                       "operator": "Exists"}]}),
        "worker-ipv4-ippool": view("worker-ipv4-ippool", subnet="172.18.42.0/24", ips=["172.18.42.40"],
                                   nodeAffinity={"matchExpressions": [{"key": "node-role.kubernetes.io/master",
                                                                       "operator": "DoesNotExist"}]}),
    }
    annotations = {IPPOOL: '{"ipv4": ["master-ipv4-ippool", "worker-ipv4-ippool"]}'}
    on_worker = plan(request(annotations), pools=pools)
    assert names(on_worker) == {4: ("worker-ipv4-ippool",)}
    master = PoolRequest(pod=request(annotations).pod, nic="eth0", namespace=NamespaceView("app"),
                         node=NodeView("master-1", labels={"node-role.kubernetes.io/master": ""}))
    assert names(plan(master, pools=pools)) == {4: ("master-ipv4-ippool",)}


def test_pod_affinity_example_from_upstream() -> None:
    """SE25: Pod affinity example from upstream."""
    pools = {"occupied-static-ipv4-ippool": view("occupied-static-ipv4-ippool", podAffinity={
        "matchLabels": {"app": "static"}})}
    annotations = {IPPOOL: '{"ipv4": ["occupied-static-ipv4-ippool"]}'}
    assert names(plan(request(annotations, labels={"app": "static"}), pools=pools)) == {
        4: ("occupied-static-ipv4-ippool",)}
    with pytest.raises(NoAvailablePoolError, match="podAffinity does not match"):
        plan(request(annotations, labels={"app": "unmatched"}), pools=pools)


def test_names_stage_is_reusable_on_its_own() -> None:
    """SE26: Names stage is reusable on its own."""
    result = resolve_pool_names(request(IPPOOL_ANNOTATION), pools=POOLS, config=CONFIG)
    assert not isinstance(result, SubnetPlan)
    assert result.nics[0].pools == PoolNames(("v4-b",), ("v6-b",))
