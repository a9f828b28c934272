"""Netlink for the coordinator (pyroute2): read a namespace into ``core.coordinator_facts`` and apply planned steps.

pyroute2 opens its socket lazily, once per thread, in the namespace of the thread that first uses it; so every
function here runs entirely on one thread that is already in the right namespace (``agent.netns.run_in_netns``
for a pod, the node's own thread otherwise) and creates and closes its ``IPRoute`` there. Nothing here decides
anything: the steps come from ``core.coordinator_plan``/``core.coordinator_teardown``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import subprocess
import threading
from collections.abc import Iterable, Sequence
from ipaddress import ip_address, ip_interface, ip_network
from pathlib import Path
from typing import IO, Any, Final

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from spiderpool.agent.neighbor_probe import announce
from spiderpool.core.cni_types import IpAddress, IpInterface
from spiderpool.core.coordinator_facts import (
    AddAddress,
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
from spiderpool.core.coordinator_teardown import NodeTable

logger = logging.getLogger("spiderpool.agent.coordinator")
_IFF_UP: Final = 0x1
_IFF_BROADCAST: Final = 0x2
_IFF_MULTICAST: Final = 0x1000
_NUD_PERMANENT: Final = 0x80
_FAMILY: Final = {4: socket.AF_INET, 6: socket.AF_INET6}
_VERSION: Final = {socket.AF_INET: 4, socket.AF_INET6: 6}
_GONE: Final = frozenset({errno.ENOENT, errno.ESRCH, errno.ENODEV, errno.EADDRNOTAVAIL})


def _usable(address: IpInterface) -> bool:
    return not (address.ip.is_link_local or address.ip.is_multicast)


def _addresses(ipr: Any) -> dict[int, list[IpInterface]]:
    found: dict[int, list[IpInterface]] = {}
    for message in ipr.get_addr():
        text = message.get_attr("IFA_LOCAL") or message.get_attr("IFA_ADDRESS")
        address = ip_interface(f"{text}/{message['prefixlen']}")
        if _usable(address):
            found.setdefault(message["index"], []).append(address)
    return found


def _links(ipr: Any) -> tuple[LinkFact, ...]:
    addresses = _addresses(ipr)
    links = []
    for message in ipr.get_links():
        flags = message["flags"]
        nic_like = bool(flags & _IFF_UP and flags & _IFF_BROADCAST and flags & _IFF_MULTICAST)
        links.append(LinkFact(
            name=message.get_attr("IFLA_IFNAME"), index=message["index"], mac=message.get_attr("IFLA_ADDRESS") or "",
            up=bool(flags & _IFF_UP), nic_like=nic_like, peer_index=message.get_attr("IFLA_LINK"),
            addresses=tuple(addresses.get(message["index"], ()))))
    return tuple(sorted(links, key=lambda link: link.index))


def _route(message: Any) -> RouteFact:
    family = _VERSION[message["family"]]
    dst = message.get_attr("RTA_DST")
    gateway, source = message.get_attr("RTA_GATEWAY"), message.get_attr("RTA_PREFSRC")
    hops = tuple((hop["oif"], ip_address(hop.get_attr("RTA_GATEWAY")) if hop.get_attr("RTA_GATEWAY") else None)
                 for hop in message.get_attr("RTA_MULTIPATH") or ())
    return RouteFact(
        family=family,
        dst=ip_network(f"{dst}/{message['dst_len']}") if dst is not None else None,
        table=message.get_attr("RTA_TABLE") or message["table"], dev_index=message.get_attr("RTA_OIF"),
        gateway=ip_address(gateway) if gateway else None, source=ip_address(source) if source else None,
        scope=message["scope"], nexthops=hops)


def _routes(ipr: Any, table: int) -> tuple[RouteFact, ...]:
    return tuple(_route(m) for m in ipr.get_routes(table=table) if m["family"] in _VERSION
                 and m["type"] == 1)  # unicast only (not local/broadcast)


def read_pod() -> NamespaceFacts:
    """The current thread's namespace: links with addresses and the main table."""
    with IPRoute() as ipr:
        return NamespaceFacts(links=_links(ipr), routes=_routes(ipr, 254))


def read_node(targets: Sequence[IpAddress], table: int) -> tuple[NamespaceFacts, tuple[IpAddress, ...], NodeTable]:
    """The node's links, its source address towards each of ``targets`` and its ``table`` (routes, rules)."""
    with IPRoute() as ipr:
        sources: list[IpAddress] = []
        for target in targets:
            try:
                answer = ipr.route("get", dst=str(target))
            except NetlinkError:
                continue  # unreachable from the node: upstream would fail; the node routes nothing there
            source = answer[0].get_attr("RTA_PREFSRC") if answer else None
            if source:
                sources.append(ip_address(source))
        node = NamespaceFacts(links=_links(ipr))
        return node, tuple(sources), NodeTable(table, _routes(ipr, table), _host_rule_families(ipr, table))


