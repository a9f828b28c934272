"""The coordinator's pure parts: the netconf completed from the SpiderCoordinator, the ADD plan per mode, DEL and
CHECK (``spiderpool/core/coordinator_*``); facts are built by hand, as a netlink dump would give them."""

from __future__ import annotations

from ipaddress import ip_address, ip_interface, ip_network
from typing import Any

import pytest

from spiderpool.core.cni_types import CniError
from spiderpool.core.coordinator_facts import (
    MAIN_TABLE,
    NODE,
    POD,
    SCOPE_LINK,
    AddNeighbour,
    AddRoute,
    AddRule,
    Announce,
    CreateVeth,
    DeleteLink,
    DeleteRoute,
    DeleteRule,
    LinkFact,
    MarkReplies,
    NamespaceFacts,
    RouteFact,
    RouteSpec,
    RuleSpec,
    SetLinkUp,
    SetMac,
    SetSysctl,
    SetTxQueueLen,
    Step,
)
from spiderpool.core.coordinator_netconf import DISABLED, OVERLAY, UNDERLAY, parse_coordinator_conf
from spiderpool.core.coordinator_plan import AddInputs, mac_with_prefix, node_addresses, plan_add
from spiderpool.core.coordinator_teardown import NodeTable, check_underlay, plan_del
from spiderpool.core.multus_render import coordinator_plugin

API: dict[str, Any] = {"mode": "auto", "tunePodRoutes": True, "hostRuleTable": 500, "overlayPodCIDR": [],
                       "serviceCIDR": ["10.96.0.0/12"], "hijackCIDR": None}
CID = "0123456789abcdef"
HOST_VETH = "veth0123456789a"


def link(name: str, index: int, *addresses: str, up: bool = True, peer: int | None = None,
         mac: str = "02:00:00:00:00:00") -> LinkFact:
    return LinkFact(name=name, index=index, mac=mac, up=up, nic_like=up and name != "lo", peer_index=peer,
                    addresses=tuple(ip_interface(a) for a in addresses))


def default_via(index: int, gateway: str) -> RouteFact:
    return RouteFact(family=4, dst=None, dev_index=index, gateway=ip_address(gateway))


def connected(index: int, cidr: str) -> RouteFact:
    return RouteFact(family=4, dst=ip_network(cidr), dev_index=index, scope=SCOPE_LINK)


NODE_NS = NamespaceFacts(links=(link("lo", 1, "127.0.0.1/8", "10.250.0.9/32"), link("ens192", 2, "10.6.0.1/24"),
                                link("vethabc", 3, "169.254.1.1/32"), link("ens224", 4, "10.7.0.1/24")))


def inputs(pod: NamespaceFacts, ifname: str = "eth0", node: NamespaceFacts = NODE_NS, **netconf: Any) -> AddInputs:
    conf = parse_coordinator_conf(netconf, API)
    return AddInputs(conf, ifname, CID, pod, node, (ip_address("10.6.0.1"),), "02:aa:00:00:00:01",
                     "02:bb:00:00:00:02")


def of(steps: tuple[Step, ...], kind: type) -> list[Any]:
    return [step for step in steps if isinstance(step, kind)]


