"""The cluster-wide settings of ConfigMap ``spiderpool-conf`` (upstream's keys), shared by the agent and the controller.

``--config-dir`` is where the ConfigMap is mounted: ``conf.yml`` (upstream's keys) and ``clusterNetwork`` (Multus'
default network). Missing files and keys take upstream's defaults; keys not used here are ignored, so upstream's
ConfigMap works unchanged. Every error names the file, the key and the offending value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import yaml

from spiderpool.core.selection_types import SelectionConfig
from spiderpool.wire import DEFAULT_SOCKET_PATH

CONF_FILE: Final = "conf.yml"
CLUSTER_NETWORK_FILE: Final = "clusterNetwork"
# Upstream's chart writes the first key, its code reads the second (the key-mismatch bug); both are accepted.
_FLEXIBLE_IP_KEYS: Final = ("clusterSubnetDefaultFlexibleIPNumber", "clusterSubnetAutoPoolDefaultRedundantIPNumber")


class ConfigError(ValueError):
    """A setting is invalid; the message names where it came from and the value."""


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    """The ``conf.yml`` keys the agent uses (upstream's names and chart defaults)."""

    ipam_unix_socket_path: str = DEFAULT_SOCKET_PATH
    enable_ipv4: bool = True
    enable_ipv6: bool = True
    enable_statefulset: bool = True
    enable_spider_subnet: bool = True
    enable_auto_pool: bool = True
    default_flexible_ip_number: int = 1
    # Ours, not upstream's: false (the default) writes a SpiderEndpoint only for pods that need one (see
    # agent.assignment); true writes one for every pod, as upstream does.
    enable_stateless_spider_endpoint: bool = False
    cluster_network: str | None = None
    agent_namespace: str = "kube-system"
    # Upstream's IPAM detection switches (off by default: no probe at all), and ours for its bounds (upstream's
    # fixed 100 ms per probe, 3 probes).
    enable_ip_conflict_detection: bool = False
    enable_gateway_detection: bool = False
    detection_timeout: float = 0.1
    detection_retries: int = 3

    def selection_config(self) -> SelectionConfig:
        return SelectionConfig(
            enable_ipv4=self.enable_ipv4,
            enable_ipv6=self.enable_ipv6,
            enable_spider_subnet=self.enable_spider_subnet,
            enable_auto_pool=self.enable_auto_pool,
            agent_namespace=self.agent_namespace,
            multus_cluster_network=self.cluster_network,
        )


def _yaml_bool(source: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{source}: expected true or false, got {value!r}")
    return value


def _yaml_count(source: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{source}: expected a non-negative integer, got {value!r}")
    return value


def _yaml_duration(source: str, value: object) -> float:
    """A Go-style duration (``100ms``, ``1s``, ``1.5s``) or a number of seconds; positive, at most 10 s."""
    text = str(value).strip() if isinstance(value, (str, int, float)) and not isinstance(value, bool) else ""
    scale, number = (0.001, text[:-2]) if text.endswith("ms") else (1.0, text.removesuffix("s"))
    try:
        seconds = float(number) * scale
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 10:
        raise ConfigError(f"{source}: expected a duration such as 100ms or 1s (at most 10s), got {value!r}")
    return seconds


def _yaml_retries(source: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10:
        raise ConfigError(f"{source}: expected an integer from 1 to 10, got {value!r}")
    return value


def _yaml_path(source: str, value: object) -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        raise ConfigError(f"{source}: expected an absolute path, got {value!r}")
    return value


_CONF_KEYS: Final[Mapping[str, tuple[str, Callable[[str, object], object]]]] = {
    "ipamUnixSocketPath": ("ipam_unix_socket_path", _yaml_path),
    "enableIPv4": ("enable_ipv4", _yaml_bool),
    "enableIPv6": ("enable_ipv6", _yaml_bool),
    "enableStatefulSet": ("enable_statefulset", _yaml_bool),
    "enableSpiderSubnet": ("enable_spider_subnet", _yaml_bool),
    "enableAutoPoolForApplication": ("enable_auto_pool", _yaml_bool),
    "enableStatelessSpiderEndpoint": ("enable_stateless_spider_endpoint", _yaml_bool),
    "enableIPConflictDetection": ("enable_ip_conflict_detection", _yaml_bool),
    "enableGatewayDetection": ("enable_gateway_detection", _yaml_bool),
    "detectionTimeout": ("detection_timeout", _yaml_duration),
    "detectionRetries": ("detection_retries", _yaml_retries),
    **dict.fromkeys(_FLEXIBLE_IP_KEYS, ("default_flexible_ip_number", _yaml_count)),
}


def parse_conf_yml(text: str, *, source: str = CONF_FILE) -> dict[str, object]:
    """The ``ClusterSettings`` fields set in a ``conf.yml`` text (absent or null keys are left out)."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: not valid YAML: {error}") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(f"{source}: expected a mapping of settings, got {type(document).__name__}")
    fields: dict[str, object] = {}
    for key, (name, check) in _CONF_KEYS.items():
        if document.get(key) is not None:
            fields[name] = check(f"{source}: {key}", document[key])
    return fields


def load_cluster_settings(config_dir: Path | None, env: Mapping[str, str]) -> ClusterSettings:
    fields: dict[str, object] = {}
    cluster_network = env.get("MULTUS_CLUSTER_NETWORK") or None
    if config_dir is not None:
        if not config_dir.is_dir():
            raise ConfigError(f"--config-dir: {config_dir} is not a directory")
        conf = config_dir / CONF_FILE
        if conf.is_file():
            fields = parse_conf_yml(conf.read_text(), source=str(conf))
        network_file = config_dir / CLUSTER_NETWORK_FILE
        if network_file.is_file():
            cluster_network = network_file.read_text().strip() or cluster_network
    namespace = env.get("SPIDERPOOL_POD_NAMESPACE") or "kube-system"
    return ClusterSettings(cluster_network=cluster_network, agent_namespace=namespace, **fields)  # type: ignore[arg-type]
