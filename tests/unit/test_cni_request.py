"""The pure CNI request layer: every error code path of parse_request, CNI_ARGS, the ipam block, GC attachments."""

from __future__ import annotations

from ipaddress import ip_address, ip_interface
from typing import Any

import orjson
import pytest

from spiderpool.core.cni import error_version, parse_request
from spiderpool.core.cni_config import parse_cni_args
from spiderpool.core.cni_types import Attachment, CniCode, CniCommand, CniError, CniRequest, IpamConfig, K8sArgs

POD_ARGS = (
    "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=c0ffee;K8S_POD_UID=u-1"
)
ADD_ENV: dict[str, str | None] = {
    "command": "ADD",
    "container_id": "c0ffee",
    "netns": "/var/run/netns/web-0",
    "ifname": "eth0",
    "args": POD_ARGS,
    "path": "/opt/cni/bin:/usr/lib/cni",
}
PREV_RESULT = {
    "cniVersion": "1.1.0",
    "interfaces": [{"name": "eth0", "sandbox": "/var/run/netns/web-0"}],
    "ips": [{"address": "10.6.0.5/16", "gateway": "10.6.0.1", "interface": 0}],
}


def netconf(**fields: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "cniVersion": "1.1.0",
        "name": "macvlan-ens192",
        "type": "macvlan",
        "master": "ens192",
        "ipam": {"type": "spiderpool"},
    }
    config.update(fields)
    return {key: value for key, value in config.items() if value is not ...}


def parse(config: dict[str, Any] | bytes | None = None, /, **env: str | None) -> CniRequest:
    stdin = config if isinstance(config, bytes) else orjson.dumps(netconf() if config is None else config)
    return parse_request(**{**ADD_ENV, **env}, stdin=stdin)


def parse_error(config: dict[str, Any] | bytes | None = None, /, **env: str | None) -> CniError:
    with pytest.raises(CniError) as caught:
        parse(config, **env)
    return caught.value


def test_add_request_carries_every_field() -> None:
    """CNQ01: ADD request carries every field."""
    request = parse(
        netconf(ipam={"type": "spiderpool", "default_ipv4_ippool": ["v4-a", "v4-*"], "clean_gateway": True})
    )
    assert request.command is CniCommand.ADD
    assert request.cni_version == "1.1.0"
    assert request.network_name == "macvlan-ens192"
    assert (request.container_id, request.netns, request.ifname) == ("c0ffee", "/var/run/netns/web-0", "eth0")
    assert request.cni_path == ("/opt/cni/bin", "/usr/lib/cni")
    assert request.k8s == K8sArgs(
        pod_namespace="default", pod_name="web-0", pod_infra_container_id="c0ffee", pod_uid="u-1"
    )
    assert request.ipam.default_ipv4_ippool == ("v4-a", "v4-*")
    assert request.ipam.clean_gateway is True
    assert request.config["master"] == "ens192"  # unknown fields pass through
    assert request.prev_result is None
    assert request.valid_attachments is None