def test_cu01_netconf_completed_from_the_coordinator_as_upstream() -> None:
    """CU01: netconf keys win over the coordinator config, which wins over upstream's defaults; keys match
    case-insensitively (upstream's ``podDefaultRouteNic`` tag and the CRD's ``podDefaultRouteNIC``); ``disable`` and
    ``disabled`` both disable; invalid values are refused with upstream's messages."""
    conf = parse_coordinator_conf({"type": "coordinator"}, API)
    assert (conf.mode, conf.host_rule_table, conf.veth_mtu, conf.tune_pod_routes, conf.pod_rp_filter) == (
        "auto", 500, 1500, True, 0)
    assert conf.service_cidr == (ip_network("10.96.0.0/12"),)
    conf = parse_coordinator_conf({"mode": "underlay", "serviceCIDR": ["10.233.0.0/18"], "podDefaultRouteNic": "net1",
                                   "hostRuleTable": 600, "vethMTU": 1400, "tunePodRoutes": False}, API)
    assert (conf.mode, conf.service_cidr, conf.pod_default_route_nic, conf.host_rule_table, conf.veth_mtu,
            conf.tune_pod_routes) == ("underlay", (ip_network("10.233.0.0/18"),), "net1", 600, 1400, False)
    assert parse_coordinator_conf({"podDefaultRouteNIC": "net2"}, API).pod_default_route_nic == "net2"
    assert parse_coordinator_conf({"mode": "disable"}, API).mode == DISABLED
    assert parse_coordinator_conf({}, {**API, "mode": "disabled"}).mode == DISABLED
    for key, value, message in (("podMACPrefix", "01:00", "like '0a:1b'"),
                                ("serviceCIDR", ["10.0.0.1"], "invalid CIDR address: 10.0.0.1"),
                                ("podRPFilter", 3, "available options: [-1,0,1,2]"),
                                ("vethMTU", 0, "vethMTU must be greater than 0"),
                                ("mode", "bridge", "unknown tuneMode: bridge"),
                                ("policyRoutes", [{"dst": "10.0.0.0/8", "gw": "fd00::1"}], "same IP family")):
        with pytest.raises(CniError, match=message.replace("[", r"\[").replace("]", r"\]")):
            parse_coordinator_conf({key: value}, API)


def test_cu02_underlay_first_nic_plan() -> None:
    """CU02: underlay eth0 (auto): the veth pair (host end up, both MACs chosen), node addresses through veth0 in
    table 101 and main, static neighbours both ways, the service CIDR via the node's address, rp_filter, the reply
    marks (mangle rules, fwmark rule to table 100 and its default route through veth0), and on the node the
    pref-1000 rule and the route back through the host veth; node addresses exclude lo, veth* and the kernel's
    source first."""
    pod = NamespaceFacts(links=(link("lo", 1, "127.0.0.1/8"), link("eth0", 2, "10.6.0.10/24")),
                         routes=(default_via(2, "10.6.0.254"), connected(2, "10.6.0.0/24")))
    plan = plan_add(inputs(pod))
    assert (plan.mode, plan.first_invoke, plan.table, plan.pod_veth, plan.host_veth) == (
        UNDERLAY, True, 101, "veth0", HOST_VETH)
    assert plan.node_addresses == (ip_address("10.6.0.1"), ip_address("10.7.0.1"))
    steps = plan.steps
    assert steps[:4] == (MarkReplies("veth0", (4,)),
                         CreateVeth("veth0", HOST_VETH, 1500, "02:aa:00:00:00:01", "02:bb:00:00:00:02"),
                         SetLinkUp(NODE, HOST_VETH), SetLinkUp(POD, "veth0"))
    assert SetSysctl(POD, "net.ipv4.conf.all.rp_filter", "0") in steps
    assert AddNeighbour(NODE, HOST_VETH, ip_address("10.6.0.10"), "02:aa:00:00:00:01") in steps
    assert AddNeighbour(POD, "veth0", ip_address("10.7.0.1"), "02:bb:00:00:00:02") in steps
    src = ip_address("10.6.0.10")
    for table in (101, MAIN_TABLE):
        assert AddRoute(POD, RouteSpec(4, ip_network("10.7.0.1/32"), table, "veth0", None, src, SCOPE_LINK)) in steps
    assert AddRoute(POD, RouteSpec(4, ip_network("10.96.0.0/12"), MAIN_TABLE, "veth0", ip_address("10.6.0.1"),
                                   src)) in steps
    assert AddRule(NODE, RuleSpec(4, 500, 1000)) in steps
    assert AddRoute(NODE, RouteSpec(4, ip_network("10.6.0.10/32"), 500, HOST_VETH, None, None, SCOPE_LINK),
                    replace=True) in steps
    assert not of(steps, DeleteRoute)  # the first NIC's routes stay where they are
    assert of(steps, MarkReplies) == [MarkReplies("veth0", (4,))]  # replies to what came in through veth0 ...
    assert AddRule(POD, RuleSpec(4, 100, 1000, fwmark=1)) in steps  # ... look up table 100: veth0 via the node
    assert AddRoute(POD, RouteSpec(4, None, 100, "veth0", ip_address("10.6.0.1"), src)) in steps


