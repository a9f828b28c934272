"""CNI data types: the typed request the agent serves, the neutral IPAM result, CNI error codes.

The neutral result is independent of CNI versions; ``spiderpool.core.cni_result`` renders it in the version a network
configuration asks for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Interface, IPv6Network
from typing import Final, TypeAlias

SUPPORTED_VERSIONS: Final = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
# The version of error replies when the configuration names none we can read.
FALLBACK_VERSION: Final = "1.1.0"

IpAddress: TypeAlias = IPv4Address | IPv6Address
IpInterface: TypeAlias = IPv4Interface | IPv6Interface
IpNetwork: TypeAlias = IPv4Network | IPv6Network


class CniCode(IntEnum):
    """CNI error codes (spec "Error" section, 0-99 reserved) and spiderpool's own (>= 100)."""

    INCOMPATIBLE_VERSION = 1
    UNSUPPORTED_FIELD = 2
    UNKNOWN_CONTAINER = 3
    INVALID_ENVIRONMENT = 4
    IO_FAILURE = 5
    DECODING_FAILURE = 6
    INVALID_CONFIG = 7
    INVALID_NETNS = 8
    TRY_AGAIN_LATER = 11
    NOT_AVAILABLE = 50
    NOT_AVAILABLE_DEGRADED = 51
    # CHECK: an address of prevResult is not (or differently) reserved for the pod.
    RESERVATION_MISMATCH = 100
    INTERNAL = 999


class CniCommand(StrEnum):
    ADD = "ADD"
    DEL = "DEL"
    CHECK = "CHECK"
    GC = "GC"
    STATUS = "STATUS"
    VERSION = "VERSION"


class CniError(Exception):
    """A failure reported to the runtime as a CNI error object; ``msg`` names the field and the offending value."""

    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(f"CNI error {code}: {msg}" + (f" ({details})" if details else ""))
        self.code = code
        self.msg = msg
        self.details = details


@dataclass(frozen=True, slots=True)
class IpamConfig:
    """The ``ipam`` block of the network configuration, upstream's keys; absent keys take upstream's defaults."""

    type: str = ""
    log_level: str = "info"
    log_file_path: str = "/var/log/spidernet/spiderpool.log"
    # As configured: upstream's code reads ints, its docs show strings such as "100M" or "30d"; both are accepted.
    log_file_max_size: int | str = 100
    log_file_max_age: int | str = 30
    log_file_max_count: int | str = 7
    default_ipv4_ippool: tuple[str, ...] = ()
    default_ipv6_ippool: tuple[str, ...] = ()
    clean_gateway: bool = False
    match_master_subnet: bool = False
    ipam_unix_socket_path: str = "/var/run/spidernet/spiderpool.sock"


@dataclass(frozen=True, slots=True)
class K8sArgs:
    """The Kubernetes keys of CNI_ARGS (kubelet/CRI set the K8S_POD_* ones)."""

    pod_namespace: str | None = None
    pod_name: str | None = None
    pod_infra_container_id: str | None = None
    pod_uid: str | None = None
    # Upstream's K8sArgs also accepts IP=<address>; kept so such CNI_ARGS are not rejected.
    requested_ip: IpAddress | None = None


@dataclass(frozen=True, slots=True)
class Attachment:
    """One entry of GC's ``cni.dev/valid-attachments``: an attachment the runtime still uses."""

    container_id: str
    ifname: str


@dataclass(frozen=True, slots=True)
class IpConfig:
    address: IpInterface
    gateway: IpAddress | None = None

    @property
    def version(self) -> int:
        return self.address.version


@dataclass(frozen=True, slots=True)
class Route:
    dst: IpNetwork
    gw: IpAddress | None = None
    # CNI 1.1.0 route attributes; dropped when rendering older versions.
    mtu: int | None = None
    advmss: int | None = None
    priority: int | None = None
    table: int | None = None
    scope: int | None = None


@dataclass(frozen=True, slots=True)
class Dns:
    nameservers: tuple[str, ...] = ()
    domain: str = ""
    search: tuple[str, ...] = ()
    options: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        return not (self.nameservers or self.domain or self.search or self.options)


@dataclass(frozen=True, slots=True)
class IpamResult:
    """What an IPAM ADD hands out (or CHECK finds held) for one pod interface, in no particular CNI version."""

    ips: tuple[IpConfig, ...]
    routes: tuple[Route, ...] = ()
    dns: Dns = field(default_factory=Dns)


@dataclass(frozen=True, slots=True)
class PrevResultIp:
    address: IpInterface
    # Name of the interface the address is on; None for IPAM-style entries that name no interface.
    interface_name: str | None


@dataclass(frozen=True, slots=True)
class CniRequest:
    """A validated CNI invocation. Variables a command does not require are None when unset."""

    command: CniCommand
    cni_version: str
    network_name: str
    container_id: str | None
    netns: str | None
    ifname: str | None
    cni_path: tuple[str, ...]
    ipam: IpamConfig
    k8s: K8sArgs
    # CHECK only (required there); None for other commands.
    prev_result: tuple[PrevResultIp, ...] | None = None
    # GC only: the attachments to keep; None for other commands.
    valid_attachments: tuple[Attachment, ...] | None = None
    # The whole network configuration as received; unknown fields pass through untouched.
    config: Mapping[str, object] = field(default_factory=dict)
