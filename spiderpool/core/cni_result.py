"""Rendering replies in the configuration's CNI version, and CHECK's comparison against ``prevResult``.

Results are IPAM-style (spec section 5, "Delegated plugins"): no ``interfaces`` and no ``ips[].interface``; the main
plugin (macvlan & co.) fills those in. Field shapes follow the reference library's types for each version.
"""

from __future__ import annotations

from typing import Final

import orjson

from spiderpool.core.cni_types import (
    SUPPORTED_VERSIONS,
    CniCode,
    CniError,
    CniRequest,
    Dns,
    IpamResult,
    IpConfig,
    Route,
)

# Versions whose ips[] carry "version": "4" | "6" (types 040, which also covers 0.3.x).
_VERSIONED_IPS: Final = frozenset({"0.3.0", "0.3.1", "0.4.0"})
_ROUTE_1_1_ATTRIBUTES: Final = ("mtu", "advmss", "priority", "table", "scope")


def _dump(document: dict[str, object]) -> bytes:
    return orjson.dumps(document) + b"\n"


def _ip_json(ip: IpConfig, *, with_version: bool) -> dict[str, object]:
    rendered: dict[str, object] = {"version": str(ip.version)} if with_version else {}
    rendered["address"] = str(ip.address)
    if ip.gateway is not None:
        rendered["gateway"] = str(ip.gateway)
    return rendered


def _route_json(route: Route, *, cni_version: str) -> dict[str, object]:
    rendered: dict[str, object] = {"dst": str(route.dst)}
    if route.gw is not None:
        rendered["gw"] = str(route.gw)
    if cni_version == "1.1.0":
        for name in _ROUTE_1_1_ATTRIBUTES:
            value = getattr(route, name)
            if value is not None:
                rendered[name] = value
    return rendered


def _dns_json(dns: Dns) -> dict[str, object]:
    rendered: dict[str, object] = {}
    if dns.nameservers:
        rendered["nameservers"] = list(dns.nameservers)
    if dns.domain:
        rendered["domain"] = dns.domain
    if dns.search:
        rendered["search"] = list(dns.search)
    if dns.options:
        rendered["options"] = list(dns.options)
    return rendered


def result_document(result: IpamResult, *, cni_version: str) -> dict[str, object]:
    """The ADD result as a JSON-ready dict in ``cni_version``'s format."""
    if cni_version not in SUPPORTED_VERSIONS:
        raise ValueError(f"cni_version {cni_version!r} is not one of {SUPPORTED_VERSIONS}")
    with_version = cni_version in _VERSIONED_IPS
    document: dict[str, object] = {
        "cniVersion": cni_version,
        "ips": [_ip_json(ip, with_version=with_version) for ip in result.ips],
    }
    if result.routes:
        document["routes"] = [_route_json(route, cni_version=cni_version) for route in result.routes]
    if not result.dns.is_empty():
        document["dns"] = _dns_json(result.dns)
    return document


def format_result(result: IpamResult, *, cni_version: str) -> bytes:
    return _dump(result_document(result, cni_version=cni_version))


def format_error(error: CniError, *, cni_version: str) -> bytes:
    document: dict[str, object] = {"cniVersion": cni_version, "code": int(error.code), "msg": error.msg}
    if error.details:
        document["details"] = error.details
    return _dump(document)


def format_version_reply(*, cni_version: str) -> bytes:
    return _dump({"cniVersion": cni_version, "supportedVersions": list(SUPPORTED_VERSIONS)})


def verify_prev_result(request: CniRequest, held: IpamResult) -> None:
    """CHECK: every prevResult address of this interface must be reserved, with the same prefix, for this pod.

    Addresses the backend holds beyond prevResult are not an error: CHECK verifies what the runtime believes it has.
    """
    if request.prev_result is None:
        raise CniError(CniCode.INVALID_CONFIG, "prevResult: required for CHECK but missing")
    held_by_ip = {ip.address.ip: ip.address for ip in held.ips}
    held_text = ", ".join(str(ip.address) for ip in held.ips) or "nothing"
    pod = f"{request.k8s.pod_namespace}/{request.k8s.pod_name}"
    for entry in request.prev_result:
        if entry.interface_name not in (None, request.ifname):
            continue
        reserved = held_by_ip.get(entry.address.ip)
        if reserved == entry.address:
            continue
        problem = "is not reserved" if reserved is None else f"is reserved as {reserved}"
        raise CniError(
            CniCode.RESERVATION_MISMATCH,
            f"prevResult address {entry.address} of {request.ifname} {problem} for pod {pod}",
            details=f"spiderpool holds {held_text} for pod {pod} interface {request.ifname}",
        )
