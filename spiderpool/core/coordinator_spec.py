"""SpiderCoordinator spec: upstream's defaults (``mutateCoordinator``) and validation (``ValidateCoordinatorSpec``).

The same validation runs on a SpiderCoordinator (``require_optional=True``: ``podCIDRType`` and ``podRPFilter`` must
be set) and on a SpiderMultusConfig's ``spec.coordinator`` override (``require_optional=False``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from ipaddress import ip_address, ip_interface
from typing import Any, Final

from spiderpool.core.errors import FieldError

POD_CIDR_TYPES: Final = ("auto", "cluster", "calico", "cilium", "none")
MODES: Final = ("auto", "underlay", "overlay", "disabled")
SYNCED: Final = "Synced"
NOT_READY: Final = "NotReady"
SPIDER_FINALIZER: Final = "spiderpool.spidernet.io"

_DEFAULTS: Final = {"mode": "auto", "tunePodRoutes": True, "hostRuleTable": 500, "podRPFilter": 0, "txQueueLen": 0,
                    "vethLinkAddress": "", "vethMTU": 1500}


def parse_ip_or_cidr(text: object) -> str:
    """Upstream's ``ip.ParseIPOrCIDR``: an address becomes a /32 or /128; a CIDR keeps its host bits."""
    if not isinstance(text, str) or not text:
        raise ValueError(f"not an IP address or CIDR: {text!r}")
    if "/" not in text:
        address = ip_address(text)
        return f"{address}/{address.max_prefixlen}"
    return str(ip_interface(text))


def default_coordinator(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a SpiderCoordinator with upstream's mutating-webhook defaults, CIDRs normalised and the finalizer.

    Never refuses (upstream's defaulter logs its errors and admits); it stops where upstream stops: without
    ``podCIDRType``, or at the first unparsable hijack CIDR or route (validation then names it).
    """
    result = copy.deepcopy(dict(obj))
    spec: dict[str, Any] = result.setdefault("spec", {})
    for key, value in _DEFAULTS.items():
        if spec.get(key) is None:
            spec[key] = value
    metadata = result.setdefault("metadata", {})
    if metadata.get("deletionTimestamp") or spec.get("podCIDRType") is None:
        return result
    cidrs = spec.get("hijackCIDR") or []
    for i, cidr in enumerate(cidrs):
        if isinstance(cidr, str) and "/" in cidr:
            continue  # upstream only completes bare addresses here
        normalised = _normalised(cidr)
        if normalised is None:
            return result
        cidrs[i] = normalised
    for route in spec.get("policyRoutes") or []:
        normalised = _normalised(route.get("dst"))
        if normalised is None:
            return result
        route["dst"] = normalised
    finalizers = metadata.setdefault("finalizers", [])
    if SPIDER_FINALIZER not in finalizers:
        finalizers.append(SPIDER_FINALIZER)
    return result


def _normalised(value: object) -> str | None:
    try:
        return parse_ip_or_cidr(value)
    except ValueError:
        return None


def coordinator_spec_errors(spec: Mapping[str, Any], *, require_optional: bool, prefix: str = "spec"
                            ) -> list[FieldError]:
    """Upstream stops at the first error; so do we (at most one error, naming field and value)."""
    for check in (_pod_cidr_type, _hijack, _routes, _mac_prefix, _scalars):
        error = check(spec, require_optional, prefix)
        if error is not None:
            return [error]
    return []


def _pod_cidr_type(spec: Mapping[str, Any], require: bool, prefix: str) -> FieldError | None:
    value = spec.get("podCIDRType")
    if (value is None and require) or (value is not None and value not in POD_CIDR_TYPES):
        return FieldError(field=f"{prefix}.podCIDRType", value=value or "",
                          reason=f"supported values: {', '.join(POD_CIDR_TYPES)}")
    return None


def _hijack(spec: Mapping[str, Any], _: bool, prefix: str) -> FieldError | None:
    for i, cidr in enumerate(spec.get("hijackCIDR") or []):
        try:
            parse_ip_or_cidr(cidr)
        except ValueError as error:
            # upstream names this field extraCIDR (its former name)
            return FieldError(field=f"{prefix}.extraCIDR[{i}]", value=cidr, reason=str(error))
    return None


def _routes(spec: Mapping[str, Any], _: bool, prefix: str) -> FieldError | None:
    for i, route in enumerate(spec.get("policyRoutes") or []):
        field = f"{prefix}.policyRoutes[{i}]"
        try:
            dst = ip_interface(parse_ip_or_cidr(route.get("dst")))
        except ValueError as error:
            return FieldError(field=f"{field}.dst", value=route.get("dst"), reason=str(error))
        try:
            gateway = ip_address(route.get("gw") or "")
        except ValueError:
            return FieldError(field=f"{field}.gw", value=route.get("gw"), reason="gw is an invalid IP address")
        if dst.version != gateway.version:
            return FieldError(field=field, value=dict(route), reason="dst and gw must use the same IP family")
    return None


def _mac_prefix(spec: Mapping[str, Any], _: bool, prefix: str) -> FieldError | None:
    value = spec.get("podMACPrefix")
    if not value:
        return None
    parts = str(value).split(":")
    try:
        if len(parts) != 2 or any(len(part) != 2 for part in parts):
            raise ValueError
        first = int(parts[0], 16)
        int(parts[1], 16)
    except ValueError:
        return FieldError(field=f"{prefix}.podMACPrefix", value=value, reason="not a valid MAC prefix")
    if first & 1:
        return FieldError(field=f"{prefix}.podMACPrefix", value=value,
                          reason="not a unicast MAC: the lowest bit of the first byte must be 0")
    return None


def _scalars(spec: Mapping[str, Any], require: bool, prefix: str) -> FieldError | None:
    tx = spec.get("txQueueLen")
    if isinstance(tx, int) and tx < 0:
        return FieldError(field=f"{prefix}.txQueueLen", value=tx, reason="txQueueLen can't be less than 0")
    rp = spec.get("podRPFilter")
    if (rp is None and require) or (isinstance(rp, int) and rp >= 0 and rp not in (0, 1, 2)):
        return FieldError(field=f"{prefix}.podRPFilter", value=rp, reason='supported values: "0", "1", "2"')
    link = spec.get("vethLinkAddress")
    if link:
        try:
            ip_address(link)
        except ValueError:
            return FieldError(field=f"{prefix}.vethLinkAddress", value=link,
                              reason="vethLinkAddress is an invalid IP address")
    mtu = spec.get("vethMTU")
    if isinstance(mtu, int) and mtu <= 0:
        return FieldError(field=f"{prefix}.vethMTU", value=mtu, reason="vethMTU must be greater than 0")
    return None
