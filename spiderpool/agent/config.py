"""The agent's configuration: command-line flags, upstream's environment variables, and the ``spiderpool-conf`` files.

Precedence per setting: flag, then environment variable, then ``conf.yml`` (for the socket path), then the default.
``--config-dir`` is where the ConfigMap ``spiderpool-conf`` is mounted: ``conf.yml`` (upstream's keys) and
``clusterNetwork`` (Multus' default network).  Missing files and keys take upstream's defaults; keys this agent does
not use are ignored, so upstream's ConfigMap works unchanged.  Every error names the flag, variable or key and the
offending value.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import yaml

from spiderpool.core.selection_types import SelectionConfig
from spiderpool.wire import DEFAULT_SOCKET_PATH

DEFAULT_HEALTH_PORT: Final = 5710
DEFAULT_METRICS_PORT: Final = 5711
LOG_LEVELS: Final = ("debug", "info", "warning", "error")
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
    cluster_network: str | None = None
    agent_namespace: str = "kube-system"

    def selection_config(self) -> SelectionConfig:
        return SelectionConfig(
            enable_ipv4=self.enable_ipv4,
            enable_ipv6=self.enable_ipv6,
            enable_spider_subnet=self.enable_spider_subnet,
            enable_auto_pool=self.enable_auto_pool,
            agent_namespace=self.agent_namespace,
            multus_cluster_network=self.cluster_network,
        )


@dataclass(frozen=True, slots=True)
class AgentConfig:
    node_name: str
    socket_path: Path
    kubeconfig: Path | None = None
    config_dir: Path | None = None
    health_port: int = DEFAULT_HEALTH_PORT
    metrics_port: int = DEFAULT_METRICS_PORT
    log_level: str = "info"
    cluster: ClusterSettings = field(default_factory=ClusterSettings)


def _yaml_bool(source: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{source}: expected true or false, got {value!r}")
    return value


def _yaml_count(source: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{source}: expected a non-negative integer, got {value!r}")
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


def _port(source: str, text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise ConfigError(f"{source}: expected a TCP port 0-65535 (0 disables the listener), got {text!r}")
    return int(text)


def _log_level(source: str, text: str) -> str:
    level = "warning" if text.lower() == "warn" else text.lower()
    if level not in LOG_LEVELS:
        raise ConfigError(f"{source}: expected one of {', '.join(LOG_LEVELS)}, got {text!r}")
    return level


def _pick(flag: str | None, flag_name: str, env: Mapping[str, str], names: Sequence[str]) -> tuple[str, str] | None:
    """The first value set among the flag and the variables, with where it came from."""
    if flag is not None:
        return flag_name, flag
    for name in names:
        if env.get(name):
            return f"${name}", env[name]
    return None


def run_argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spiderpool-agent run", description="Serve IPAM for this node's pods.")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, else in-cluster)")
    parser.add_argument("--node-name", help="this node's name (default: $SPIDERPOOL_NODE_NAME or $NODE_NAME)")
    parser.add_argument("--socket", help=f"unix socket path (default: $SPIDERPOOL_IPAM_UNIX_SOCKET_PATH, conf.yml "
                                         f"ipamUnixSocketPath, {DEFAULT_SOCKET_PATH})")
    parser.add_argument("--config-dir", help="directory of the spiderpool-conf ConfigMap (conf.yml, clusterNetwork)")
    parser.add_argument("--health-port", help=f"health port (default: $SPIDERPOOL_HEALTH_PORT, {DEFAULT_HEALTH_PORT}"
                                              "); 0 disables")
    parser.add_argument("--metrics-port", help=f"metrics port (default: $SPIDERPOOL_METRIC_HTTP_PORT, "
                                               f"{DEFAULT_METRICS_PORT}); 0 disables")
    parser.add_argument("--log-level", help="debug, info, warning or error (default: $SPIDERPOOL_LOG_LEVEL, info)")
    return parser


def load_agent_config(options: argparse.Namespace, env: Mapping[str, str]) -> AgentConfig:
    """The configuration from parsed ``run`` flags (see ``run_argument_parser``) and the environment."""
    node = _pick(options.node_name, "--node-name", env, ("SPIDERPOOL_NODE_NAME", "NODE_NAME"))
    if node is None or not node[1].strip():
        raise ConfigError("--node-name: required (or $SPIDERPOOL_NODE_NAME / $NODE_NAME)")
    config_dir = Path(options.config_dir) if options.config_dir else None
    cluster = load_cluster_settings(config_dir, env)
    socket = _pick(options.socket, "--socket", env, ("SPIDERPOOL_IPAM_UNIX_SOCKET_PATH",))
    socket_path = Path(socket[1] if socket else cluster.ipam_unix_socket_path)
    if not socket_path.is_absolute():
        raise ConfigError(f"{socket[0] if socket else 'ipamUnixSocketPath'}: expected an absolute path, "
                          f"got {str(socket_path)!r}")
    kubeconfig = _pick(options.kubeconfig, "--kubeconfig", env, ("KUBECONFIG",))
    health = _pick(options.health_port, "--health-port", env, ("SPIDERPOOL_HEALTH_PORT",))
    metrics = _pick(options.metrics_port, "--metrics-port", env, ("SPIDERPOOL_METRIC_HTTP_PORT",))
    level = _pick(options.log_level, "--log-level", env, ("SPIDERPOOL_LOG_LEVEL",))
    return AgentConfig(
        node_name=node[1].strip(),
        socket_path=socket_path,
        # $KUBECONFIG may list several files (":"-separated); as kubectl merges them, the first one is the primary.
        kubeconfig=Path(kubeconfig[1].split(os.pathsep)[0]) if kubeconfig else None,
        config_dir=config_dir,
        health_port=_port(*health) if health else DEFAULT_HEALTH_PORT,
        metrics_port=_port(*metrics) if metrics else DEFAULT_METRICS_PORT,
        log_level=_log_level(*level) if level else "info",
        cluster=cluster,
    )
