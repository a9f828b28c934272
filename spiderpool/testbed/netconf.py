"""Network configurations the testbed hands to plugins: macvlan with spiderpool or host-local IPAM.

The same configuration serves both paths: a runtime hands it to ``macvlan``, which delegates the ``ipam`` block by
exec'ing the IPAM plugin with the same stdin; exec'ing the IPAM plugin directly with it is what macvlan would do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

MACVLAN_CNI_VERSIONS: Final = ("0.3.1", "0.4.0", "1.0.0")  # what Debian's macvlan (plugins 1.1.1) speaks
SPIDERPOOL_CNI_VERSIONS: Final = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")


def spiderpool_ipam(
    *,
    socket_path: Path,
    default_ipv4_ippool: Sequence[str] = (),
    default_ipv6_ippool: Sequence[str] = (),
    clean_gateway: bool | None = None,
) -> dict[str, Any]:
    """``"ipam": {"type": "spiderpool", ...}`` with upstream's keys; the socket is the node's agent."""
    ipam: dict[str, Any] = {"type": "spiderpool", "ipam_unix_socket_path": str(socket_path)}
    if default_ipv4_ippool:
        ipam["default_ipv4_ippool"] = list(default_ipv4_ippool)
    if default_ipv6_ippool:
        ipam["default_ipv6_ippool"] = list(default_ipv6_ippool)
    if clean_gateway is not None:
        ipam["clean_gateway"] = clean_gateway
    return ipam


def host_local_ipam(
    *, data_dir: Path, ranges: Sequence[Sequence[Mapping[str, str]]], default_route: bool = True
) -> dict[str, Any]:
    """Debian's host-local, one range set per family (e.g. ``[[{"subnet": "10.250.0.0/24"}]]``)."""
    ipam: dict[str, Any] = {
        "type": "host-local",
        "dataDir": str(data_dir),
        "ranges": [[dict(item) for item in range_set] for range_set in ranges],
    }
    if default_route:
        families = {"6" if ":" in range_set[0]["subnet"] else "4" for range_set in ranges}
        ipam["routes"] = [{"dst": "0.0.0.0/0" if family == "4" else "::/0"} for family in sorted(families)]
    return ipam


def macvlan_config(
    *, name: str, master: str, ipam: Mapping[str, Any], cni_version: str = "1.0.0", mode: str = "bridge"
) -> dict[str, Any]:
    """A single-plugin network configuration for macvlan on ``master`` (an interface of the node's namespace)."""
    if cni_version not in MACVLAN_CNI_VERSIONS:
        raise ValueError(f"cniVersion: Debian's macvlan speaks {', '.join(MACVLAN_CNI_VERSIONS)}, got {cni_version!r}")
    return {
        "cniVersion": cni_version,
        "name": name,
        "type": "macvlan",
        "master": master,
        "mode": mode,
        "ipam": dict(ipam),
    }


def with_version(config: Mapping[str, Any], cni_version: str) -> dict[str, Any]:
    """The same configuration speaking another CNI version (for exec'ing the IPAM plugin directly at 1.1.0)."""
    return {**config, "cniVersion": cni_version}


def plugin_of_list(config_list: Mapping[str, Any], plugin_type: str) -> dict[str, Any]:
    """A runnable single-plugin configuration from a ``.conflist`` (e.g. a NetworkAttachmentDefinition's config):
    the plugin of ``plugin_type`` with the list's ``cniVersion`` and ``name``, as a runtime injects them."""
    for plugin in config_list.get("plugins") or []:
        if plugin.get("type") == plugin_type:
            return {**plugin, "cniVersion": config_list["cniVersion"], "name": config_list["name"]}
    types = [plugin.get("type") for plugin in config_list.get("plugins") or []]
    raise ValueError(f"plugins: no plugin of type {plugin_type!r} in {config_list.get('name')!r}, only {types}")
