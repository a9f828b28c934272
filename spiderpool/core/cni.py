"""CNI semantics of the agent, pure: one CNI invocation (environment + stdin) in, a validated ``CniRequest`` out.

Checks run in the reference library's order, so a request with several faults reports the same one as ``skel``
would: command, environment variables, stdin decoding, version, configuration, CNI_ARGS, then per-command data.
Unlike ``skel``, CNI_PATH is never required (the spec does not require it and an IPAM plugin execs nothing).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

import orjson

from spiderpool.core.cni_config import (
    invalid_field,
    parse_attachments,
    parse_cni_args,
    parse_ipam_config,
    parse_prev_result,
    render_value,
)
from spiderpool.core.cni_types import (
    FALLBACK_VERSION,
    SUPPORTED_VERSIONS,
    CniCode,
    CniCommand,
    CniError,
    CniRequest,
    K8sArgs,
    PrevResultIp,
)

_CONTAINER_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
_IFNAME_MAX: Final = 15  # IFNAMSIZ - 1
_REQUIRED_ENV: Final[Mapping[CniCommand, tuple[str, ...]]] = {
    CniCommand.ADD: ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"),
    CniCommand.CHECK: ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"),
    CniCommand.DEL: ("CNI_CONTAINERID", "CNI_IFNAME"),
}
# Commands newer than CNI 0.3.0, refused for configurations of older versions (as skel does).
_MINIMUM_VERSION: Final[Mapping[CniCommand, str]] = {
    CniCommand.CHECK: "0.4.0",
    CniCommand.GC: "1.1.0",
    CniCommand.STATUS: "1.1.0",
}
_NEEDS_POD: Final = frozenset({CniCommand.ADD, CniCommand.DEL, CniCommand.CHECK})


def error_version(stdin: bytes) -> str:
    """The cniVersion to put in an error reply: the configuration's when readable, else the newest."""
    try:
        config = orjson.loads(stdin)
    except orjson.JSONDecodeError:
        return FALLBACK_VERSION
    version = config.get("cniVersion") if isinstance(config, dict) else None
    return version if isinstance(version, str) and version else FALLBACK_VERSION


def parse_request(
    *,
    command: str | None,
    container_id: str | None,
    netns: str | None,
    ifname: str | None,
    args: str | None,
    path: str | None,
    stdin: bytes,
) -> CniRequest:
    """Validates one invocation (the CNI_* variables, None when unset, and stdin); raises ``CniError``."""
    cni_command = _parse_command(command)
    env = {"CNI_CONTAINERID": container_id, "CNI_NETNS": netns, "CNI_IFNAME": ifname}
    _check_environment(cni_command, env)
    config = _decode_config(stdin)
    version = _parse_version(cni_command, config)
    ipam = parse_ipam_config(config.get("ipam"))
    k8s = parse_cni_args(args)
    if cni_command in _NEEDS_POD:
        _require_pod(cni_command, k8s)
    return CniRequest(
        command=cni_command,
        cni_version=version,
        network_name=_parse_network_name(cni_command, config),
        container_id=container_id or None,
        netns=netns or None,
        ifname=ifname or None,
        cni_path=tuple(entry for entry in (path or "").split(":") if entry),
        ipam=ipam,
        k8s=k8s,
        prev_result=_parse_prev_result(cni_command, config),
        valid_attachments=parse_attachments(config) if cni_command is CniCommand.GC else None,
        config=config,
    )


def _parse_command(command: str | None) -> CniCommand:
    if not command:
        raise CniError(CniCode.INVALID_ENVIRONMENT, "CNI_COMMAND: not set")
    try:
        return CniCommand(command)
    except ValueError:
        known = ", ".join(CniCommand)
        raise CniError(
            CniCode.INVALID_ENVIRONMENT, f"CNI_COMMAND: unknown command {command!r}, expected one of {known}"
        ) from None


