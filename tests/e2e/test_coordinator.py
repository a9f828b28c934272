"""The ``coordinator`` chained after Debian's macvlan (and after ``ptp`` as an overlay eth0), its host side in the
simulated node's namespace (case IDs in docs/e2e-cases.md; modes in docs/coordinator.md)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from ipaddress import ip_address, ip_interface
from typing import Any

import pytest

from spiderpool.agent.netns import socket_in_netns
from spiderpool.testbed.members import SimulatedNode, SimulatedPod
from spiderpool.testbed.netconf import host_local_ipam, macvlan_config, spiderpool_ipam
from spiderpool.testbed.netns import in_netns, netns_path, run_command, run_ip
from spiderpool.testbed.netns_state import interface_names, probe_tcp, read_routes
from spiderpool.testbed.testbed import Testbed

from .support import Pools, eventually, unique

pytestmark = pytest.mark.e2e

NODE_ADDRESS = "10.250.81.1"
SERVICE_ADDRESS = "10.250.82.10"  # on the node's lo: a "Service" the node answers for
SERVICE_CIDR = "10.250.82.0/24"
ETH_P_ARP = 0x0806


@pytest.fixture
async def coordinator(bed: Testbed) -> AsyncIterator[None]:
    """A Synced ``default`` SpiderCoordinator (the plugin refuses to run without one, as upstream's); removed after."""
    store: Any = bed.stores.coordinators
    created = await store.create({"metadata": {"name": "default"}, "spec": {
        "mode": "auto", "podCIDRType": "none", "tunePodRoutes": True, "podRPFilter": 0, "hostRuleTable": 500,
        "vethLinkAddress": "", "txQueueLen": 0}})
    await store.replace_status({**created, "status": {"phase": "Synced", "serviceCIDR": [], "overlayPodCIDR": []}})
    yield
    await store.delete("default")


def _node_tables(node: SimulatedNode) -> tuple[str, str, str]:
    """The node's rules, table 500 and main table, as ``ip`` prints them."""
    return (run_ip("rule", "show", netns=node.netns), run_ip("route", "show", "table", "all", netns=node.netns),
            run_ip("-6", "route", "show", "table", "all", netns=node.netns))


async def _underlay_node(bed: Testbed, name: str) -> SimulatedNode:
    node = await bed.add_node(unique(f"{bed.prefix}-{name}"))
    run_ip("addr", "add", f"{NODE_ADDRESS}/24", "dev", "ens192", netns=node.netns)
    run_ip("addr", "add", f"{SERVICE_ADDRESS}/32", "dev", "lo", netns=node.netns)
    return node


def _coordinator_conf(network: Mapping[str, Any], prev: Mapping[str, Any], **keys: Any) -> dict[str, Any]:
    return {"cniVersion": network["cniVersion"], "name": network["name"], "type": "coordinator", **keys,
            "prevResult": dict(prev)}


async def _chain(bed: Testbed, pod: SimulatedPod, main: Mapping[str, Any], ifname: str = "eth0",
                 between: Callable[[], object] | None = None, **keys: Any) -> dict[str, Any]:
    """ADD of ``main`` then of the coordinator with its result as prevResult (a runtime running a conflist);
    ``between`` runs in between."""
    env = {"SPIDERPOOL_SOCKET": str(pod.node.socket_path)}
    added = await bed.cni.add(pod, main, ifname=ifname, extra_env=env)
    assert added.ok, added.describe()
    if between is not None:
        between()
    conf = _coordinator_conf(main, added.json(), **keys)
    chained = await bed.cni.pod_command(pod, "ADD", conf, ifname=ifname, extra_env=env)
    assert chained.ok, chained.describe()
    assert chained.json()["ips"] == added.json()["ips"]  # the coordinator passes prevResult on unchanged
    return conf


async def _coordinator_check(bed: Testbed, pod: SimulatedPod, conf: Mapping[str, Any], ifname: str = "eth0") -> None:
    run = await bed.cni.pod_command(pod, "CHECK", conf, ifname=ifname,
                                    extra_env={"SPIDERPOOL_SOCKET": str(pod.node.socket_path)})
    assert run.ok, run.describe()


async def _coordinator_del(bed: Testbed, pod: SimulatedPod, conf: Mapping[str, Any], ifname: str = "eth0") -> None:
    run = await bed.cni.pod_command(pod, "DEL", conf, ifname=ifname,
                                    extra_env={"SPIDERPOOL_SOCKET": str(pod.node.socket_path)})
    assert run.ok, run.describe()
    assert run.stdout == b""


async def test_co01_underlay_pods_reach_their_node_and_services(bed: Testbed, namespace: str, pools: Pools,
                                                               coordinator: None) -> None:
    """CO01: underlay mode through the real chain (macvlan + spiderpool, then coordinator): each of two pods on one
    node reaches the node's address and a Service CIDR routed on the node (neither reachable over macvlan alone),
    and the other pod; the reply marks are in the pod's mangle table (not the host's); CHECK passes, and fails
    naming the node's route once it is gone; ``mode:
    disabled`` passes prevResult on and makes nothing; DEL (twice,
    and again once the sandbox is gone) leaves the node's rules and
    routes exactly as they were before the first pod."""
    pool = unique("co01-v4")
    await pools.create(pool, subnet="10.250.81.0/24", ips=["10.250.81.10-10.250.81.20"], gateway=NODE_ADDRESS)
    node = await _underlay_node(bed, "co01")
    before = _node_tables(node)
    network = macvlan_config(name="co01-macvlan", master="ens192", ipam=spiderpool_ipam(
        socket_path=node.socket_path, default_ipv4_ippool=[pool]))
    pods = [await bed.create_pod(node, name=f"co01-{i}", namespace=namespace) for i in range(2)]
    lone = await bed.create_pod(node, name="co01-lone", namespace=namespace)
    added = await bed.cni.add(lone, network)
    assert added.ok, added.describe()
    assert probe_tcp(lone.netns, ip_address(NODE_ADDRESS), wait=0.5) != "answered"  # macvlan isolates its parent
    await bed.remove_pod(lone)
    confs = [await _chain(bed, pod, network, serviceCIDR=[SERVICE_CIDR]) for pod in pods]
    for pod in pods:
        assert interface_names(pod.netns) == ["lo", "eth0", "veth0"]
        assert probe_tcp(pod.netns, ip_address(NODE_ADDRESS)) == "answered"
        assert probe_tcp(pod.netns, ip_address(SERVICE_ADDRESS)) == "answered"
        routes = {str(route.dst): route for route in read_routes(pod.netns, version=4)}
        assert routes[f"{NODE_ADDRESS}"].dev == "veth0"
        assert routes[SERVICE_CIDR].dev == "veth0"
    peer = ip_interface(run_ip("-4", "-o", "addr", "show", "dev", "eth0", netns=pods[1].netns).split()[3]).ip
    assert probe_tcp(pods[0].netns, peer) == "answered"
    rules = run_ip("rule", "show", netns=node.netns)
    assert "1000:\tfrom all lookup 500" in rules
    mangle = run_command(in_netns(pods[0].netns, ["iptables", "-t", "mangle", "-S"]))
    assert "-A PREROUTING -i veth0 -m conntrack --ctstate NEW -j MARK --set-xmark 0x1/0xffffffff" in mangle
    assert "1000:\tfrom all fwmark 0x1 lookup 100" in run_ip("rule", "show", netns=pods[0].netns)
    assert "veth0" not in run_command(["iptables", "-t", "mangle", "-S"])  # the test host's own: untouched
    checked = await bed.cni.pod_command(pods[0], "CHECK", confs[0], ifname="eth0",
                                        extra_env={"SPIDERPOOL_SOCKET": str(node.socket_path)})
    assert checked.ok, checked.describe()
    address = ip_interface(run_ip("-4", "-o", "addr", "show", "dev", "eth0", netns=pods[0].netns).split()[3]).ip
    run_ip("route", "del", f"{address}/32", "table", "500", netns=node.netns)  # something breaks it
    broken = await bed.cni.pod_command(pods[0], "CHECK", confs[0], ifname="eth0",
                                       extra_env={"SPIDERPOOL_SOCKET": str(node.socket_path)})
    assert not broken.ok
    assert f"the node has no route to {address}" in broken.json()["msg"]
    plain = await bed.create_pod(node, name="co01-disabled", namespace=namespace)
    await _chain(bed, plain, network, mode="disabled")  # prevResult passed on, nothing made
    assert interface_names(plain.netns) == ["lo", "eth0"]
    await bed.remove_pod(plain)
    for pod, conf in zip(pods, confs, strict=True):
        await _coordinator_del(bed, pod, conf)
        await _coordinator_del(bed, pod, conf)
        await bed.remove_pod(pod)
        await _coordinator_del(bed, pod, conf)  # the sandbox is gone: still a success
    assert _node_tables(node) == before


async def test_co02_overlay_nic_after_a_ptp_eth0(bed: Testbed, namespace: str, pools: Pools, coordinator: None,
                                               tmp_path: Any) -> None:
    """CO02: overlay mode (auto picks it: net1 after an eth0 that is not ours, no veth0): eth0 from Debian's ptp
    (a veth to the node) keeps the main table's default route, net1's routes move to table 101 with a rule from its
    address, the Service CIDR and the node are reached through eth0, the node routes net1's address back through
    eth0's host peer in table 500; CHECK passes; DEL removes that route and the rule, nothing else."""
    pool = unique("co02-v4")
    await pools.create(pool, subnet="10.250.83.0/24", ips=["10.250.83.10-10.250.83.20"], gateway="10.250.83.1")
    node = await _underlay_node(bed, "co02")
    overlay = {"cniVersion": "1.0.0", "name": "co02-ptp", "type": "ptp", "ipam": host_local_ipam(
        data_dir=tmp_path / "host-local", ranges=[[{"subnet": "10.250.84.0/24"}]])}
    network = macvlan_config(name="co02-macvlan", master="ens192", ipam=spiderpool_ipam(
        socket_path=node.socket_path, default_ipv4_ippool=[pool]))
    pod = await bed.create_pod(node, name="co02", namespace=namespace)
    ptp = await bed.cni.add(pod, overlay)
    assert ptp.ok, ptp.describe()
    before = _node_tables(node)
    conf = await _chain(bed, pod, network, ifname="net1", serviceCIDR=[SERVICE_CIDR])
    net1 = ip_interface(run_ip("-4", "-o", "addr", "show", "dev", "net1", netns=pod.netns).split()[3]).ip
    main = {str(route.dst): route.dev for route in read_routes(pod.netns, version=4)}
    assert main["default"] == "eth0"
    assert main[SERVICE_CIDR] == "eth0"
    assert "default" in {str(r.dst) for r in read_routes(pod.netns, version=4, table="101")}
    assert f"from {net1} lookup 101" in run_ip("rule", "show", netns=pod.netns)
    assert probe_tcp(pod.netns, ip_address(SERVICE_ADDRESS)) == "answered"
    assert f"{net1} dev veth" in run_ip("route", "show", "table", "500", netns=node.netns)
    await _coordinator_check(bed, pod, conf, ifname="net1")
    await _coordinator_del(bed, pod, conf, ifname="net1")
    assert _node_tables(node) == before


async def test_co03_second_underlay_nic_gets_a_policy_table(bed: Testbed, namespace: str, pools: Pools,
                                                            coordinator: None) -> None:
    """CO03: a two-NIC underlay pod (eth0 on ens192, net1 on ens224, each macvlan + spiderpool + coordinator): net1
    reuses veth0, its default route leaves the main table for table 101 (veth0, eth0, net1: 98 + 3) with
    ``from <net1> lookup 101``, table 101 routes the node's addresses through veth0; the node reaches both pod
    addresses (through the host veth) and the pod reaches the node's address on ens224; CHECK of net1 passes; DEL
    of net1 then eth0
    leaves the node's tables as they were."""
    first, second = unique("co03-a"), unique("co03-b")
    await pools.create(first, subnet="10.250.86.0/24", ips=["10.250.86.10-10.250.86.20"], gateway="10.250.86.1")
    await pools.create(second, subnet="10.250.87.0/24", ips=["10.250.87.10-10.250.87.20"], gateway="10.250.87.1")
    node = await bed.add_node(unique(f"{bed.prefix}-co03"))
    run_ip("addr", "add", "10.250.86.1/24", "dev", "ens192", netns=node.netns)
    run_ip("addr", "add", "10.250.87.1/24", "dev", "ens224", netns=node.netns)
    before = _node_tables(node)
    pod = await bed.create_pod(node, name="co03", namespace=namespace)
    networks = [macvlan_config(name=f"co03-{master}", master=master, ipam=spiderpool_ipam(
        socket_path=node.socket_path, default_ipv4_ippool=[pool])) for master, pool in
        (("ens192", first), ("ens224", second))]
    confs = [await _chain(bed, pod, networks[0]), await _chain(bed, pod, networks[1], ifname="net1")]
    assert interface_names(pod.netns) == ["lo", "eth0", "veth0", "net1"]
    net1 = ip_interface(run_ip("-4", "-o", "addr", "show", "dev", "net1", netns=pod.netns).split()[3]).ip
    eth0 = ip_interface(run_ip("-4", "-o", "addr", "show", "dev", "eth0", netns=pod.netns).split()[3]).ip
    main = {str(route.dst): route.dev for route in read_routes(pod.netns, version=4)}
    assert main["default"] == "eth0"
    table = {str(route.dst): route.dev for route in read_routes(pod.netns, version=4, table="101")}
    assert (table["default"], table["10.250.87.1"], table["10.250.86.1"]) == ("net1", "veth0", "veth0")
    assert f"from {net1} lookup 101" in run_ip("rule", "show", netns=pod.netns)
    assert probe_tcp(pod.netns, ip_address("10.250.87.1")) == "answered"
    assert probe_tcp(node.netns, net1) == "answered"
    assert probe_tcp(node.netns, eth0) == "answered"
    await _coordinator_check(bed, pod, confs[1], ifname="net1")
    await _coordinator_del(bed, pod, confs[1], ifname="net1")
    await _coordinator_del(bed, pod, confs[0])
    await bed.remove_pod(pod)
    assert _node_tables(node) == before


async def test_co04_mac_prefix_is_announced(bed: Testbed, namespace: str, pools: Pools, coordinator: None) -> None:
    """CO04: ``podMACPrefix``: the pod's eth0 gets the prefix + its IPv4 address's bytes, and a gratuitous ARP for
    the address from the new MAC (sender = target = the pod's address; the kernel's own announcement, arp_notify,
    turned off) reaches a host on the same segment (another node's ens192, listening with a packet socket made
    inside its namespace)."""
    pool = unique("co04-v4")
    await pools.create(pool, subnet="10.250.88.0/24", ips=["10.250.88.10"], gateway="10.250.88.1")
    node = await bed.add_node(unique(f"{bed.prefix}-co04"))
    run_ip("addr", "add", "10.250.88.1/24", "dev", "ens192", netns=node.netns)
    other = await bed.add_node(unique(f"{bed.prefix}-co04-other"), start_agent=False)
    listener = socket_in_netns(str(netns_path(other.netns)), socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
    network = macvlan_config(name="co04-macvlan", master="ens192", ipam=spiderpool_ipam(
        socket_path=node.socket_path, default_ipv4_ippool=[pool]))
    pod = await bed.create_pod(node, name="co04", namespace=namespace)
    with listener:
        listener.bind(("ens192", ETH_P_ARP))
        listener.setblocking(False)
        # macvlan sets arp_notify, so the kernel would announce a new MAC by itself: off, to see the coordinator's
        quiet = in_netns(pod.netns, ["sysctl", "-q", "-w", "net.ipv4.conf.eth0.arp_notify=0"])
        conf = await _chain(bed, pod, network, between=lambda: run_command(quiet), podMACPrefix="0a:1b")
        assert "link/ether 0a:1b:0a:fa:58:0a" in run_ip("-o", "link", "show", "dev", "eth0", netns=pod.netns)
        frames: list[bytes] = []

        async def announced() -> bool:
            with contextlib.suppress(BlockingIOError):
                while True:
                    frames.append(listener.recv(2048))
            wanted = bytes.fromhex("0a1b0afa580a"), ip_address("10.250.88.10").packed
            return any(f[20:22] in (b"\x00\x01", b"\x00\x02") and (f[22:28], f[28:32]) == wanted
                       and f[38:42] == wanted[1] for f in frames)

        await eventually(announced, what="a gratuitous ARP for 10.250.88.10 from 0a:1b:0a:fa:58:0a")
    await _coordinator_del(bed, pod, conf)


async def test_co05_dual_stack_underlay(bed: Testbed, namespace: str, pools: Pools, coordinator: None) -> None:
    """CO05: dual-stack underlay: the pod reaches the node's IPv4 and IPv6 addresses and an IPv4 and an IPv6 Service
    CIDR through veth0; the node has the pref-1000 rule for both families and routes both pod addresses back; the
    reply marks are in both of the pod's mangle tables; DEL leaves the node's tables as they were."""
    v4, v6 = unique("co05-v4"), unique("co05-v6")
    await pools.create(v4, subnet="10.250.89.0/24", ips=["10.250.89.10-10.250.89.20"], gateway="10.250.89.1")
    await pools.create(v6, subnet="fd00:250:89::/64", ips=["fd00:250:89::10-fd00:250:89::20"],
                       gateway="fd00:250:89::1")
    node = await bed.add_node(unique(f"{bed.prefix}-co05"))
    for address, device in (("10.250.89.1/24", "ens192"), ("fd00:250:89::1/64", "ens192"),
                            ("10.250.90.10/32", "lo"), ("fd00:250:90::10/128", "lo")):
        run_ip("addr", "add", address, "dev", device, netns=node.netns)
    before = _node_tables(node)
    network = macvlan_config(name="co05-macvlan", master="ens192", ipam=spiderpool_ipam(
        socket_path=node.socket_path, default_ipv4_ippool=[v4], default_ipv6_ippool=[v6]))
    pod = await bed.create_pod(node, name="co05", namespace=namespace)
    conf = await _chain(bed, pod, network, serviceCIDR=["10.250.90.0/24", "fd00:250:90::/64"])
    for target in ("10.250.89.1", "fd00:250:89::1", "10.250.90.10", "fd00:250:90::10"):
        assert probe_tcp(pod.netns, ip_address(target)) == "answered", target
    routes6 = {str(route.dst): route.dev for route in read_routes(pod.netns, version=6)}
    assert (routes6["fd00:250:89::1"], routes6["fd00:250:90::/64"]) == ("veth0", "veth0")
    rules = run_ip("-6", "rule", "show", netns=node.netns)
    assert "1000:\tfrom all lookup 500" in rules
    assert "fd00:250:89::10 dev veth" in run_ip("-6", "route", "show", "table", "500", netns=node.netns)
    mangle6 = run_command(in_netns(pod.netns, ["ip6tables", "-t", "mangle", "-S"]))
    assert "-A PREROUTING -i veth0 -m conntrack --ctstate NEW -j MARK --set-xmark 0x1/0xffffffff" in mangle6
    await _coordinator_del(bed, pod, conf)
    await bed.remove_pod(pod)
    assert _node_tables(node) == before


async def test_co06_parallel_adds_and_dels_on_one_node(bed: Testbed, namespace: str, pools: Pools,
                                                       coordinator: None) -> None:
    """CO06: eight pods' chains ADDed at once on one node (the agent runs their coordinator work in parallel):
    each pod reaches the node and the Service; then every coordinator DEL at once: the node's rules and routes are
    as they were (no rule removed under a live pod's route, none left behind)."""
    pool = unique("co06-v4")
    await pools.create(pool, subnet="10.250.91.0/24", ips=["10.250.91.10-10.250.91.40"], gateway="10.250.91.1")
    node = await bed.add_node(unique(f"{bed.prefix}-co06"))
    run_ip("addr", "add", "10.250.91.1/24", "dev", "ens192", netns=node.netns)
    run_ip("addr", "add", "10.250.92.10/32", "dev", "lo", netns=node.netns)
    before = _node_tables(node)
    network = macvlan_config(name="co06-macvlan", master="ens192", ipam=spiderpool_ipam(
        socket_path=node.socket_path, default_ipv4_ippool=[pool]))
    pods = [await bed.create_pod(node, name=f"co06-{i}", namespace=namespace) for i in range(8)]
    confs = await asyncio.gather(*(_chain(bed, pod, network, serviceCIDR=["10.250.92.0/24"]) for pod in pods))
    for pod in pods:
        assert probe_tcp(pod.netns, ip_address("10.250.91.1")) == "answered"
        assert probe_tcp(pod.netns, ip_address("10.250.92.10")) == "answered"
    await asyncio.gather(*(_coordinator_del(bed, pod, conf) for pod, conf in zip(pods, confs, strict=True)))
    assert _node_tables(node) == before


async def test_cor01_stale_del_leaves_the_route_of_the_pod_that_has_the_address_now(
        bed: Testbed, namespace: str, pools: Pools, coordinator: None) -> None:
    """COR01: a DEL of a sandbox that is gone (a kubelet retrying the DEL of a pod whose address leak collection
    has since given to another pod on the node) names in its prevResult the address the other pod holds now: it
    succeeds and leaves that pod's host route, rule and reachability as they were."""
    pool = unique("cor01-v4")
    await pools.create(pool, subnet="10.250.91.0/24", ips=["10.250.91.10-10.250.91.20"], gateway="10.250.91.1")
    node = await bed.add_node(unique(f"{bed.prefix}-cor01"))
    run_ip("addr", "add", "10.250.91.1/24", "dev", "ens192", netns=node.netns)
    network = macvlan_config(name="cor01-macvlan", master="ens192", ipam=spiderpool_ipam(
        socket_path=node.socket_path, default_ipv4_ippool=[pool]))
    gone = await bed.create_pod(node, name="cor01-gone", namespace=namespace)
    await bed.remove_pod(gone)  # its sandbox and namespace are gone; its DEL comes again below
    holder = await bed.create_pod(node, name="cor01-holder", namespace=namespace)
    conf = await _chain(bed, holder, network)
    before = _node_tables(node)
    assert "10.250.91." in run_ip("route", "show", "table", "500", netns=node.netns)

    stale = await bed.cni.pod_command(gone, "DEL", _coordinator_conf(network, conf["prevResult"]), ifname="eth0",
                                      extra_env={"SPIDERPOOL_SOCKET": str(node.socket_path)})

    assert stale.ok, stale.describe()
    assert _node_tables(node) == before
    assert probe_tcp(holder.netns, ip_address("10.250.91.1")) == "answered"
    await _coordinator_del(bed, holder, conf)
