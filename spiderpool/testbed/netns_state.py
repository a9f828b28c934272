"""What a network namespace holds, read with ``ip -j`` from inside it: an interface's addresses, kind and MAC; routes.

This is what the tests assert on: the addresses a pod really has, not what a plugin claimed to configure.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface, ip_address, ip_interface
from typing import Any, Literal

from spiderpool.testbed.netns import in_netns, run_command, run_ip

IPInterface = IPv4Interface | IPv6Interface
IPAddress = IPv4Address | IPv6Address


@dataclass(frozen=True, slots=True)
class InterfaceState:
    name: str
    kind: str  # "macvlan", "veth", ... ("" for a device without link info, e.g. loopback)
    mac: str
    up: bool
    addresses: tuple[IPInterface, ...]  # global scope only, in kernel order

    def of_version(self, version: Literal[4, 6]) -> tuple[IPInterface, ...]:
        return tuple(address for address in self.addresses if address.version == version)


@dataclass(frozen=True, slots=True)
class RouteEntry:
    dst: str  # "default" or a CIDR, as ip prints it
    gateway: IPAddress | None
    dev: str

    @property
    def is_default(self) -> bool:
        return self.dst == "default"


def _ip_json(*args: str, netns: str) -> list[dict[str, Any]]:
    text = run_ip("-j", *args, netns=netns).strip()
    decoded = json.loads(text) if text else []
    return [entry for entry in decoded if isinstance(entry, dict)]


def read_interface(netns: str, ifname: str) -> InterfaceState:
    """The interface ``ifname`` in ``netns``; NetnsError when it does not exist."""
    link = _ip_json("-d", "link", "show", "dev", ifname, netns=netns)[0]
    entries = _ip_json("address", "show", "dev", ifname, netns=netns)
    infos = entries[0].get("addr_info", []) if entries else []
    addresses = tuple(
        ip_interface(f"{info['local']}/{info['prefixlen']}") for info in infos if info.get("scope") == "global"
    )
    return InterfaceState(
        name=ifname,
        kind=str(link.get("linkinfo", {}).get("info_kind", "")),
        mac=str(link.get("address", "")),
        up="UP" in link.get("flags", []),
        addresses=addresses,
    )


def interface_names(netns: str) -> list[str]:
    return [str(link["ifname"]) for link in _ip_json("link", "show", netns=netns)]


def read_routes(netns: str, *, version: Literal[4, 6], table: str = "main") -> list[RouteEntry]:
    """The routes of one family; link-local (fe80::/64) and multicast entries of IPv6 are left out."""
    entries = _ip_json(f"-{version}", "route", "show", "table", table, netns=netns)
    routes = []
    for entry in entries:
        dst = str(entry.get("dst", ""))
        if dst.startswith(("fe80:", "ff00:", "multicast")):
            continue
        gateway = entry.get("gateway")
        routes.append(RouteEntry(dst, ip_address(gateway) if gateway else None, str(entry.get("dev", ""))))
    return routes


def default_gateway(netns: str, *, version: Literal[4, 6]) -> IPAddress | None:
    """The gateway of the default route of that family, None without one."""
    for route in read_routes(netns, version=version):
        if route.is_default:
            return route.gateway
    return None


_TCP_PROBE = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))
    print("answered")
except ConnectionRefusedError:
    print("answered")
except OSError as error:
    print(type(error).__name__)
"""


def probe_tcp(netns: str, address: IPAddress, *, port: int = 9, wait: float = 2.0) -> str:
    """Connect from inside ``netns`` to ``address``: "answered" (accepted or refused: either way a reply came back
    across the network) or the name of the error (e.g. "TimeoutError" when nothing answered)."""
    argv = [sys.executable, "-c", _TCP_PROBE, str(address), str(port), str(wait)]
    return run_command(in_netns(netns, argv)).strip()