def _check_environment(command: CniCommand, env: Mapping[str, str | None]) -> None:
    for name in _REQUIRED_ENV.get(command, ()):
        if not env[name]:
            raise CniError(CniCode.INVALID_ENVIRONMENT, f"{name}: required for {command} but not set")
    container_id, ifname = env["CNI_CONTAINERID"], env["CNI_IFNAME"]
    if container_id and not _CONTAINER_ID.fullmatch(container_id):
        raise CniError(
            CniCode.INVALID_ENVIRONMENT,
            f"CNI_CONTAINERID: {container_id!r} must start with a letter or digit and hold only letters, digits, _ . -",
        )
    if ifname:
        _check_ifname(ifname)


def _check_ifname(ifname: str) -> None:
    """The rules of the reference library's ValidateInterfaceName (the kernel's, for a new link name)."""
    problem = None
    if len(ifname.encode()) > _IFNAME_MAX:
        problem = f"is longer than {_IFNAME_MAX} bytes"
    elif ifname in {".", ".."}:
        problem = "is a reserved name"
    elif any(ch in ifname for ch in "/:") or any(ch.isspace() for ch in ifname):
        problem = "contains '/', ':' or whitespace"
    if problem:
        raise CniError(CniCode.INVALID_ENVIRONMENT, f"CNI_IFNAME: {ifname!r} {problem}")


def _decode_config(stdin: bytes) -> dict[str, object]:
    try:
        config = orjson.loads(stdin)
    except orjson.JSONDecodeError as err:
        raise CniError(CniCode.DECODING_FAILURE, f"network configuration on stdin is not valid JSON: {err}") from None
    if not isinstance(config, dict):
        raise CniError(
            CniCode.DECODING_FAILURE,
            f"network configuration on stdin must be a JSON object, got {render_value(config)}",
        )
    return config


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _parse_version(command: CniCommand, config: Mapping[str, object]) -> str:
    version = config.get("cniVersion")
    if version is None:
        raise CniError(CniCode.INCOMPATIBLE_VERSION, f"cniVersion: missing, supported: {', '.join(SUPPORTED_VERSIONS)}")
    if not isinstance(version, str):
        raise invalid_field("cniVersion", "a string", version)
    if version not in SUPPORTED_VERSIONS:
        raise CniError(
            CniCode.INCOMPATIBLE_VERSION,
            f"cniVersion: {version!r} is not supported, supported: {', '.join(SUPPORTED_VERSIONS)}",
        )
    minimum = _MINIMUM_VERSION.get(command)
    if minimum and _version_key(version) < _version_key(minimum):
        raise CniError(
            CniCode.INCOMPATIBLE_VERSION, f"cniVersion: {version} does not allow {command} (needs >= {minimum})"
        )
    return version


def _parse_network_name(command: CniCommand, config: Mapping[str, object]) -> str:
    name = config.get("name")
    if name is None:
        name = ""
    if not isinstance(name, str):
        raise invalid_field("name", "a string", name)
    if command is CniCommand.GC and not name:
        # GC releases "this network's" attachments: it must know which network that is.
        raise invalid_field("name", "a network name (GC releases per network)", name)
    return name


def _require_pod(command: CniCommand, k8s: K8sArgs) -> None:
    missing = [
        key for key, value in (("K8S_POD_NAMESPACE", k8s.pod_namespace), ("K8S_POD_NAME", k8s.pod_name)) if not value
    ]
    if missing:
        raise CniError(
            CniCode.INVALID_CONFIG,
            f"CNI_ARGS: {' and '.join(missing)} required for {command}: spiderpool allocates per Kubernetes pod",
            details="kubelet and CRI runtimes set K8S_POD_NAMESPACE and K8S_POD_NAME in CNI_ARGS",
        )


def _parse_prev_result(command: CniCommand, config: Mapping[str, object]) -> tuple[PrevResultIp, ...] | None:
    if command is not CniCommand.CHECK:
        return None
    if config.get("prevResult") is None:
        raise CniError(CniCode.INVALID_CONFIG, "prevResult: required for CHECK but missing")
    return parse_prev_result(config["prevResult"])