def _link_fact(message: Any) -> LinkFact:
    flags = message["flags"]
    return LinkFact(name=message.get_attr("IFLA_IFNAME"), index=message["index"],
                    mac=message.get_attr("IFLA_ADDRESS") or "", up=bool(flags & _IFF_UP),
                    peer_index=message.get_attr("IFLA_LINK"))


def _link_or_none(ipr: Any, **key: Any) -> LinkFact | None:
    try:
        return _link_fact(ipr.link("get", **key)[0])
    except NetlinkError as error:
        if error.code in _GONE:
            return None
        raise


def read_node_table(host_veth: str, table: int) -> tuple[NamespaceFacts, NodeTable]:
    """What a DEL needs of the node, without dumping every link and address (a node has hundreds): the host veth,
    the host table with its rules, and the links that table's routes use."""
    with IPRoute() as ipr:
        routes = _routes(ipr, table)
        rules = _host_rule_families(ipr, table)
        wanted = {route.dev_index for route in routes if route.dev_index is not None}
        links = [_link_or_none(ipr, ifname=host_veth), *(_link_or_none(ipr, index=index) for index in sorted(wanted))]
        unique = {link.index: link for link in links if link is not None}
        return NamespaceFacts(links=tuple(unique.values())), NodeTable(table, routes, rules)


def _host_rule_families(ipr: Any, table: int) -> frozenset[int]:
    return frozenset(
        _VERSION[m["family"]] for family in _FAMILY.values() for m in ipr.get_rules(family=family)
        if (m.get_attr("FRA_TABLE") or m["table"]) == table and m.get_attr("FRA_PRIORITY") == 1000
        and not m.get_attr("FRA_SRC") and not m.get_attr("FRA_DST") and not m.get_attr("FRA_FWMARK"))


def write_sysctl(key: str, value: str) -> None:
    """A sysctl of the current thread's namespace."""
    Path("/proc/sys", *key.split(".")).write_text(value)


_RESTORE: Final = {4: "iptables-restore", 6: "ip6tables-restore"}
_VETH_WAIT: Final = 30.0
_MARKS_WAIT: Final = 30.0  # an iptables-restore that takes longer is stuck: killed, and the ADD fails