def test_cu03_second_underlay_nic_gets_its_own_table() -> None:
    """CU03: net1 after an underlay eth0: no new veth, table 98 + NICs (veth0, eth0, net1: 101), node routes and the
    service CIDR in that table, net1's default route moved there with ``from <net1> lookup 101``; without veth0
    (eth0 not coordinated) underlay refuses as upstream does."""
    pod = NamespaceFacts(
        links=(link("lo", 1), link("eth0", 2, "10.6.0.10/24"), link("veth0", 3, mac="02:aa:00:00:00:09"),
               link("net1", 4, "10.7.0.10/24", up=False)),
        routes=(default_via(2, "10.6.0.254"), default_via(4, "10.7.0.254"), connected(4, "10.7.0.0/24")))
    node = NamespaceFacts(links=(*NODE_NS.links, link(HOST_VETH, 9, mac="02:bb:00:00:00:09")))
    plan = plan_add(inputs(pod, "net1", node))
    assert (plan.mode, plan.first_invoke, plan.table) == (UNDERLAY, False, 101)
    steps = plan.steps
    assert steps[0] == SetLinkUp(POD, "net1")
    assert not of(steps, CreateVeth)
    assert not of(steps, MarkReplies)
    assert AddNeighbour(NODE, HOST_VETH, ip_address("10.7.0.10"), "02:aa:00:00:00:09") in steps
    assert AddRoute(POD, RouteSpec(4, ip_network("10.96.0.0/12"), 101, "veth0", ip_address("10.6.0.1"),
                                   ip_address("10.6.0.10"))) in steps
    assert AddRule(POD, RuleSpec(4, 101, None, ip_network("10.7.0.10/32"))) in steps
    assert AddRoute(POD, RouteSpec(4, None, 101, "net1", ip_address("10.7.0.254"))) in steps
    assert DeleteRoute(POD, RouteSpec(4, None, MAIN_TABLE, "net1", ip_address("10.7.0.254"))) in steps
    assert AddRoute(POD, RouteSpec(4, ip_network("10.7.0.0/24"), 101, "net1", None, None, SCOPE_LINK)) in steps
    bare = NamespaceFacts(links=(link("lo", 1), link("eth0", 2, "10.6.0.10/24"), link("net1", 4, "10.7.0.10/24")))
    with pytest.raises(CniError, match="auxiliary interface eth0 was not created by previous interface"):
        plan_add(inputs(bare, "net1", mode="underlay"))


def test_cu04_overlay_nic_after_an_overlay_eth0() -> None:
    """CU04: overlay (auto: net1, no veth0): eth0's host peer found by its peer index, table 101 when eth0 and net1
    are the only NICs, the routed CIDRs through eth0 in main, eth0's default route copied to table 100 with rules
    from eth0's address, net1's routes moved to 101; an overlay eth0 itself is refused."""
    pod = NamespaceFacts(
        links=(link("lo", 1), link("eth0", 2, "10.244.0.5/32", peer=7, mac="02:cc:00:00:00:01"),
               link("net1", 3, "10.7.0.10/24")),
        routes=(default_via(2, "169.254.1.1"), default_via(3, "10.7.0.254"), connected(3, "10.7.0.0/24")))
    node = NamespaceFacts(links=(*NODE_NS.links, link("cali1234", 7, mac="ee:ee:ee:ee:ee:ee")))
    plan = plan_add(inputs(pod, "net1", node))
    assert (plan.mode, plan.first_invoke, plan.table, plan.pod_veth, plan.host_veth) == (
        OVERLAY, True, 101, "eth0", "cali1234")
    steps = plan.steps
    assert AddNeighbour(NODE, "cali1234", ip_address("10.7.0.10"), "02:cc:00:00:00:01") in steps
    assert AddRoute(POD, RouteSpec(4, ip_network("10.96.0.0/12"), MAIN_TABLE, "eth0", ip_address("10.6.0.1"),
                                   ip_address("10.244.0.5"))) in steps
    assert AddRule(POD, RuleSpec(4, 100, None, ip_network("10.244.0.5/32"))) in steps
    assert AddRoute(POD, RouteSpec(4, None, 100, "eth0", ip_address("169.254.1.1"))) in steps
    assert DeleteRoute(POD, RouteSpec(4, None, MAIN_TABLE, "net1", ip_address("10.7.0.254"))) in steps
    assert not any(step.route.link == "eth0" for step in of(steps, DeleteRoute))
    with pytest.raises(CniError, match="current interface is first interface named eth0"):
        plan_add(inputs(pod, "eth0", node, mode="overlay"))