ENV_ERRORS = [
    pytest.param({"command": None}, "CNI_COMMAND: not set", id="command-missing"),
    pytest.param({"command": ""}, "CNI_COMMAND: not set", id="command-empty"),
    pytest.param({"command": "ATTACH"}, "unknown command 'ATTACH'", id="command-unknown"),
    pytest.param({"container_id": None}, "CNI_CONTAINERID: required for ADD", id="add-no-containerid"),
    pytest.param({"netns": ""}, "CNI_NETNS: required for ADD", id="add-no-netns"),
    pytest.param({"ifname": None}, "CNI_IFNAME: required for ADD", id="add-no-ifname"),
    pytest.param({"command": "CHECK", "netns": None}, "CNI_NETNS: required for CHECK", id="check-no-netns"),
    pytest.param({"command": "DEL", "ifname": None}, "CNI_IFNAME: required for DEL", id="del-no-ifname"),
    pytest.param(
        {"command": "DEL", "container_id": None}, "CNI_CONTAINERID: required for DEL", id="del-no-containerid"
    ),
    pytest.param({"container_id": "-abc"}, "CNI_CONTAINERID: '-abc' must start", id="containerid-leading-dash"),
    pytest.param({"container_id": "ab/c"}, "CNI_CONTAINERID: 'ab/c'", id="containerid-slash"),
    pytest.param({"ifname": "a-very-long-name0"}, "CNI_IFNAME: 'a-very-long-name0' is longer than 15", id="ifname-16"),
    pytest.param({"ifname": "eth 0"}, "CNI_IFNAME: 'eth 0' contains", id="ifname-space"),
    pytest.param({"ifname": "eth/0"}, "CNI_IFNAME: 'eth/0' contains", id="ifname-slash"),
    pytest.param({"ifname": ".."}, "CNI_IFNAME: '..' is a reserved name", id="ifname-dotdot"),
    pytest.param({"args": "K8S_POD_NAME"}, "CNI_ARGS: invalid pair 'K8S_POD_NAME'", id="args-no-equals"),
    pytest.param({"args": "A=b=c"}, "CNI_ARGS: invalid pair 'A=b=c'", id="args-two-equals"),
    pytest.param({"args": "=x"}, "CNI_ARGS: invalid pair '=x'", id="args-empty-key"),
    pytest.param({"args": "FOO=bar;K8S_POD_NAME=p"}, "CNI_ARGS: unknown key 'FOO'", id="args-unknown-key"),
    pytest.param(
        {"args": "IgnoreUnknown=maybe"}, "IgnoreUnknown must be 1, true, 0 or false, got 'maybe'", id="args-bad-bool"
    ),
    pytest.param({"args": "IgnoreUnknown=0;X=1"}, "CNI_ARGS: unknown key 'X'", id="args-ignore-unknown-false"),
    pytest.param(
        {"args": POD_ARGS + ";IP=10.0.0.300"}, "CNI_ARGS: IP is not an IP address: '10.0.0.300'", id="args-bad-ip"
    ),
]


@pytest.mark.parametrize(("env", "message"), ENV_ERRORS)
def test_environment_errors_are_code_4_naming_the_variable(env: dict[str, str | None], message: str) -> None:
    """CNQ02: Environment errors are code 4 naming the variable."""
    error = parse_error(**env)
    assert error.code == CniCode.INVALID_ENVIRONMENT
    assert message in error.msg


def test_environment_is_checked_before_stdin() -> None:
    """CNQ03: Environment is checked before stdin."""
    error = parse_error(b"not json", container_id=None)
    assert error.code == CniCode.INVALID_ENVIRONMENT


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        pytest.param(b"", "not valid JSON", id="empty"),
        pytest.param(b"{", "not valid JSON", id="truncated"),
        pytest.param(b'{"cniVersion": "1.0.0",}', "not valid JSON", id="trailing-comma"),
        pytest.param(b"[1, 2]", "must be a JSON object, got [1,2]", id="array"),
        pytest.param(b'"1.0.0"', 'must be a JSON object, got "1.0.0"', id="string"),
    ],
)
def test_stdin_that_is_not_a_json_object_is_code_6(stdin: bytes, message: str) -> None:
    """CNQ04: Stdin that is not a JSON object is code 6."""
    error = parse_error(stdin)
    assert error.code == CniCode.DECODING_FAILURE
    assert message in error.msg


@pytest.mark.parametrize(
    ("command", "version", "message"),
    [
        pytest.param("ADD", ..., "cniVersion: missing", id="missing"),
        pytest.param(
            "ADD", "0.2.0", "'0.2.0' is not supported, supported: 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0", id="old"
        ),
        pytest.param("ADD", "2.0.0", "'2.0.0' is not supported", id="future"),
        pytest.param("CHECK", "0.3.1", "0.3.1 does not allow CHECK (needs >= 0.4.0)", id="check-0.3.1"),
        pytest.param("GC", "1.0.0", "1.0.0 does not allow GC (needs >= 1.1.0)", id="gc-1.0.0"),
        pytest.param("STATUS", "0.4.0", "0.4.0 does not allow STATUS (needs >= 1.1.0)", id="status-0.4.0"),
    ],
)
def test_unsupported_versions_are_code_1(command: str, version: Any, message: str) -> None:
    """CNQ05: Unsupported versions are code 1."""
    error = parse_error(netconf(cniVersion=version, prevResult=PREV_RESULT), command=command)
    assert error.code == CniCode.INCOMPATIBLE_VERSION
    assert message in error.msg


