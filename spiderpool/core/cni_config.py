"""Validation of the parts of a CNI invocation: the ``ipam`` block, CNI_ARGS, GC attachments and ``prevResult``.

Each function turns untrusted JSON (or an environment string) into typed values, or raises ``CniError`` naming the
field and the offending value. JSON ``null`` counts as absent, as in upstream's Go decoding.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from ipaddress import ip_address, ip_interface
from typing import Final

import orjson

from spiderpool.core.cni_types import Attachment, CniCode, CniError, IpamConfig, K8sArgs, PrevResultIp

_LOG_LEVELS: Final = frozenset({"debug", "info", "warn", "warning", "error", "fatal", "panic"})
# Upstream's docs write sizes and ages as "100M" / "30d"; its code reads ints. Both forms are accepted.
_LOG_QUANTITY: Final = re.compile(r"[0-9]{1,9}[A-Za-z]{0,2}")
_K8S_ARG_FIELDS: Final = {
    "K8S_POD_NAMESPACE": "pod_namespace",
    "K8S_POD_NAME": "pod_name",
    "K8S_POD_INFRA_CONTAINER_ID": "pod_infra_container_id",
    "K8S_POD_UID": "pod_uid",
}
_KNOWN_ARGS: Final = frozenset({"IgnoreUnknown", "IP", *_K8S_ARG_FIELDS})


def render_value(value: object) -> str:
    """A short JSON rendering of an offending value for error messages."""
    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def invalid_field(field: str, expected: str, value: object) -> CniError:
    return CniError(CniCode.INVALID_CONFIG, f"{field}: expected {expected}, got {render_value(value)}")


def _string(field: str, value: object) -> str:
    if not isinstance(value, str):
        raise invalid_field(field, "a string", value)
    return value


def _boolean(field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise invalid_field(field, "a boolean", value)
    return value


def _log_level(field: str, value: object) -> str:
    if not isinstance(value, str) or value.lower() not in _LOG_LEVELS:
        raise invalid_field(field, f"one of {', '.join(sorted(_LOG_LEVELS))}", value)
    return value.lower()


def _log_quantity(field: str, value: object) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and _LOG_QUANTITY.fullmatch(value):
        return value
    raise invalid_field(field, 'a non-negative integer or a string such as "100M"', value)


def _pool_names(field: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise invalid_field(field, "a list of pool names", value)
    for index, name in enumerate(value):
        if not isinstance(name, str) or not name:
            raise invalid_field(f"{field}[{index}]", "a non-empty pool name", name)
    return tuple(value)


def _socket_path(field: str, value: object) -> str:
    if not isinstance(value, str) or not value.startswith("/") or "\x00" in value:
        raise invalid_field(field, "an absolute path", value)
    return value


_IPAM_KEYS: Final[Mapping[str, Callable[[str, object], object]]] = {
    "type": _string,
    "log_level": _log_level,
    "log_file_path": _string,
    "log_file_max_size": _log_quantity,
    "log_file_max_age": _log_quantity,
    "log_file_max_count": _log_quantity,
    "default_ipv4_ippool": _pool_names,
    "default_ipv6_ippool": _pool_names,
    "clean_gateway": _boolean,
    "match_master_subnet": _boolean,
    "ipam_unix_socket_path": _socket_path,
}


def parse_ipam_config(value: object) -> IpamConfig:
    """The ``ipam`` block (absent = all defaults); keys other than upstream's are ignored."""
    if value is None:
        return IpamConfig()
    if not isinstance(value, dict):
        raise invalid_field("ipam", "an object", value)
    fields = {key: check(f"ipam.{key}", value[key]) for key, check in _IPAM_KEYS.items() if value.get(key) is not None}
    return IpamConfig(**fields)  # type: ignore[arg-type]  # each checker returns its field's type


