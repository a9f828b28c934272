"""The ``coordinator`` plugin's network configuration, completed from the SpiderCoordinator (upstream's ParseConfig).

Every key of upstream's ``cmd/coordinator/cmd.Config``; a key the netconf leaves out takes the agent's coordinator
config (``GET /v1/coordinator/config``, ``core.coordinator_config``), then upstream's default. Keys are matched
case-insensitively, as Go's ``encoding/json`` does (upstream's tag is ``podDefaultRouteNic``; SpiderCoordinator
and the issue spell it ``podDefaultRouteNIC``: both work). ``detectIPConflict``/``detectGateway`` and ``logOptions``
are accepted and not used here (detection belongs to the IPAM ADD; the agent logs).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import ip_address, ip_network
from typing import Any, Final

from spiderpool.core.cni_types import CniCode, CniError, IpAddress, IpNetwork

UNDERLAY: Final = "underlay"
OVERLAY: Final = "overlay"
AUTO: Final = "auto"
DISABLED: Final = "disabled"
# Upstream's plugin calls it "disable" while SpiderCoordinator's enum says "disabled" (which upstream's plugin then
# refuses as an unknown mode): both mean disabled here.
_MODES: Final = {AUTO: AUTO, UNDERLAY: UNDERLAY, OVERLAY: OVERLAY, DISABLED: DISABLED, "disable": DISABLED}
_MAC_PREFIX: Final = re.compile(r"[a-fA-F0-9][a-fA-F0,2-9][:-][a-fA-F0-9]{2}")
DEFAULT_HOST_RULE_TABLE: Final = 500
DEFAULT_VETH_MTU: Final = 1500


@dataclass(frozen=True, slots=True)
class PolicyRoute:
    dst: IpNetwork
    gw: IpAddress


@dataclass(frozen=True, slots=True)
class CoordinatorConf:
    """The completed configuration one ADD/DEL/CHECK works with."""

    mode: str
    pod_default_cni_nic: str = "eth0"
    veth_link_address: IpAddress | None = None
    veth_mtu: int = DEFAULT_VETH_MTU
    mac_prefix: str = ""
    overlay_pod_cidr: tuple[IpNetwork, ...] = ()
    service_cidr: tuple[IpNetwork, ...] = ()
    hijack_cidr: tuple[IpNetwork, ...] = ()
    policy_routes: tuple[PolicyRoute, ...] = ()
    tune_pod_routes: bool = False
    pod_default_route_nic: str = ""
    host_rule_table: int = DEFAULT_HOST_RULE_TABLE
    pod_rp_filter: int = 0  # negative: leave the pod's rp_filter alone
    tx_queue_len: int = 0

    @property
    def routed_cidrs(self) -> tuple[IpNetwork, ...]:
        """What the pod reaches through the node (upstream's order: overlay pod CIDR, service CIDR, hijack CIDR)."""
        return self.overlay_pod_cidr + self.service_cidr + self.hijack_cidr


def _invalid(message: str) -> CniError:
    return CniError(CniCode.INVALID_CONFIG, message)


def _folded(config: Mapping[str, object]) -> dict[str, object]:
    return {key.lower(): value for key, value in config.items()}


def _cidrs(name: str, value: object) -> tuple[IpNetwork, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _invalid(f"{name}: expected a list of CIDRs, got {value!r}")
    networks = []
    for item in value:
        text = str(item).strip()
        try:
            if "/" not in text:  # Go's ParseCIDR wants a prefix length
                raise ValueError("no prefix length")
            networks.append(ip_network(text, strict=False))
        except ValueError:
            raise _invalid(f"{name}: invalid CIDR address: {text}") from None
    return tuple(networks)


def _policy_routes(value: object) -> tuple[PolicyRoute, ...]:
    routes = []
    for item in value if isinstance(value, list) else []:
        entry = item if isinstance(item, Mapping) else {}
        dst_text, gw_text = str(entry.get("dst") or "").strip(), str(entry.get("gw") or "").strip()
        try:
            dst = ip_network(dst_text, strict=False)
        except ValueError:
            raise _invalid(f"policyRoutes: invalid route dst {dst_text!r}") from None
        try:
            gw = ip_address(gw_text)
        except ValueError:
            raise _invalid(f"policyRoutes: invalid route gw {gw_text!r}") from None
        if dst.version != gw.version:
            raise _invalid(f"policyRoutes: route dst {dst_text!r} and gw {gw_text!r} must use the same IP family")
        routes.append(PolicyRoute(dst, gw))
    return tuple(routes)


def _int(name: str, value: object, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise _invalid(f"{name}: expected an integer, got {value!r}")
    return int(value)


def _first(conf: Mapping[str, object], api: Mapping[str, Any], key: str) -> object:
    """The netconf's value when set (and not empty), else the coordinator config's."""
    value = conf.get(key.lower())
    return value if value not in (None, "", []) else api.get(key)


def _mode(conf: Mapping[str, object], api: Mapping[str, Any]) -> str:
    text = _first(conf, api, "mode")
    mode = _MODES.get(str(text)) if text is not None else None
    if mode is None:
        raise _invalid(f"mode: unknown tuneMode: {text}, expected one of auto, underlay, overlay, disabled")
    return mode


def _veth_mtu(conf: Mapping[str, object], api: Mapping[str, Any]) -> int:
    if conf.get("vethmtu") is not None:
        mtu = _int("vethMTU", conf["vethmtu"], 0)
        if mtu <= 0:
            raise _invalid("vethMTU must be greater than 0")
        return mtu
    from_api = _int("vethMTU", api.get("vethMTU"), 0)
    return from_api if from_api > 0 else DEFAULT_VETH_MTU


def _rp_filter(conf: Mapping[str, object], api: Mapping[str, Any]) -> int:
    value = _int("podRPFilter", conf.get("podrpfilter"), _int("podRPFilter", api.get("podRPFilter"), 0))
    if value > 2:
        raise _invalid(f"podRPFilter: invalid rp_filter value {value}, available options: [-1,0,1,2]")
    return value


def _mac_prefix(conf: Mapping[str, object], api: Mapping[str, Any]) -> str:
    prefix = str(_first(conf, api, "podMACPrefix") or "")
    if prefix and not _MAC_PREFIX.fullmatch(prefix):
        raise _invalid(f"podMACPrefix: {prefix!r} must match [a-fA-F0-9][a-fA-F0,2-9][:][a-fA-F0-9]{{2}}, like '0a:1b'")
    return prefix


def _link_address(text: object) -> IpAddress | None:
    if not text:
        return None
    try:
        return ip_address(str(text))
    except ValueError:
        raise _invalid(f"vethLinkAddress: not an IP address: {text!r}") from None


def parse_coordinator_conf(config: Mapping[str, object], api: Mapping[str, Any]) -> CoordinatorConf:
    """Upstream's ParseConfig: ``config`` is the plugin's netconf, ``api`` the agent's coordinator config JSON."""
    conf = _folded(config)
    host_table = conf.get("hostruletable")
    tune = conf.get("tunepodroutes")
    return CoordinatorConf(
        mode=_mode(conf, api),
        pod_default_cni_nic=str(conf.get("poddefaultcninic") or "eth0"),
        veth_link_address=_link_address(_first(conf, api, "vethLinkAddress")),
        veth_mtu=_veth_mtu(conf, api),
        mac_prefix=_mac_prefix(conf, api),
        overlay_pod_cidr=_cidrs("overlayPodCIDR", _first(conf, api, "overlayPodCIDR")),
        service_cidr=_cidrs("serviceCIDR", _first(conf, api, "serviceCIDR")),
        hijack_cidr=_cidrs("hijackCIDR", _first(conf, api, "hijackCIDR")),
        policy_routes=_policy_routes(_first(conf, api, "policyRoutes")),
        tune_pod_routes=bool(tune if tune is not None else api.get("tunePodRoutes")),
        pod_default_route_nic=str(_first(conf, api, "podDefaultRouteNIC") or ""),
        host_rule_table=_int("hostRuleTable", host_table, 0) or _int("hostRuleTable", api.get("hostRuleTable"), 0)
        or DEFAULT_HOST_RULE_TABLE,
        pod_rp_filter=_rp_filter(conf, api),
        tx_queue_len=_int("txQueueLen", _first(conf, api, "txQueueLen"), 0),
    )
