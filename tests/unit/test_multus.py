from __future__ import annotations

import pytest

from spiderpool.core.errors import AnnotationError
from spiderpool.core.multus import (
    DEFAULT_NETWORK,
    NETWORKS,
    NetworkSelection,
    multus_network_for_nic,
    parse_network_object_name,
    parse_network_selections,
    qualify_multus_name,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("macvlan", NetworkSelection("", "macvlan")),
        ("kube-system/macvlan-conf-ens224", NetworkSelection("kube-system", "macvlan-conf-ens224")),
        ("ns/net@eth5", NetworkSelection("ns", "net", "eth5")),
        (" ns / net @ eth5 ", NetworkSelection("ns", "net", "eth5")),
    ],
)
def test_network_object_names(text: str, expected: NetworkSelection) -> None:
    """MU01: Network object names."""
    assert parse_network_object_name(text, annotation=NETWORKS) == expected


@pytest.mark.parametrize("text", ["a/b/c", "a@b@c", "ns/", "bad_name", "-x"])
def test_bad_network_object_names(text: str) -> None:
    """MU02: Bad network object names."""
    with pytest.raises(AnnotationError) as caught:
        parse_network_object_name(text, annotation=NETWORKS)
    assert caught.value.annotation == NETWORKS


def test_selections_in_both_formats() -> None:
    """MU03: Selections in both formats."""
    assert parse_network_selections("a, other/b@net7", pod_namespace="ns") == [
        NetworkSelection("ns", "a"), NetworkSelection("other", "b", "net7")]
    assert parse_network_selections('[{"name": "a"}, {"name": "b", "namespace": "x", "interface": "eth9"}]',
                                    pod_namespace="ns") == [NetworkSelection("ns", "a"),
                                                            NetworkSelection("x", "b", "eth9")]


@pytest.mark.parametrize("value", ['[{"namespace": "x"}]', '{"name": "a"}', "[", '[{"name": "a", "interface": 1}]'])
def test_bad_json_selections(value: str) -> None:
    """MU04: Bad JSON selections."""
    with pytest.raises(AnnotationError):
        parse_network_selections(value, pod_namespace="ns")


ANNOTATIONS = {DEFAULT_NETWORK: "kube-system/macvlan-conf-ens192", NETWORKS: "kube-system/macvlan-conf-ens224, net-b"}


@pytest.mark.parametrize(
    ("nic", "annotations", "cluster_network", "expected"),
    [
        ("eth0", ANNOTATIONS, None, "kube-system/macvlan-conf-ens192"),
        ("0", ANNOTATIONS, None, "kube-system/macvlan-conf-ens192"),
        ("eth0", {}, "cluster-net", "spiderpool/cluster-net"),
        ("eth0", {DEFAULT_NETWORK: "mine"}, "cluster-net", "spiderpool/mine"),
        ("net1", ANNOTATIONS, None, "kube-system/macvlan-conf-ens224"),
        ("1", ANNOTATIONS, None, "kube-system/macvlan-conf-ens224"),
        ("net2", ANNOTATIONS, None, "app-ns/net-b"),
        ("eth7", {NETWORKS: "a@eth7"}, None, "app-ns/a"),
    ],
)
def test_network_of_each_nic(nic: str, annotations: dict[str, str], cluster_network: str | None,
                             expected: str) -> None:
    """MU05: Network of each NIC."""
    assert multus_network_for_nic(nic=nic, pod_namespace="app-ns", annotations=annotations,
                                  cluster_network=cluster_network, agent_namespace="spiderpool") == expected


@pytest.mark.parametrize(("nic", "annotations"), [("eth0", {}), ("net3", ANNOTATIONS), ("net1", {})])
def test_unknown_network(nic: str, annotations: dict[str, str]) -> None:
    """MU06: Unknown network."""
    with pytest.raises(ValueError, match="no"):
        multus_network_for_nic(nic=nic, pod_namespace="ns", annotations=annotations, cluster_network=None,
                               agent_namespace="kube-system")


def test_qualify_multus_name() -> None:
    """MU07: Qualify multus name."""
    assert qualify_multus_name("macvlan", agent_namespace="kube-system") == "kube-system/macvlan"
    assert qualify_multus_name("ns/macvlan", agent_namespace="kube-system") == "ns/macvlan"