def _split_cni_args(text: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for pair in text.split(";"):
        if not pair:
            continue  # tolerate "a=b;" and ";;"
        key, _, value = pair.partition("=")
        if pair.count("=") != 1 or not key:
            raise CniError(CniCode.INVALID_ENVIRONMENT, f"CNI_ARGS: invalid pair {pair!r}, expected KEY=VALUE")
        pairs[key] = value
    return pairs


def _ignore_unknown(pairs: Mapping[str, str]) -> bool:
    text = pairs.get("IgnoreUnknown", "false").lower()
    if text not in {"1", "true", "0", "false"}:
        raise CniError(
            CniCode.INVALID_ENVIRONMENT, f"CNI_ARGS: IgnoreUnknown must be 1, true, 0 or false, got {text!r}"
        )
    return text in {"1", "true"}


def parse_cni_args(text: str | None) -> K8sArgs:
    """``K=V;K=V`` as the reference library reads it: unknown keys are an error unless ``IgnoreUnknown=1``."""
    pairs = _split_cni_args(text or "")
    unknown = sorted(set(pairs) - _KNOWN_ARGS)
    if not _ignore_unknown(pairs) and unknown:
        raise CniError(
            CniCode.INVALID_ENVIRONMENT,
            f"CNI_ARGS: unknown key {unknown[0]!r}",
            details=f"known keys: {', '.join(sorted(_KNOWN_ARGS))}; add IgnoreUnknown=1 to pass others",
        )
    requested_ip = None
    if pairs.get("IP"):
        try:
            requested_ip = ip_address(pairs["IP"])
        except ValueError:
            raise CniError(CniCode.INVALID_ENVIRONMENT, f"CNI_ARGS: IP is not an IP address: {pairs['IP']!r}") from None
    k8s = {attr: pairs[key] for key, attr in _K8S_ARG_FIELDS.items() if pairs.get(key)}
    return K8sArgs(requested_ip=requested_ip, **k8s)


def parse_attachments(config: Mapping[str, object]) -> tuple[Attachment, ...]:
    """GC's ``cni.dev/valid-attachments`` (or libcni's legacy ``cni.dev/attachments``); required, never guessed."""
    for key in ("cni.dev/valid-attachments", "cni.dev/attachments"):
        if config.get(key) is not None:
            return _attachments(key, config[key])
    raise CniError(
        CniCode.INVALID_CONFIG,
        "cni.dev/valid-attachments: missing; GC without the list of valid attachments would release everything",
    )


def _attachments(key: str, value: object) -> tuple[Attachment, ...]:
    if not isinstance(value, list):
        raise invalid_field(key, "a list of {containerID, ifname} objects", value)
    found = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise invalid_field(f"{key}[{index}]", "an object with containerID and ifname", item)
        container_id, ifname = item.get("containerID"), item.get("ifname")
        if not isinstance(container_id, str) or not container_id:
            raise invalid_field(f"{key}[{index}].containerID", "a non-empty string", container_id)
        if not isinstance(ifname, str) or not ifname:
            raise invalid_field(f"{key}[{index}].ifname", "a non-empty string", ifname)
        found.append(Attachment(container_id=container_id, ifname=ifname))
    return tuple(found)


def parse_prev_result(value: object) -> tuple[PrevResultIp, ...]:
    """The addresses of a ``prevResult`` (any supported version), each with the name of its interface if it has one."""
    if not isinstance(value, dict):
        raise invalid_field("prevResult", "an object", value)
    interfaces = _interface_names(value.get("interfaces"))
    ips = value.get("ips")
    ips = [] if ips is None else ips
    if not isinstance(ips, list):
        raise invalid_field("prevResult.ips", "a list", ips)
    return tuple(_prev_ip(f"prevResult.ips[{index}]", item, interfaces) for index, item in enumerate(ips))


def _interface_names(value: object) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid_field("prevResult.interfaces", "a list", value)
    names = []
    for index, item in enumerate(value):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str):
            raise invalid_field(f"prevResult.interfaces[{index}]", "an object with a name", item)
        names.append(name)
    return names


def _prev_ip(field: str, item: object, interfaces: list[str]) -> PrevResultIp:
    if not isinstance(item, dict):
        raise invalid_field(field, "an object", item)
    address = item.get("address")
    try:
        parsed = ip_interface(address) if isinstance(address, str) and "/" in address else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise invalid_field(f"{field}.address", "an address in CIDR notation", address)
    index = item.get("interface")
    if index is None:
        return PrevResultIp(address=parsed, interface_name=None)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(interfaces):
        raise invalid_field(
            f"{field}.interface", f"an index into prevResult.interfaces (0..{len(interfaces) - 1})", index
        )
    return PrevResultIp(address=parsed, interface_name=interfaces[index])