@pytest.mark.parametrize("version", ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
def test_every_supported_version_parses(version: str) -> None:
    """CNQ06: Every supported version parses."""
    assert parse(netconf(cniVersion=version)).cni_version == version


IPAM_ERRORS = [
    pytest.param({"cniVersion": 1.0}, "cniVersion: expected a string, got 1.0", id="version-number"),
    pytest.param({"name": 7}, "name: expected a string, got 7", id="name-number"),
    pytest.param({"ipam": "spiderpool"}, 'ipam: expected an object, got "spiderpool"', id="ipam-string"),
    pytest.param({"ipam": {"type": 1}}, "ipam.type: expected a string, got 1", id="type"),
    pytest.param(
        {"ipam": {"log_level": "loud"}},
        'ipam.log_level: expected one of debug, error, fatal, info, panic, warn, warning, got "loud"',
        id="log-level",
    ),
    pytest.param(
        {"ipam": {"log_file_path": ["/x"]}}, 'ipam.log_file_path: expected a string, got ["/x"]', id="log-path"
    ),
    pytest.param(
        {"ipam": {"log_file_max_size": "big"}},
        'ipam.log_file_max_size: expected a non-negative integer or a string such as "100M", got "big"',
        id="log-size",
    ),
    pytest.param(
        {"ipam": {"log_file_max_age": -1}},
        'ipam.log_file_max_age: expected a non-negative integer or a string such as "100M", got -1',
        id="log-age",
    ),
    pytest.param(
        {"ipam": {"log_file_max_count": True}},
        'ipam.log_file_max_count: expected a non-negative integer or a string such as "100M", got true',
        id="log-count-bool",
    ),
    pytest.param(
        {"ipam": {"default_ipv4_ippool": "pool-a"}},
        'ipam.default_ipv4_ippool: expected a list of pool names, got "pool-a"',
        id="v4-pools-string",
    ),
    pytest.param(
        {"ipam": {"default_ipv6_ippool": ["ok", 3]}},
        "ipam.default_ipv6_ippool[1]: expected a non-empty pool name, got 3",
        id="v6-pool-number",
    ),
    pytest.param(
        {"ipam": {"default_ipv4_ippool": [""]}},
        'ipam.default_ipv4_ippool[0]: expected a non-empty pool name, got ""',
        id="v4-pool-empty",
    ),
    pytest.param(
        {"ipam": {"clean_gateway": "yes"}}, 'ipam.clean_gateway: expected a boolean, got "yes"', id="clean-gateway"
    ),
    pytest.param(
        {"ipam": {"match_master_subnet": 1}}, "ipam.match_master_subnet: expected a boolean, got 1", id="match-master"
    ),
    pytest.param(
        {"ipam": {"ipam_unix_socket_path": "agent.sock"}},
        'ipam.ipam_unix_socket_path: expected an absolute path, got "agent.sock"',
        id="socket-relative",
    ),
]


@pytest.mark.parametrize(("fields", "message"), IPAM_ERRORS)
def test_configuration_type_errors_are_code_7_naming_key_and_value(fields: dict[str, Any], message: str) -> None:
    """CNQ07: Configuration type errors are code 7 naming key and value."""
    error = parse_error(netconf(**fields))
    assert error.code == CniCode.INVALID_CONFIG
    assert error.msg == message


def test_ipam_block_defaults_and_upstream_doc_forms() -> None:
    """CNQ08: Ipam block defaults and upstream doc forms."""
    assert parse(netconf(ipam=...)).ipam == IpamConfig()
    assert parse(netconf(ipam={"type": "spiderpool", "clean_gateway": None})).ipam.clean_gateway is False
    documented = {"type": "spiderpool", "log_level": "INFO", "log_file_max_size": "100M", "log_file_max_age": "30d"}
    ipam = parse(netconf(ipam={**documented, "log_file_max_count": 7, "match_master_subnet": True})).ipam
    assert (ipam.log_level, ipam.log_file_max_size, ipam.log_file_max_age, ipam.log_file_max_count) == (
        "info",
        "100M",
        "30d",
        7,
    )
    assert ipam.match_master_subnet is True
    assert ipam.ipam_unix_socket_path == "/var/run/spidernet/spiderpool.sock"


def test_unknown_and_runtime_fields_are_tolerated() -> None:
    """CNQ09: Unknown and runtime fields are tolerated."""
    config = netconf(runtimeConfig={"ips": ["10.0.0.9/24"]}, args={"cni": {"ips": ["10.0.0.9"]}}, mtu=9000)
    config["ipam"]["future_key"] = {"nested": [1, 2]}
    request = parse(config)
    assert request.config["runtimeConfig"] == {"ips": ["10.0.0.9/24"]}
    assert request.config["mtu"] == 9000


@pytest.mark.parametrize("command", ["ADD", "DEL", "CHECK"])
@pytest.mark.parametrize(
    ("args", "missing"),
    [
        pytest.param("K8S_POD_NAME=web-0", "K8S_POD_NAMESPACE", id="no-namespace"),
        pytest.param("K8S_POD_NAMESPACE=default", "K8S_POD_NAME", id="no-name"),
        pytest.param(None, "K8S_POD_NAMESPACE and K8S_POD_NAME", id="no-args"),
    ],
)
def test_pod_commands_need_the_pod_identity(command: str, args: str | None, missing: str) -> None:
    """CNQ10: Pod commands need the pod identity."""
    error = parse_error(netconf(prevResult=PREV_RESULT), command=command, args=args)
    assert error.code == CniCode.INVALID_CONFIG
    assert error.msg.startswith(f"CNI_ARGS: {missing} required for {command}")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(None, K8sArgs(), id="unset"),
        pytest.param("", K8sArgs(), id="empty"),
        pytest.param(
            "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;", K8sArgs(pod_namespace="ns", pod_name="p"), id="trailing-semicolon"
        ),
        pytest.param("IgnoreUnknown=true;Custom=1;K8S_POD_UID=abc", K8sArgs(pod_uid="abc"), id="ignore-unknown-true"),
        pytest.param("IgnoreUnknown=1;K8S_POD_NAME=a;K8S_POD_NAME=b", K8sArgs(pod_name="b"), id="last-wins"),
        pytest.param("IP=fd00::5;K8S_POD_NAME=p", K8sArgs(pod_name="p", requested_ip=ip_address("fd00::5")), id="ip"),
        pytest.param("K8S_POD_NAME=", K8sArgs(), id="empty-value-is-unset"),
    ],
)
def test_cni_args_parsing(text: str | None, expected: K8sArgs) -> None:
    """CNQ11: CNI args parsing."""
    assert parse_cni_args(text) == expected


