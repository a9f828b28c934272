"""The agent's configuration: flags over environment over conf.yml over defaults; precise errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from spiderpool.agent.config import AgentConfig, load_agent_config, run_argument_parser
from spiderpool.cluster_config import ConfigError, parse_conf_yml


def load(argv: list[str], env: dict[str, str] | None = None) -> AgentConfig:
    return load_agent_config(run_argument_parser().parse_args(argv), env or {})


def test_defaults_and_environment_fallbacks() -> None:
    """AC01: Defaults and environment fallbacks."""
    config = load([], {"NODE_NAME": "n1"})
    assert (config.node_name, str(config.socket_path), config.health_port, config.metrics_port, config.log_level) == (
        "n1", "/var/run/spidernet/spiderpool.sock", 5710, 5711, "info")
    config = load([], {"SPIDERPOOL_NODE_NAME": "n2", "NODE_NAME": "n1", "SPIDERPOOL_HEALTH_PORT": "0",
                       "SPIDERPOOL_METRIC_HTTP_PORT": "9000", "SPIDERPOOL_LOG_LEVEL": "WARN",
                       "SPIDERPOOL_IPAM_UNIX_SOCKET_PATH": "/run/sp.sock", "KUBECONFIG": "/a/kc:/b/kc"})
    assert (config.node_name, str(config.socket_path), config.health_port, config.metrics_port) == (
        "n2", "/run/sp.sock", 0, 9000)
    assert (config.log_level, str(config.kubeconfig)) == ("warning", "/a/kc")
    flags = load(["--node-name", "n3", "--socket", "/tmp/x.sock", "--health-port", "1"], {"NODE_NAME": "n1"})
    assert (flags.node_name, str(flags.socket_path), flags.health_port) == ("n3", "/tmp/x.sock", 1)


def test_config_dir_reads_conf_yml_and_cluster_network(tmp_path: Path) -> None:
    """AC02: Config dir reads conf yml and cluster network."""
    (tmp_path / "conf.yml").write_text(
        "ipamUnixSocketPath: /run/other.sock\nenableIPv6: false\nenableStatefulSet: false\n"
        "clusterSubnetDefaultFlexibleIPNumber: 3\ntuneSysctlConfig: true\n")
    (tmp_path / "clusterNetwork").write_text("kube-system/macvlan\n")
    config = load(["--node-name", "n", "--config-dir", str(tmp_path)])
    assert str(config.socket_path) == "/run/other.sock"
    assert (config.cluster.enable_ipv4, config.cluster.enable_ipv6, config.cluster.enable_statefulset) == (
        True, False, False)
    assert config.cluster.default_flexible_ip_number == 3
    assert config.cluster.selection_config().multus_cluster_network == "kube-system/macvlan"
    assert parse_conf_yml("clusterSubnetAutoPoolDefaultRedundantIPNumber: 2\n") == {"default_flexible_ip_number": 2}


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        pytest.param([], {}, "--node-name: required", id="no-node"),
        pytest.param(["--node-name", "n", "--health-port", "70000"], {}, "--health-port: expected a TCP port",
                     id="port"),
        pytest.param(["--node-name", "n"], {"SPIDERPOOL_LOG_LEVEL": "loud"}, "$SPIDERPOOL_LOG_LEVEL: expected one",
                     id="level"),
        pytest.param(["--node-name", "n", "--socket", "rel.sock"], {}, "--socket: expected an absolute path",
                     id="socket"),
    ],
)
def test_errors_name_the_setting(argv: list[str], env: dict[str, str], message: str) -> None:
    """AC03: Errors name the setting."""
    with pytest.raises(ConfigError) as error:
        load(argv, env)
    assert str(error.value).startswith(message)


def test_conf_yml_errors_name_the_key() -> None:
    """AC04: Conf yml errors name the key."""
    with pytest.raises(ConfigError, match=r"conf.yml: enableIPv4: expected true or false, got 'yes please'"):
        parse_conf_yml("enableIPv4: yes please\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        parse_conf_yml("- a\n")


def test_record_combiner_settings() -> None:
    """AC05: The record combiner is off unless a URL is given (flag before $SPIDERPOOL_COMBINER_URL), its CA file
    comes from the flag or $SPIDERPOOL_COMBINER_CA_FILE, and a URL that is not https:// is refused naming where it
    came from; only contended pools use it unless --combiner-always / $SPIDERPOOL_COMBINER_ALWAYS=true."""
    assert (load([], {"NODE_NAME": "n"}).combiner_url, load([], {"NODE_NAME": "n"}).combiner_ca_file) == ("", None)
    env = {"NODE_NAME": "n", "SPIDERPOOL_COMBINER_URL": "https://ctl.kube-system.svc:5722",
           "SPIDERPOOL_COMBINER_CA_FILE": "/etc/ca.crt"}
    config = load([], env)
    assert (config.combiner_url, str(config.combiner_ca_file)) == ("https://ctl.kube-system.svc:5722", "/etc/ca.crt")
    assert load(["--combiner-url", "https://127.0.0.1:1"], env).combiner_url == "https://127.0.0.1:1"
    with pytest.raises(ConfigError, match=r"\$SPIDERPOOL_COMBINER_URL: expected https://HOST:PORT"):
        load([], {"NODE_NAME": "n", "SPIDERPOOL_COMBINER_URL": "http://ctl:5722"})
    assert not config.combiner_always
    assert load([], {**env, "SPIDERPOOL_COMBINER_ALWAYS": "True"}).combiner_always
    assert load(["--combiner-always"], env).combiner_always
    with pytest.raises(ConfigError, match=r"\$SPIDERPOOL_COMBINER_ALWAYS: expected true or false"):
        load([], {**env, "SPIDERPOOL_COMBINER_ALWAYS": "yes"})


def test_host_netns_for_the_coordinator() -> None:
    """AC06: the coordinator's host side is the agent's own namespace unless ``--host-netns`` (before
    ``$SPIDERPOOL_HOST_NETNS``) names one (the testbed's simulated nodes); an empty value means the agent's own."""
    assert load([], {"NODE_NAME": "n"}).host_netns is None
    assert load([], {"NODE_NAME": "n", "SPIDERPOOL_HOST_NETNS": ""}).host_netns is None
    env = {"NODE_NAME": "n", "SPIDERPOOL_HOST_NETNS": "/run/netns/env"}
    assert load([], env).host_netns == "/run/netns/env"
    assert load(["--host-netns", "/run/netns/flag"], env).host_netns == "/run/netns/flag"