def start_reply_marks(step: MarkReplies) -> list[tuple[str, subprocess.Popen[bytes]]]:
    """Start writing the mangle rules of ``step`` in the current thread's namespace (a child process inherits the
    thread's); ``finish_reply_marks`` waits for them."""
    mark = f"{step.mark:#08x}"
    rules = (f"*mangle\n-A PREROUTING -i {step.link} -m conntrack --ctstate NEW -j MARK --set-xmark {mark}\n"
             f"-A PREROUTING -m mark --mark {mark} -j CONNMARK --save-mark\n"
             "-A OUTPUT -j CONNMARK --restore-mark\nCOMMIT\n").encode()
    started: list[tuple[str, subprocess.Popen[bytes]]] = []
    for family in step.families:
        try:
            process = subprocess.Popen([_RESTORE[family], "--noflush"], stdin=subprocess.PIPE,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        except OSError as error:
            with contextlib.suppress(NetlinkError):  # this failure is the one to report
                finish_reply_marks(started)  # the families already started: no process left unreaped
            raise NetlinkError(errno.EIO, f"{_RESTORE[family]}: {error}") from error
        started.append((_RESTORE[family], process))
        stdin, process.stdin = process.stdin, None  # closed here: communicate() must not flush it
        if stdin is not None:  # always: stdin=PIPE
            _feed(stdin, rules)
    return started


def _feed(stdin: IO[bytes], data: bytes) -> None:
    """Write ``data`` and close; a process that already exited is reported by ``finish_reply_marks``."""
    try:
        stdin.write(data)
        stdin.flush()
    except BrokenPipeError:
        pass
    finally:
        with contextlib.suppress(BrokenPipeError):
            stdin.close()


def finish_reply_marks(started: Sequence[tuple[str, subprocess.Popen[bytes]]], *,
                       timeout: float = _MARKS_WAIT) -> None:
    """Wait for the processes of ``start_reply_marks``, each at most ``timeout`` seconds (a stuck one is killed and
    reaped); NetlinkError naming every one that failed or was killed."""
    failures = []
    for name, process in started:
        try:
            _, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            if process.stderr is not None:
                process.stderr.close()
            failures.append(f"{name}: did not finish within {timeout:g}s (killed)")
            continue
        if process.returncode != 0:
            failures.append(f"{name}: {(stderr or b'').decode(errors='replace').strip()}")
    if failures:
        raise NetlinkError(errno.EIO, "; ".join(failures))


def _index(ipr: Any, name: str) -> int:
    found = ipr.link_lookup(ifname=name)
    if not found:
        raise NetlinkError(errno.ENODEV, f"link {name} not found")
    return int(found[0])


def _route_args(ipr: Any, spec: RouteSpec) -> dict[str, Any]:
    args: dict[str, Any] = {"family": _FAMILY[spec.family], "table": spec.table, "scope": spec.scope}
    if spec.dst is not None:
        args["dst"] = str(spec.dst)
    if spec.link is not None:
        args["oif"] = _index(ipr, spec.link)
    if spec.gateway is not None:
        args["gateway"] = str(spec.gateway)
    if spec.source is not None:
        args["prefsrc"] = str(spec.source)
    return args


def _rule_args(spec: RuleSpec) -> dict[str, Any]:
    args: dict[str, Any] = {"family": _FAMILY[spec.family], "table": spec.table}
    if spec.priority is not None:
        args["priority"] = spec.priority
    if spec.source is not None:
        args |= {"src": str(spec.source.network_address), "src_len": spec.source.prefixlen}
    if spec.fwmark is not None:
        args["fwmark"] = spec.fwmark
    return args


def _tolerating(codes: Iterable[int], call: Any, *args: Any, **kwargs: Any) -> None:
    try:
        call(*args, **kwargs)
    except NetlinkError as error:
        if error.code not in codes:
            raise


def _apply(ipr: Any, step: Step, peer_netns_fd: int | None) -> None:
    match step:
        case SetLinkUp(link=link):
            ipr.link("set", index=_index(ipr, link), state="up")
        case CreateVeth():
            peer: dict[str, Any] = {"ifname": step.pod_name, "address": step.pod_mac, "mtu": step.mtu}
            if peer_netns_fd is not None:
                peer["net_ns_fd"] = peer_netns_fd
            ipr.link("add", ifname=step.host_name, kind="veth", address=step.host_mac, mtu=step.mtu, peer=peer)
        case DeleteLink(link=link):
            found = ipr.link_lookup(ifname=link)
            if found:
                _tolerating(_GONE, ipr.link, "del", index=found[0])
        case AddAddress(link=link, address=address):
            _tolerating({errno.EEXIST}, ipr.addr, "add", index=_index(ipr, link), address=str(address.ip),
                        prefixlen=address.network.prefixlen)
        case SetMac(link=link, mac=mac):
            ipr.link("set", index=_index(ipr, link), address=mac)
        case SetTxQueueLen(link=link, length=length):
            ipr.link("set", index=_index(ipr, link), txqlen=length)
        case SetSysctl(key=key, value=value):
            write_sysctl(key, value)
        case AddNeighbour(link=link, address=address, mac=mac):
            ipr.neigh("replace", dst=str(address), lladdr=mac, ifindex=_index(ipr, link), state=_NUD_PERMANENT)
        case AddRoute(route=route, replace=replace):
            if replace:
                ipr.route("replace", **_route_args(ipr, route))
            else:
                _tolerating({errno.EEXIST}, ipr.route, "add", **_route_args(ipr, route))
        case DeleteRoute(route=route):
            _tolerating(_GONE, ipr.route, "del", **_route_args(ipr, route))
        case AddRule(rule=rule):
            _tolerating({errno.EEXIST}, ipr.rule, "add", **_rule_args(rule))
        case DeleteRule(rule=rule):
            _tolerating(_GONE, ipr.rule, "del", **_rule_args(rule))
        case MarkReplies():
            pass  # started before the netlink steps (apply_steps)
        case Announce(link=link, addresses=addresses):
            try:
                announce(link, list(addresses))
            except OSError as error:  # upstream logs and goes on: the neighbours learn the MAC anyway
                logger.warning("coordinator: announcing %s on %s failed: %s", addresses, link, error)


def apply_steps(steps: Sequence[Step], *, peer_netns_fd: int | None = None, veth_made: threading.Event | None = None,
                wait_for_veth: bool = False) -> None:
    """Apply ``steps`` in order in the current thread's namespace; the first failure raises ``NetlinkError``.

    The node's side sets ``veth_made`` once its ``CreateVeth`` is done (or failed: always, when it returns); the
    pod's side (``wait_for_veth``) waits for it before its first netlink step. Reply marks start first, in parallel.
    """
    marks: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        for step in steps:
            if isinstance(step, MarkReplies):
                marks += start_reply_marks(step)
        if wait_for_veth and veth_made is not None and not veth_made.wait(_VETH_WAIT):
            raise NetlinkError(errno.ETIMEDOUT, "the node did not make the veth pair")
        _apply_all(steps, peer_netns_fd, None if wait_for_veth else veth_made)
    finally:
        if veth_made is not None and not wait_for_veth:
            veth_made.set()
        finish_reply_marks(marks)  # always waited for: no process left behind


def _apply_all(steps: Sequence[Step], peer_netns_fd: int | None, veth_made: threading.Event | None) -> None:
    if not any(not isinstance(step, MarkReplies) for step in steps):
        return
    with IPRoute() as ipr:
        for step in steps:
            try:
                _apply(ipr, step, peer_netns_fd)
            except NetlinkError as error:
                detail = error.args[1] if len(error.args) > 1 and error.args[1] else os.strerror(error.code)
                raise NetlinkError(error.code, f"{step}: {detail}") from error
            if isinstance(step, CreateVeth) and veth_made is not None:
                veth_made.set()
