"""The coordinator's ADD as data: from the completed netconf and what the pod's and the node's namespaces hold, the
steps upstream's ``coordinator`` plugin (v1.2.2, ``cmd/coordinator/cmd``) performs, in its order.

Underlay (the first NIC, ``eth0``): a veth pair ``veth0`` / ``veth<first 11 of the container id>`` between pod and
node; in the pod, routes to every node address through ``veth0`` (and static neighbours for them), the routed CIDRs
(overlay pod CIDR, service CIDR, hijack CIDR) through ``veth0`` via the node's address; on the node, the rule
``from all lookup <hostRuleTable> pref 1000`` and a route to each pod address through the host veth in that table.
A later underlay NIC (``net1``...) reuses ``veth0`` and gets a policy-routing table of its own (``98 + NICs``),
with its routes moved there when ``tunePodRoutes``. Overlay (a NIC after an overlay CNI's ``eth0``): the same
through ``eth0`` and its host peer, the overlay default route copied to table 100 for replies.

A new MAC (``podMACPrefix``) is announced with gratuitous ARP / unsolicited NA, as upstream does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, ip_interface, ip_network
from typing import Final

from spiderpool.core.cni_types import CniCode, CniError, IpAddress, IpInterface, IpNetwork
from spiderpool.core.coordinator_facts import (
    MAIN_TABLE,
    NODE,
    POD,
    SCOPE_LINK,
    AddAddress,
    AddNeighbour,
    AddRoute,
    AddRule,
    Announce,
    CreateVeth,
    LinkFact,
    MarkReplies,
    NamespaceFacts,
    RouteSpec,
    RuleSpec,
    SetLinkUp,
    SetMac,
    SetSysctl,
    SetTxQueueLen,
    Step,
)
from spiderpool.core.coordinator_moves import route_moves, source_rules
from spiderpool.core.coordinator_netconf import AUTO, DISABLED, OVERLAY, UNDERLAY, CoordinatorConf

UNDERLAY_VETH: Final = "veth0"
OVERLAY_NIC: Final = "eth0"
HOST_RULE_PRIORITY: Final = 1000
POD_RULE_TABLE: Final = 100
REPLY_MARK: Final = 1
# Node interfaces whose addresses the pod is not given a route to (upstream's DefaultNodeInterfacesToExclude,
# matched as Go's MatchString does: anywhere, the ^ anchors where written).
_NODE_EXCLUDED: Final = re.compile(
    r"(^docker.*)|(^cbr.*)|(^dummy.*)|(^virbr.*)|(^lxcbr.*)|(^veth.*)|(^lo$)|(^cali.*)|(^flannel.*)|(^kube-ipvs.*)"
    r"|(^cni.*)|(^vx-submariner)|(^cilium*)"
)


class CoordinatorRefused(CniError):
    """A pod the coordinator cannot set up as configured (upstream's messages)."""

    def __init__(self, msg: str) -> None:
        super().__init__(CniCode.INVALID_CONFIG, msg)


@dataclass(frozen=True, slots=True)
class AddInputs:
    conf: CoordinatorConf
    ifname: str
    container_id: str
    pod: NamespaceFacts
    node: NamespaceFacts
    # the node's source address towards each pod address (``ip route get``), in the pod addresses' order
    route_sources: tuple[IpAddress, ...]
    # MACs for a new veth pair (random, locally administered: chosen by the caller)
    pod_veth_mac: str
    host_veth_mac: str


@dataclass(frozen=True, slots=True)
class AddPlan:
    mode: str
    first_invoke: bool
    table: int
    pod_veth: str
    host_veth: str
    node_addresses: tuple[IpAddress, ...]
    steps: tuple[Step, ...]


def host_veth_name(container_id: str) -> str:
    return f"veth{container_id[:11]}"


def families(addresses: Iterable[IpInterface | IpAddress]) -> frozenset[int]:
    return frozenset(address.version for address in addresses)


def _max_prefix(address: IpAddress) -> IpNetwork:
    return ip_network(f"{address}/{address.max_prefixlen}")


def pod_addresses(pod: NamespaceFacts, ifname: str) -> tuple[IpAddress, ...]:
    """Every address of the pod (but lo's) of the families ``ifname`` has: what the node is asked routes to."""
    nic = _nic(pod, ifname)
    wanted = families(nic.addresses)
    return tuple(a.ip for link in pod.links if link.name != "lo" for a in link.addresses if a.version in wanted)


def _nic(pod: NamespaceFacts, ifname: str) -> LinkFact:
    nic = pod.link(ifname)
    if nic is None:
        raise CoordinatorRefused(f"pod interface {ifname} not found")
    if not nic.addresses:
        raise CoordinatorRefused(f"no usable IP addresses on {ifname!r}")
    return nic


def resolve_mode(conf: CoordinatorConf, ifname: str, pod: NamespaceFacts) -> tuple[str, bool, int]:
    """(mode, first invoke, policy-routing table) as upstream's coordinatorModeAndFirstInvoke decides them."""
    veth_exists = pod.link(UNDERLAY_VETH) is not None
    # upstream counts UP links after setting the NIC up: the NIC always counts
    nics = sum(1 for link in pod.links if link.nic_like or link.name == ifname)
    first_nic = conf.pod_default_cni_nic
    mode = conf.mode
    if mode == AUTO:
        mode = UNDERLAY if ifname == first_nic or veth_exists else OVERLAY
    if mode == UNDERLAY:
        first = ifname == first_nic
        if not first and not veth_exists:
            raise CoordinatorRefused(
                f"when creating interface {ifname} in underlay mode, it detects that the auxiliary interface "
                f"{first_nic} was not created by previous interface. please enable coordinator plugin in previous "
                "interface")
        return mode, first, POD_RULE_TABLE + 1 if first else nics + 98
    if mode == OVERLAY:
        if ifname == first_nic:
            raise CoordinatorRefused(
                f"when creating interface {ifname} in overlay mode, it detects that the current interface is first "
                f"interface named {first_nic}, this plugin should not work for it. please modify in the CNI "
                "configuration")
        if veth_exists:
            raise CoordinatorRefused(
                f"when creating interface {ifname} in overlay mode, it detects that the auxiliary interface "
                f"{UNDERLAY_VETH} of underlay mode exists. It seems that the previous interface work in underlay mode.")
        first = nics == 2
        return mode, first, POD_RULE_TABLE + 1 if first else nics + 99
    return DISABLED, False, 0


def node_addresses(node: NamespaceFacts, route_sources: Sequence[IpAddress], wanted: frozenset[int]) -> tuple[
        IpAddress, ...]:
    """Upstream's GetAllHostIPRouteForPod: the node's sources towards the pod first, then every address of the
    node's interfaces but the excluded ones, of the pod's families, each once."""
    found: list[IpAddress] = []
    for address in route_sources:
        if address.version in wanted and address not in found:
            found.append(address)
    for link in node.links:
        if _NODE_EXCLUDED.search(link.name):
            continue
        for interface in link.addresses:
            if interface.version in wanted and interface.ip not in found:
                found.append(interface.ip)
    return tuple(found)


def mac_with_prefix(prefix: str, address: IpAddress) -> str:
    """``prefix`` + the last four bytes of ``address`` (upstream's OverwriteHwAddress)."""
    tail = address.packed[-4:]
    return ":".join([prefix.replace("-", ":").lower(), *(f"{byte:02x}" for byte in tail)])


def _veths(inputs: AddInputs, mode: str, first: bool) -> tuple[str, str, str, str]:
    """(pod veth, host veth, pod veth MAC, host veth MAC)."""
    if mode == UNDERLAY and first:
        return UNDERLAY_VETH, host_veth_name(inputs.container_id), inputs.pod_veth_mac, inputs.host_veth_mac
    if mode == UNDERLAY:
        pod_veth, host_veth = UNDERLAY_VETH, host_veth_name(inputs.container_id)
        host_link = inputs.node.link(host_veth)
    else:
        pod_veth = OVERLAY_NIC
        peer = inputs.pod.link(OVERLAY_NIC)
        host_link = inputs.node.link_by_index(peer.peer_index) if peer and peer.peer_index is not None else None
        if host_link is None:
            raise CoordinatorRefused(f"failed to GetHostVethName: no host peer of the pod's {OVERLAY_NIC}")
        host_veth = host_link.name
    pod_link = inputs.pod.link(pod_veth)
    if pod_link is None or host_link is None:
        raise CoordinatorRefused(f"failed to GetHwAddressByName: {pod_veth} or {host_veth} not found")
    return pod_veth, host_veth, pod_link.mac, host_link.mac


def plan_add(inputs: AddInputs) -> AddPlan:
    conf, ifname, pod = inputs.conf, inputs.ifname, inputs.pod
    nic = _nic(pod, ifname)
    mode, first, table = resolve_mode(conf, ifname, pod)
    if mode == DISABLED:
        return AddPlan(mode, False, 0, "", "", (), ())
    wanted = families(nic.addresses)
    hosts = node_addresses(inputs.node, inputs.route_sources, wanted)
    pod_veth, host_veth, pod_mac, host_mac = _veths(inputs, mode, first)
    steps: list[Step] = [] if nic.up else [SetLinkUp(POD, ifname)]
    if mode == UNDERLAY and first:
        # the reply marks first: an iptables-restore process runs while netlink does the rest
        steps += [MarkReplies(UNDERLAY_VETH, tuple(sorted(wanted))),
                  CreateVeth(UNDERLAY_VETH, host_veth, conf.veth_mtu, pod_mac, host_mac), SetLinkUp(NODE, host_veth),
                  SetLinkUp(POD, pod_veth)]
        if wanted != {6} and conf.veth_link_address is not None:
            steps.append(AddAddress(POD, pod_veth, _as_interface(conf.veth_link_address)))
    steps += _nic_tuning(conf, nic, wanted)
    steps += [AddNeighbour(NODE, host_veth, address.ip, pod_mac) for address in nic.addresses]
    if first:
        steps += [AddNeighbour(POD, pod_veth, address, host_mac) for address in hosts]
    overlay_nic = pod.link(OVERLAY_NIC)
    source = next((a.ip for a in overlay_nic.addresses if a.version == 4), None) if overlay_nic else None
    steps += _host_routes(conf, nic, hosts, first, table, pod_veth, host_veth, source)
    steps += _routed_cidrs(conf, hosts, wanted, MAIN_TABLE if first else table, pod_veth, source)
    if mode == UNDERLAY and first:
        steps += _reply_marks(hosts, wanted, source)
    if conf.tune_pod_routes and (not first or mode == OVERLAY):
        steps += plan_route_tuning(conf, pod, ifname, mode, first, table)
    policy_table = MAIN_TABLE if mode == UNDERLAY and first else table
    steps += [AddRoute(POD, RouteSpec(r.dst.version, r.dst, policy_table, ifname, r.gw)) for r in conf.policy_routes
              if r.dst.version in wanted]
    return AddPlan(mode, first, table, pod_veth, host_veth, hosts, tuple(steps))


def _as_interface(address: IpAddress) -> IpInterface:
    return ip_interface(f"{address}/{address.max_prefixlen}")


def _nic_tuning(conf: CoordinatorConf, nic: LinkFact, wanted: frozenset[int]) -> list[Step]:
    steps: list[Step] = []
    if conf.mac_prefix:
        steps += [SetMac(POD, nic.name, mac_with_prefix(conf.mac_prefix, nic.addresses[0].ip)),
                  Announce(nic.name, tuple(address.ip for address in nic.addresses))]
    if conf.tx_queue_len > 0:
        steps.append(SetTxQueueLen(POD, nic.name, conf.tx_queue_len))
    if 6 in wanted:
        steps.append(SetSysctl(POD, "net.ipv6.conf.all.disable_ipv6", "0"))
    if conf.pod_rp_filter >= 0:
        steps.append(SetSysctl(POD, "net.ipv4.conf.all.rp_filter", str(conf.pod_rp_filter)))
    return steps


def _host_routes(conf: CoordinatorConf, nic: LinkFact, hosts: Sequence[IpAddress], first: bool, table: int,
                 pod_veth: str, host_veth: str, source: IpAddress | None) -> list[Step]:
    steps: list[Step] = []
    for host in hosts:
        src = source if isinstance(host, IPv4Address) else None
        tables = (table, MAIN_TABLE) if first else (table,)
        steps += [AddRoute(POD, RouteSpec(host.version, _max_prefix(host), t, pod_veth, None, src, SCOPE_LINK))
                  for t in tables]
    steps += [AddRule(NODE, RuleSpec(family, conf.host_rule_table, HOST_RULE_PRIORITY))
              for family in sorted(families(nic.addresses))]
    steps += [AddRoute(NODE, RouteSpec(a.version, _max_prefix(a.ip), conf.host_rule_table, host_veth, None, None,
                                       SCOPE_LINK), replace=True) for a in nic.addresses]
    return steps


def _routed_cidrs(conf: CoordinatorConf, hosts: Sequence[IpAddress], wanted: frozenset[int], table: int,
                  pod_veth: str, source: IpAddress | None) -> list[Step]:
    gateways = {family: next((h for h in hosts if h.version == family), None) for family in wanted}
    steps: list[Step] = []
    for cidr in conf.routed_cidrs:
        gateway = gateways.get(cidr.version)
        if gateway is None:
            continue  # upstream: "ignore adding hijack routing table, due to gateway is nil"
        src = source if cidr.version == 4 else None
        steps.append(AddRoute(POD, RouteSpec(cidr.version, cidr, table, pod_veth, gateway, src)))
    return steps


def _reply_marks(hosts: Sequence[IpAddress], wanted: frozenset[int], source: IpAddress | None) -> list[Step]:
    """Replies to connections that came in through veth0 (NodePort traffic the node forwarded) leave through it:
    marked connections look up table 100, whose default route is veth0 via the node."""
    steps: list[Step] = []
    for family in sorted(wanted):
        gateway = next((h for h in hosts if h.version == family), None)
        steps += [AddRule(POD, RuleSpec(family, POD_RULE_TABLE, HOST_RULE_PRIORITY, fwmark=REPLY_MARK)),
                  AddRoute(POD, RouteSpec(family, None, POD_RULE_TABLE, UNDERLAY_VETH, gateway,
                                          source if family == 4 else None))]
    return steps


def default_route_nic(pod: NamespaceFacts, wanted: frozenset[int], skip: str) -> str:
    """The first NIC (but lo and ``skip``) holding a main-table default route (upstream's GetDefaultRouteInterface)."""
    for link in pod.links:
        if link.name in ("lo", skip):
            continue
        for route in pod.routes:
            if route.table != MAIN_TABLE or route.family not in wanted:
                continue
            on_link = route.dev_index == link.index and route.dst is None
            if on_link or any(index == link.index for index, _ in route.nexthops):
                return link.name
    return ""


def plan_route_tuning(conf: CoordinatorConf, pod: NamespaceFacts, ifname: str, mode: str, first: bool,
                      table: int) -> list[Step]:
    """Upstream's tunePodRoutes: the default-route NIC keeps the main table; the other NIC's routes move to
    ``table``, with ``from <its addresses> lookup <table>`` rules."""
    wanted = families(_nic(pod, ifname).addresses)
    default_nic = default_route_nic(pod, wanted, ifname)
    if not default_nic:
        return []
    chosen = conf.pod_default_route_nic
    if not chosen or chosen == default_nic:
        chosen, moving = default_nic, ifname
    else:
        if pod.link(chosen) is None:
            raise CoordinatorRefused(f"podDefaultRouteNIC: {chosen} don't exist in pod")
        moving = default_nic
    default_addresses = [a for a in _nic(pod, default_nic).addresses if a.version in wanted]
    steps: list[Step] = []
    if chosen == ifname:
        steps += source_rules(default_addresses, table)
    else:
        steps += source_rules([a for a in _nic(pod, ifname).addresses if a.version in wanted], table)
        if mode == OVERLAY and first:
            steps += source_rules(default_addresses, POD_RULE_TABLE)
            steps += route_moves(pod, OVERLAY_NIC, wanted, POD_RULE_TABLE, only_default=True)
    steps += route_moves(pod, moving, wanted, table, only_default=False)
    return steps