def test_cu05_default_route_nic_override_moves_the_other_nic() -> None:
    """CU05: ``podDefaultRouteNIC: net1`` (the pod annotation's override reaches it through the config): eth0's
    routes move to the table with a rule from eth0's address, net1 keeps main; a NIC the pod lacks is refused."""
    pod = NamespaceFacts(
        links=(link("lo", 1), link("eth0", 2, "10.6.0.10/24"), link("veth0", 3), link("net1", 4, "10.7.0.10/24")),
        routes=(default_via(2, "10.6.0.254"), default_via(4, "10.7.0.254")))
    node = NamespaceFacts(links=(*NODE_NS.links, link(HOST_VETH, 9)))
    steps = plan_add(inputs(pod, "net1", node, podDefaultRouteNIC="net1")).steps
    assert AddRule(POD, RuleSpec(4, 101, None, ip_network("10.6.0.10/32"))) in steps
    assert DeleteRoute(POD, RouteSpec(4, None, MAIN_TABLE, "eth0", ip_address("10.6.0.254"))) in steps
    assert not any(step.route.link == "net1" for step in of(steps, DeleteRoute))
    with pytest.raises(CniError, match="podDefaultRouteNIC: net9 don't exist in pod"):
        plan_add(inputs(pod, "net1", node, podDefaultRouteNIC="net9"))


def test_cu06_mac_prefix_txqueuelen_rp_filter_and_disabled() -> None:
    """CU06: ``podMACPrefix`` + the address's last four bytes (IPv4 and IPv6) announced right after, txqueuelen set
    in the pod, a
    negative rp_filter left alone, IPv6 enabled for an IPv6 NIC, nothing at all when disabled."""
    assert mac_with_prefix("0a:1b", ip_address("10.6.0.10")) == "0a:1b:0a:06:00:0a"
    assert mac_with_prefix("0A-1b", ip_address("fd00::1:2:3")) == "0a:1b:00:02:00:03"
    pod = NamespaceFacts(links=(link("lo", 1), link("eth0", 2, "10.6.0.10/24", "fd00::10/64")))
    steps = plan_add(inputs(pod, podMACPrefix="0a:1b", txQueueLen=2000, podRPFilter=-1)).steps
    new_mac = steps.index(SetMac(POD, "eth0", "0a:1b:0a:06:00:0a"))
    assert steps[new_mac + 1] == Announce("eth0", (ip_address("10.6.0.10"), ip_address("fd00::10")))
    assert SetTxQueueLen(POD, "eth0", 2000) in steps
    assert SetSysctl(POD, "net.ipv6.conf.all.disable_ipv6", "0") in steps
    assert not any(step.key.endswith("rp_filter") for step in of(steps, SetSysctl))
    assert AddRule(NODE, RuleSpec(6, 500, 1000)) in steps
    assert plan_add(inputs(pod, mode="disabled")).steps == ()


def test_cu07_del_removes_what_add_made_and_nothing_else() -> None:
    """CU07: DEL removes the container's host veth (its routes go with it), table routes to the pod's addresses on
    other devices, and the pref-1000 rule of a family only once the table holds no route of that family; CHECK
    names what is missing."""
    node = NamespaceFacts(links=(*NODE_NS.links, link(HOST_VETH, 9), link("cali1234", 7)))
    routes = (RouteFact(4, ip_network("10.6.0.10/32"), 500, 9, scope=SCOPE_LINK),
              RouteFact(4, ip_network("10.7.0.10/32"), 500, 7, scope=SCOPE_LINK),
              RouteFact(6, ip_network("fd00::99/128"), 500, 7, scope=SCOPE_LINK))
    table = NodeTable(500, routes, frozenset({4, 6}))
    steps = plan_del(CID, [ip_address("10.6.0.10"), ip_address("10.7.0.10")], node, table, host_peer=7)
    assert steps == (DeleteLink(NODE, HOST_VETH),
                     DeleteRoute(NODE, RouteSpec(4, ip_network("10.7.0.10/32"), 500, "cali1234", None, None,
                                                 SCOPE_LINK)),
                     DeleteRule(NODE, RuleSpec(4, 500, 1000)))
    assert plan_del(CID, [], NamespaceFacts(links=NODE_NS.links), NodeTable(500, (), frozenset()), host_peer=None) == ()
    pod = NamespaceFacts(links=(link("lo", 1), link("eth0", 2, "10.6.0.10/24"), link("veth0", 3)))
    assert check_underlay(CID, [ip_address("10.6.0.10")], pod, node, table) == []
    problems = check_underlay(CID, [ip_address("10.6.0.11")], pod, node, NodeTable(500, routes, frozenset({6})))
    assert problems == [f"the node has no route to 10.6.0.11 via {HOST_VETH} in table 500",
                        "the node has no rule 'from all lookup 500' for IPv4"]


