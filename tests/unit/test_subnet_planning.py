"""Pure auto-pool planning: sizes, names, labels, the controlledIPPools codec, address picking and resizing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spiderpool.core.addressing import count_addresses, merge_ranges, parse_ip, subtract_ranges
from spiderpool.core.annotations import POOL_IP_NUMBER, POOL_RECLAIM, SUBNET, SUBNETS, PoolIPNumber
from spiderpool.core.errors import AnnotationError, InvalidSpec
from spiderpool.core.subnet_planning import (
    IDENTITY_LABELS,
    AppRef,
    AutoPoolWant,
    ControlledPool,
    ResizeError,
    app_replicas,
    auto_pool_labels,
    auto_pool_name,
    controlled_ip_count,
    decode_controlled_pools,
    desired_ip_count,
    encode_controlled_pools,
    free_ranges,
    identity_of,
    job_pod_count,
    lowest_addresses,
    plan_app_pools,
    plan_resize,
)

APP = AppRef(api_version="apps/v1", kind="Deployment", namespace="ns1", name="Web-App",
             uid="7d3c1b2a-1111-2222-3333-abcdef987654")


def ip(text: str) -> int:
    return parse_ip(text, version=4, field="test")


def test_desired_ip_count_fixed_flexible_and_default() -> None:
    """SUP01: Desired IP count fixed flexible and default."""
    assert desired_ip_count(PoolIPNumber(count=5, flexible=False), replicas=3, default_flexible=1) == 5
    assert desired_ip_count(PoolIPNumber(count=2, flexible=True), replicas=3, default_flexible=1) == 5
    assert desired_ip_count(None, replicas=3, default_flexible=4) == 7


@pytest.mark.parametrize(("kind", "obj", "expected"), [
    ("Deployment", {"spec": {"replicas": 4}}, 4),
    ("StatefulSet", {"spec": {}}, 1),
    ("ReplicaSet", {"spec": {"replicas": 0}}, 0),
    ("DaemonSet", {"status": {"desiredNumberScheduled": 3}}, 3),
    ("DaemonSet", {}, 0),
    ("Job", {"spec": {"parallelism": 2}}, 2),
    ("Job", {"spec": {"parallelism": 2, "completions": 6}}, 6),
    ("CronJob", {"spec": {"jobTemplate": {"spec": {"parallelism": 3}}}}, 3),
])
def test_app_replicas_per_kind(kind: str, obj: dict[str, object], expected: int) -> None:
    """SUP02: App replicas per kind."""
    assert app_replicas(kind, obj) == expected


def test_job_pod_count_never_below_one() -> None:
    """SUP03: Job pod count never below one."""
    assert job_pod_count({}) == 1
    assert job_pod_count({"parallelism": 0}) == 1
    assert job_pod_count({"parallelism": 4, "completions": 0}) == 1


def test_app_replicas_rejects_unknown_kind_naming_it() -> None:
    """SUP04: App replicas rejects unknown kind naming it."""
    with pytest.raises(ValueError, match="'Pod'"):
        app_replicas("Pod", {})


def test_plan_app_pools_dual_stack_with_flexible_default() -> None:
    """SUP05: Plan app pools dual stack with flexible default."""
    annotations = {SUBNET: '{"ipv4": ["s4"], "ipv6": ["s6"]}'}
    wants = plan_app_pools(annotations, replicas=3, default_flexible=1)
    assert wants == (AutoPoolWant("s4", 4, "eth0", 4, True), AutoPoolWant("s6", 6, "eth0", 4, True))


def test_plan_app_pools_multi_nic_fixed_count_no_reclaim_and_disabled_family() -> None:
    """SUP06: Plan app pools multi NIC fixed count no reclaim and disabled family."""
    annotations = {
        SUBNETS: '[{"interface": "eth0", "ipv4": ["a"], "ipv6": ["a6"]}, {"interface": "net1", "ipv4": ["b"]}]',
        POOL_IP_NUMBER: "2",
        POOL_RECLAIM: "false",
    }
    wants = plan_app_pools(annotations, replicas=9, default_flexible=1, enable_ipv6=False)
    assert wants == (AutoPoolWant("a", 4, "eth0", 2, False), AutoPoolWant("b", 4, "net1", 2, False))


def test_plan_app_pools_without_annotation_and_with_bad_number() -> None:
    """SUP07: Plan app pools without annotation and with bad number."""
    assert plan_app_pools({}, replicas=1, default_flexible=1) == ()
    with pytest.raises(AnnotationError, match=POOL_IP_NUMBER):
        plan_app_pools({SUBNET: '{"ipv4": ["s"]}', POOL_IP_NUMBER: "++1"}, replicas=1, default_flexible=1)


def test_auto_pool_name_as_upstream() -> None:
    """SUP08: Auto pool name as upstream."""
    assert auto_pool_name(version=4, app=APP, nic="ETH0") == "auto4-web-app-eth0-abcde"
    long_app = AppRef("apps/v1", "Deployment", "ns", "x" * 300, "a-b")
    assert len(auto_pool_name(version=6, app=long_app, nic="eth0")) == 253


def test_auto_pool_labels_and_identity_ignore_uid() -> None:
    """SUP09: Auto pool labels and identity ignore UID."""
    want = AutoPoolWant("s4", 4, "eth0", 3, False)
    labels = auto_pool_labels(app=APP, want=want)
    assert labels["ipam.spidernet.io/owner-application-gv"] == "apps_v1"
    assert labels["ipam.spidernet.io/ip-version"] == "IPv4"
    assert labels["ipam.spidernet.io/ippool-reclaim"] == "false"
    assert labels["ipam.spidernet.io/owner-application-uid"] == APP.uid
    recreated = AppRef(APP.api_version, APP.kind, APP.namespace, APP.name, "other-uid")
    assert identity_of(auto_pool_labels(app=recreated, want=want)) == identity_of(labels)
    assert len(IDENTITY_LABELS) == 6
    assert APP.application == "apps_v1_Deployment_ns1_Web-App"
    assert AppRef("v1", "Pod", "n", "p", "u").application == "v1_Pod_n_p"


def test_controlled_pools_round_trip_and_count() -> None:
    """SUP10: Controlled pools round trip and count."""
    pools = {
        "b": ControlledPool(ips=((ip("10.6.0.2"), ip("10.6.0.4")),), application="apps_v1_Deployment_ns_b"),
        "a": ControlledPool(ips=((ip("10.6.0.9"), ip("10.6.0.9")),)),
    }
    text = encode_controlled_pools(pools, version=4)
    assert text == ('{"a":{"ips":["10.6.0.9"]},"b":{"application":"apps_v1_Deployment_ns_b",'
                    '"ips":["10.6.0.2-10.6.0.4"]}}')
    assert decode_controlled_pools(text, version=4) == pools
    assert controlled_ip_count(pools) == 4
    assert encode_controlled_pools({}, version=4) is None
    assert decode_controlled_pools(None, version=4) == {}


@pytest.mark.parametrize("text", ["[1]", "{", '{"p": 3}', '{"p": {"ips": ["10.0.0.300"]}}'])
def test_controlled_pools_decode_errors_name_the_field(text: str) -> None:
    """SUP11: Controlled pools decode errors name the field."""
    with pytest.raises(InvalidSpec, match="controlledIPPools"):
        decode_controlled_pools(text, version=4)


def test_free_ranges_excludes_every_taken_set() -> None:
    """SUP12: Free ranges excludes every taken set."""
    usable = [(ip("10.0.0.1"), ip("10.0.0.10"))]
    free = free_ranges(usable, taken=[[(ip("10.0.0.1"), ip("10.0.0.2"))], [(ip("10.0.0.5"), ip("10.0.0.5"))]])
    assert free == [(ip("10.0.0.3"), ip("10.0.0.4")), (ip("10.0.0.6"), ip("10.0.0.10"))]
    assert lowest_addresses(free, 3) == [(ip("10.0.0.3"), ip("10.0.0.4")), (ip("10.0.0.6"), ip("10.0.0.6"))]


def test_plan_resize_grows_from_lowest_free() -> None:
    """SUP13: Plan resize grows from lowest free."""
    current = [(ip("10.0.0.3"), ip("10.0.0.4"))]
    free = [(ip("10.0.0.1"), ip("10.0.0.2")), (ip("10.0.0.8"), ip("10.0.0.9"))]
    grown = plan_resize(pool="p", subnet="s", current=current, allocated=[], desired=5, free=free)
    assert grown == [(ip("10.0.0.1"), ip("10.0.0.4")), (ip("10.0.0.8"), ip("10.0.0.8"))]


def test_plan_resize_shrinks_only_unallocated_lowest_first() -> None:
    """SUP14: Plan resize shrinks only unallocated lowest first."""
    current = [(ip("10.0.0.1"), ip("10.0.0.5"))]
    shrunk = plan_resize(pool="p", subnet="s", current=current, allocated=[ip("10.0.0.1"), ip("10.0.0.4")],
                         desired=3, free=[])
    assert shrunk == [(ip("10.0.0.1"), ip("10.0.0.1")), (ip("10.0.0.4"), ip("10.0.0.5"))]


def test_plan_resize_errors_name_pool_and_subnet() -> None:
    """SUP15: Plan resize errors name pool and subnet."""
    with pytest.raises(ResizeError, match="SpiderSubnet s has 1 free IPs, IPPool p needs 2 more"):
        plan_resize(pool="p", subnet="s", current=[], allocated=[], desired=2, free=[(1, 1)])
    with pytest.raises(ResizeError, match="IPPool p available free IPs are not enough"):
        plan_resize(pool="p", subnet="s", current=[(1, 3)], allocated=[1, 2, 3], desired=1, free=[])


ranges = st.lists(st.tuples(st.integers(0, 200), st.integers(0, 20)), max_size=6).map(
    lambda items: merge_ranges((first, first + span) for first, span in items))


@given(current=ranges, free_pool=ranges, allocated=st.sets(st.integers(0, 230)), desired=st.integers(0, 60))
def test_plan_resize_properties(current: list[tuple[int, int]], free_pool: list[tuple[int, int]],
                                allocated: set[int], desired: int) -> None:
    """SUP16: Plan resize properties."""
    free = subtract_ranges(free_pool, current)
    held = [a for a in allocated if any(lo <= a <= hi for lo, hi in current)]
    try:
        result = plan_resize(pool="p", subnet="s", current=current, allocated=held, desired=desired, free=free)
    except ResizeError:
        return
    assert count_addresses(result) == desired
    # Every allocated address survives, and nothing comes from outside the pool or the free addresses.
    assert all(any(lo <= a <= hi for lo, hi in result) for a in held)
    assert not subtract_ranges(result, merge_ranges([*current, *free]))