def test_del_and_gc_and_status_need_fewer_variables() -> None:
    """CNQ12: DEL and GC and status need fewer variables."""
    delete = parse(command="DEL", netns=None)
    assert (delete.command, delete.netns) == (CniCommand.DEL, None)
    gc_config = netconf(**{"cni.dev/valid-attachments": []})
    gc = parse(gc_config, command="GC", container_id=None, netns=None, ifname=None, args=None, path=None)
    assert (gc.container_id, gc.ifname, gc.cni_path, gc.valid_attachments) == (None, None, (), ())
    status = parse(command="STATUS", container_id=None, netns=None, ifname=None, args=None)
    assert status.command is CniCommand.STATUS


def gc_request(**fields: Any) -> CniRequest:
    return parse(netconf(**fields), command="GC", container_id=None, netns=None, ifname=None, args=None)


def test_gc_valid_attachments_and_the_legacy_key() -> None:
    """CNQ13: GC valid attachments and the legacy key."""
    kept = [{"containerID": "c1", "ifname": "eth0"}, {"containerID": "c2", "ifname": "net1"}]
    expected = (Attachment("c1", "eth0"), Attachment("c2", "net1"))
    assert gc_request(**{"cni.dev/valid-attachments": kept}).valid_attachments == expected
    assert gc_request(**{"cni.dev/attachments": kept}).valid_attachments == expected
    both = gc_request(**{"cni.dev/valid-attachments": kept[:1], "cni.dev/attachments": kept})
    assert both.valid_attachments == expected[:1]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param({}, "cni.dev/valid-attachments: missing", id="missing"),
        pytest.param({"cni.dev/valid-attachments": {}}, "cni.dev/valid-attachments: expected a list", id="object"),
        pytest.param(
            {"cni.dev/valid-attachments": ["c1"]},
            'cni.dev/valid-attachments[0]: expected an object with containerID and ifname, got "c1"',
            id="string-item",
        ),
        pytest.param(
            {"cni.dev/valid-attachments": [{"ifname": "eth0"}]},
            "cni.dev/valid-attachments[0].containerID: expected a non-empty string, got null",
            id="no-container",
        ),
        pytest.param(
            {"cni.dev/attachments": [{"containerID": "c", "ifname": 0}]},
            "cni.dev/attachments[0].ifname: expected a non-empty string, got 0",
            id="legacy-bad-ifname",
        ),
        pytest.param(
            {"name": ..., "cni.dev/valid-attachments": []},
            'name: expected a network name (GC releases per network), got ""',
            id="no-network-name",
        ),
    ],
)
def test_gc_attachment_errors_are_code_7(fields: dict[str, Any], message: str) -> None:
    """CNQ14: GC attachment errors are code 7."""
    with pytest.raises(CniError) as caught:
        gc_request(**fields)
    assert caught.value.code == CniCode.INVALID_CONFIG
    assert message in caught.value.msg


