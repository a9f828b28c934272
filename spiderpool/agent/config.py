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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from spiderpool.cluster_config import ClusterSettings, ConfigError, load_cluster_settings
from spiderpool.wire import DEFAULT_SOCKET_PATH

DEFAULT_HEALTH_PORT: Final = 5710
DEFAULT_METRICS_PORT: Final = 5711
LOG_LEVELS: Final = ("debug", "info", "warning", "error")
HOLD_ENV: Final = "SPIDERPOOL_GC_STATEFULSET_IP_HOLD_DURATION"


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
    # The controller's SPIDERPOOL_GC_STATEFULSET_IP_HOLD_DURATION (beyond upstream, #3893): while > 0, DEL keeps a
    # scaled-down StatefulSet ordinal's addresses and the controller releases them once the hold is over.
    statefulset_hold: float = 0.0
    # The node's network namespace for the coordinator's host side: None is the agent's own (hostNetwork, as
    # deployed); tests running simulated nodes name a namespace path.
    host_netns: str | None = None
    # The controller's record combiner (https://host:port; "" writes every record directly) and the CA it is
    # served with (None: the system's trust store).
    combiner_url: str = ""
    combiner_ca_file: Path | None = None
    combiner_always: bool = False  # every record through the combiner, not only those of contended pools


def _port(source: str, text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise ConfigError(f"{source}: expected a TCP port 0-65535 (0 disables the listener), got {text!r}")
    return int(text)


def _hold_seconds(source: str, text: str) -> float:
    try:
        seconds = float(text.strip().removesuffix("s"))
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:  # also refuses nan
        raise ConfigError(f"{source}: expected a non-negative number of seconds, got {text!r}")
    return seconds


def _https_url(source: str, text: str) -> str:
    if not text.startswith("https://") or len(text) <= len("https://"):
        raise ConfigError(f"{source}: expected https://HOST:PORT, got {text!r}")
    return text


def _flag(source: str, text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise ConfigError(f"{source}: expected true or false, got {text!r}")
    return text.lower() == "true"


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
    parser.add_argument("--host-netns", help="the node's network namespace for the coordinator (default: "
                        "$SPIDERPOOL_HOST_NETNS, else the agent's own)")
    parser.add_argument("--combiner-url", help="the controller's record combiner, https://HOST:PORT (default: "
                                               "$SPIDERPOOL_COMBINER_URL; none: pool records are written directly)")
    parser.add_argument("--combiner-always", action="store_const", const="true",
                        help="send every pool record through the combiner, not only those of pools other writers "
                             "contend for (default: $SPIDERPOOL_COMBINER_ALWAYS, false)")
    parser.add_argument("--combiner-ca-file", help="CA of the combiner's certificate (default: "
                                                   "$SPIDERPOOL_COMBINER_CA_FILE, else the system's)")
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
    hold = _pick(None, "", env, (HOLD_ENV,))
    host_netns = _pick(options.host_netns, "--host-netns", env, ("SPIDERPOOL_HOST_NETNS",))
    combiner = _pick(options.combiner_url, "--combiner-url", env, ("SPIDERPOOL_COMBINER_URL",))
    combiner_ca = _pick(options.combiner_ca_file, "--combiner-ca-file", env, ("SPIDERPOOL_COMBINER_CA_FILE",))
    always = _pick(options.combiner_always, "--combiner-always", env, ("SPIDERPOOL_COMBINER_ALWAYS",))
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
        statefulset_hold=_hold_seconds(*hold) if hold else 0.0,
        host_netns=host_netns[1] if host_netns and host_netns[1] else None,
        combiner_url=_https_url(*combiner) if combiner else "",
        combiner_ca_file=Path(combiner_ca[1]) if combiner_ca else None,
        combiner_always=_flag(*always) if always else False,
    )