def test_cu10_stale_del_leaves_another_devices_route_to_the_address() -> None:
    """CU10: a stale DEL (the pod's namespace still there, its address now another pod's) removes a host-table route
    to the address only on the host peer of this pod's eth0 (where its overlay ADD put it); the same address routed
    through another device (the new holder's) stays, and so does the rule its family still needs."""
    node = NamespaceFacts(links=(*NODE_NS.links, link("cali1234", 7), link("cali5678", 8)))
    routes = (RouteFact(4, ip_network("10.7.0.10/32"), 500, 8, scope=SCOPE_LINK),)
    table = NodeTable(500, routes, frozenset({4}))
    assert plan_del(CID, [ip_address("10.7.0.10")], node, table, host_peer=7) == ()
    assert plan_del(CID, [ip_address("10.7.0.10")], node, table, host_peer=None) == ()
    ours = RouteSpec(4, ip_network("10.7.0.10/32"), 500, "cali5678", None, None, SCOPE_LINK)
    assert plan_del(CID, [ip_address("10.7.0.10")], node, table, host_peer=8) == (
        DeleteRoute(NODE, ours), DeleteRule(NODE, RuleSpec(4, 500, 1000)))


def test_cu08_node_addresses_of_the_pods_families_each_once() -> None:
    """CU08: the node's addresses for the pod: the kernel's sources first, then every interface but the excluded
    ones (lo, veth*, cali*, docker*, ...), only the pod's families, no duplicates."""
    node = NamespaceFacts(links=(link("lo", 1, "127.0.0.1/8"), link("ens192", 2, "10.6.0.1/24", "fd00::1/64"),
                                 link("docker0", 3, "172.17.0.1/16"), link("cali9", 4, "10.9.0.1/32"),
                                 link("br0", 5, "10.6.0.1/24", "192.168.1.1/24")))
    found = node_addresses(node, [ip_address("10.6.0.1"), ip_address("fd00::1")], frozenset({4}))
    assert found == (ip_address("10.6.0.1"), ip_address("192.168.1.1"))


def test_cu09_the_rendered_nad_coordinator_parses_as_meant() -> None:
    """CU09: the coordinator entry SpiderMultusConfig renders into a NAD (``core.multus_render``) reaches the plan as
    its spec meant: ``podDefaultRouteNIC`` (rendered as upstream's ``podDefaultRouteNic``), hijack CIDRs, MAC prefix,
    mode, policy routes; an empty spec leaves everything to the SpiderCoordinator."""
    spec = {"mode": "underlay", "podDefaultRouteNIC": "net1", "hijackCIDR": ["169.254.0.0/16"],
            "podMACPrefix": "0a:1b", "tunePodRoutes": False, "txQueueLen": 0, "podCIDRType": "none",
            "podRPFilter": 2, "policyRoutes": [{"dst": "10.10.0.0/16", "gw": "10.6.0.1"}]}
    conf = parse_coordinator_conf(coordinator_plugin(spec), API)
    assert (conf.mode, conf.pod_default_route_nic, conf.hijack_cidr, conf.mac_prefix, conf.tune_pod_routes,
            conf.pod_rp_filter) == ("underlay", "net1", (ip_network("169.254.0.0/16"),), "0a:1b", False, 2)
    assert [(str(r.dst), str(r.gw)) for r in conf.policy_routes] == [("10.10.0.0/16", "10.6.0.1")]
    assert parse_coordinator_conf(coordinator_plugin({}), API) == parse_coordinator_conf({}, API)