def test_check_reads_prev_result_addresses_with_their_interface() -> None:
    """CNQ15: Check reads prev result addresses with their interface."""
    prev = {
        "interfaces": [{"name": "cni0"}, {"name": "eth0", "sandbox": "/var/run/netns/x"}],
        "ips": [
            {"address": "10.6.0.5/16", "interface": 1},
            {"address": "fd00::5/64"},
            {"address": "192.168.0.1/24", "interface": 0},
        ],
    }
    request = parse(netconf(prevResult=prev), command="CHECK")
    assert request.prev_result is not None
    found = [(str(ip.address), ip.interface_name) for ip in request.prev_result]
    assert found == [("10.6.0.5/16", "eth0"), ("fd00::5/64", None), ("192.168.0.1/24", "cni0")]


@pytest.mark.parametrize(
    ("prev", "message"),
    [
        pytest.param(..., "prevResult: required for CHECK but missing", id="missing"),
        pytest.param([], "prevResult: expected an object, got []", id="list"),
        pytest.param({"ips": {}}, "prevResult.ips: expected a list, got {}", id="ips-object"),
        pytest.param(
            {"ips": [{"address": "10.0.0.1"}]},
            'prevResult.ips[0].address: expected an address in CIDR notation, got "10.0.0.1"',
            id="no-prefix",
        ),
        pytest.param(
            {"ips": [{"address": "10.0.0.1/33"}]},
            "prevResult.ips[0].address: expected an address in CIDR notation",
            id="bad-prefix",
        ),
        pytest.param(
            {"ips": [{"address": "10.0.0.1/8", "interface": 2}], "interfaces": [{"name": "eth0"}]},
            "prevResult.ips[0].interface: expected an index into prevResult.interfaces (0..0), got 2",
            id="bad-index",
        ),
        pytest.param(
            {"interfaces": [{"mac": "aa"}]},
            "prevResult.interfaces[0]: expected an object with a name",
            id="nameless-interface",
        ),
    ],
)
def test_prev_result_errors_are_code_7(prev: Any, message: str) -> None:
    """CNQ16: Prev result errors are code 7."""
    error = parse_error(netconf(prevResult=prev), command="CHECK")
    assert error.code == CniCode.INVALID_CONFIG
    assert message in error.msg


def test_prev_result_is_ignored_outside_check() -> None:
    """CNQ17: Prev result is ignored outside check."""
    assert parse(netconf(prevResult="garbage"), command="DEL").prev_result is None


@pytest.mark.parametrize(
    ("stdin", "version"),
    [
        pytest.param(b'{"cniVersion":"0.3.1"}', "0.3.1", id="readable"),
        pytest.param(b'{"cniVersion":"9.9.9"}', "9.9.9", id="unsupported-is-echoed"),
        pytest.param(b'{"cniVersion":3}', "1.1.0", id="not-a-string"),
        pytest.param(b"[]", "1.1.0", id="not-an-object"),
        pytest.param(b"{", "1.1.0", id="not-json"),
    ],
)
def test_error_version(stdin: bytes, version: str) -> None:
    """CNQ18: Error version."""
    assert error_version(stdin) == version


def test_prev_result_addresses_keep_their_prefix() -> None:
    """CNQ19: Prev result addresses keep their prefix."""
    request = parse(netconf(prevResult=PREV_RESULT), command="CHECK")
    assert request.prev_result is not None
    assert request.prev_result[0].address == ip_interface("10.6.0.5/16")
