"""Result shapes per CNI version (cni-spec.md), error and VERSION replies, CHECK against prevResult."""

from __future__ import annotations

from ipaddress import ip_address, ip_interface, ip_network
from typing import Any

import orjson
import pytest

from spiderpool.core.cni import parse_request
from spiderpool.core.cni_result import format_error, format_result, format_version_reply, verify_prev_result
from spiderpool.core.cni_types import CniCode, CniError, CniRequest, Dns, IpamResult, IpConfig, Route

DUAL_STACK = IpamResult(
    ips=(
        IpConfig(ip_interface("10.6.1.5/16"), ip_address("10.6.0.1")),
        IpConfig(ip_interface("fd00:10:6::5/64"), ip_address("fd00:10:6::1")),
    ),
    routes=(
        Route(ip_network("0.0.0.0/0"), ip_address("10.6.0.1")),
        Route(ip_network("::/0"), ip_address("fd00:10:6::1")),
        Route(ip_network("172.16.0.0/16"), ip_address("10.6.0.254"), mtu=1400, table=100),
    ),
)
LEGACY_IPS = [
    {"version": "4", "address": "10.6.1.5/16", "gateway": "10.6.0.1"},
    {"version": "6", "address": "fd00:10:6::5/64", "gateway": "fd00:10:6::1"},
]
CURRENT_IPS = [
    {"address": "10.6.1.5/16", "gateway": "10.6.0.1"},
    {"address": "fd00:10:6::5/64", "gateway": "fd00:10:6::1"},
]
PLAIN_ROUTES = [
    {"dst": "0.0.0.0/0", "gw": "10.6.0.1"},
    {"dst": "::/0", "gw": "fd00:10:6::1"},
    {"dst": "172.16.0.0/16", "gw": "10.6.0.254"},
]
ROUTES_1_1 = [*PLAIN_ROUTES[:2], {"dst": "172.16.0.0/16", "gw": "10.6.0.254", "mtu": 1400, "table": 100}]


@pytest.mark.parametrize(
    ("version", "ips", "routes"),
    [
        pytest.param("0.3.0", LEGACY_IPS, PLAIN_ROUTES, id="0.3.0"),
        pytest.param("0.3.1", LEGACY_IPS, PLAIN_ROUTES, id="0.3.1"),
        pytest.param("0.4.0", LEGACY_IPS, PLAIN_ROUTES, id="0.4.0"),
        pytest.param("1.0.0", CURRENT_IPS, PLAIN_ROUTES, id="1.0.0"),
        pytest.param("1.1.0", CURRENT_IPS, ROUTES_1_1, id="1.1.0"),
    ],
)
def test_result_shape_per_version(version: str, ips: list[Any], routes: list[Any]) -> None:
    """CNR01: Result shape per version."""
    rendered = orjson.loads(format_result(DUAL_STACK, cni_version=version))
    assert rendered == {"cniVersion": version, "ips": ips, "routes": routes}
    assert "interfaces" not in rendered  # IPAM-style: the main plugin adds interfaces


def test_optional_parts_are_omitted_and_dns_appears_when_set() -> None:
    """CNR02: Optional parts are omitted and dns appears when set."""
    bare = IpamResult(ips=(IpConfig(ip_interface("192.168.7.9/24")),), routes=(Route(ip_network("10.0.0.0/8")),))
    assert orjson.loads(format_result(bare, cni_version="1.0.0")) == {
        "cniVersion": "1.0.0",
        "ips": [{"address": "192.168.7.9/24"}],
        "routes": [{"dst": "10.0.0.0/8"}],
    }
    with_dns = IpamResult(ips=bare.ips, dns=Dns(nameservers=("10.0.0.10",), search=("svc.cluster.local",)))
    assert orjson.loads(format_result(with_dns, cni_version="0.3.1")) == {
        "cniVersion": "0.3.1",
        "ips": [{"version": "4", "address": "192.168.7.9/24"}],
        "dns": {"nameservers": ["10.0.0.10"], "search": ["svc.cluster.local"]},
    }


def test_result_refuses_an_unsupported_version() -> None:
    """CNR03: Result refuses an unsupported version."""
    with pytest.raises(ValueError, match=r"cni_version '0\.2\.0'"):
        format_result(DUAL_STACK, cni_version="0.2.0")


def test_error_and_version_replies() -> None:
    """CNR04: Error and version replies."""
    error = CniError(CniCode.INVALID_CONFIG, 'ipam.clean_gateway: expected a boolean, got "yes"', "see the docs")
    assert orjson.loads(format_error(error, cni_version="0.4.0")) == {
        "cniVersion": "0.4.0",
        "code": 7,
        "msg": 'ipam.clean_gateway: expected a boolean, got "yes"',
        "details": "see the docs",
    }
    assert "details" not in orjson.loads(format_error(CniError(11, "busy"), cni_version="1.1.0"))
    assert orjson.loads(format_version_reply(cni_version="1.0.0")) == {
        "cniVersion": "1.0.0",
        "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"],
    }


def check_request(prev_result: dict[str, Any], *, ifname: str = "eth0") -> CniRequest:
    config = {"cniVersion": "1.0.0", "name": "net", "ipam": {"type": "spiderpool"}, "prevResult": prev_result}
    return parse_request(
        command="CHECK",
        container_id="c1",
        netns="/var/run/netns/p",
        ifname=ifname,
        args="K8S_POD_NAMESPACE=ns;K8S_POD_NAME=pod",
        path=None,
        stdin=orjson.dumps(config),
    )


MACVLAN_PREV = {
    "interfaces": [{"name": "eth0", "sandbox": "/var/run/netns/p"}],
    "ips": [{"address": "10.6.1.5/16", "interface": 0}, {"address": "fd00:10:6::5/64", "interface": 0}],
}


@pytest.mark.parametrize(
    ("prev", "held", "ifname"),
    [
        pytest.param(MACVLAN_PREV, DUAL_STACK, "eth0", id="exact"),
        pytest.param({"ips": [{"address": "10.6.1.5/16"}]}, DUAL_STACK, "eth0", id="ipam-style-subset"),
        pytest.param({"ips": []}, IpamResult(ips=()), "eth0", id="nothing-claimed"),
        pytest.param(
            {"interfaces": [{"name": "net1"}], "ips": [{"address": "10.9.0.1/24", "interface": 0}]},
            DUAL_STACK,
            "eth0",
            id="other-interface-ignored",
        ),
    ],
)
def test_check_passes_when_prev_result_is_reserved(prev: dict[str, Any], held: IpamResult, ifname: str) -> None:
    """CNR05: Check passes when prev result is reserved."""
    request = check_request(prev, ifname=ifname)
    verify_prev_result(request, held)  # raises on a mismatch
    assert request.prev_result is not None


@pytest.mark.parametrize(
    ("held", "message"),
    [
        pytest.param(
            IpamResult(ips=()),
            "prevResult address 10.6.1.5/16 of eth0 is not reserved for pod ns/pod",
            id="nothing-held",
        ),
        pytest.param(
            IpamResult(ips=(IpConfig(ip_interface("10.6.1.6/16")), IpConfig(ip_interface("fd00:10:6::5/64")))),
            "prevResult address 10.6.1.5/16 of eth0 is not reserved for pod ns/pod",
            id="other-address",
        ),
        pytest.param(
            IpamResult(ips=(IpConfig(ip_interface("10.6.1.5/24")), IpConfig(ip_interface("fd00:10:6::5/64")))),
            "prevResult address 10.6.1.5/16 of eth0 is reserved as 10.6.1.5/24 for pod ns/pod",
            id="other-prefix",
        ),
        pytest.param(
            IpamResult(ips=(IpConfig(ip_interface("10.6.1.5/16")),)),
            "prevResult address fd00:10:6::5/64 of eth0 is not reserved for pod ns/pod",
            id="ipv6-missing",
        ),
    ],
)
def test_check_fails_with_a_precise_plugin_error(held: IpamResult, message: str) -> None:
    """CNR06: Check fails with a precise plugin error."""
    with pytest.raises(CniError) as caught:
        verify_prev_result(check_request(MACVLAN_PREV), held)
    assert caught.value.code == CniCode.RESERVATION_MISMATCH
    assert int(caught.value.code) >= 100  # plugin-specific range
    assert caught.value.msg == message
    held_text = ", ".join(str(ip.address) for ip in held.ips) or "nothing"
    assert caught.value.details == f"spiderpool holds {held_text} for pod ns/pod interface eth0"
