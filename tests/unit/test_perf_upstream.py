"""The pure parts of the upstream peer and the coordinator benchmark: the webhook-filled pool, the chain's configs."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from bench_coordinator import coordinator_objects, table
from upstream import webhook_filled_ippool

from spiderpool.testbed.cni_chain import plugin_configs


def test_upf01_pool_is_filled_as_upstreams_mutating_webhook_does() -> None:
    """UPF01: finalizer, the ippool-cidr label (other labels kept), an explicit ipVersion and merged, sorted ranges,
    for IPv4 and IPv6; the input is left alone and filling twice changes nothing."""
    v4: dict[str, Any] = {"apiVersion": "spiderpool.spidernet.io/v2beta1", "kind": "SpiderIPPool",
                          "metadata": {"name": "a", "labels": {"team": "x"}},
                          "spec": {"subnet": "10.253.0.0/24", "ips": ["10.253.0.21", "10.253.0.10-10.253.0.20"]}}
    original = copy.deepcopy(v4)
    filled = webhook_filled_ippool(v4)
    assert v4 == original
    assert filled["kind"] == "SpiderIPPool"
    assert filled["metadata"]["finalizers"] == ["spiderpool.spidernet.io"]
    assert filled["metadata"]["labels"] == {"team": "x", "ipam.spidernet.io/ippool-cidr": "10-253-0-0-24"}
    assert filled["spec"]["ipVersion"] == 4
    assert filled["spec"]["ips"] == ["10.253.0.10-10.253.0.21"]
    assert webhook_filled_ippool(filled) == filled

    v6 = webhook_filled_ippool({"metadata": {"name": "b"},
                                "spec": {"subnet": "fd00:1::/64", "ips": ["fd00:1::10-fd00:1::20", "fd00:1::5"]}})
    assert v6["spec"]["ipVersion"] == 6
    assert v6["spec"]["ips"] == ["fd00:1::5", "fd00:1::10-fd00:1::20"]
    assert v6["metadata"]["labels"] == {"ipam.spidernet.io/ippool-cidr": "fd00-1---64"}


def test_upf02_chain_plugins_get_the_lists_name_and_version() -> None:
    """UPF02: each plugin of a conflist gets the list's name and cniVersion (overriding its own), keeps its keys, in
    list order; a list without plugins is refused naming the network."""
    configs = plugin_configs({"cniVersion": "0.4.0", "name": "net", "plugins": [
        {"type": "macvlan", "master": "ens192", "cniVersion": "1.0.0"}, {"type": "coordinator", "mode": "underlay"}]})
    assert configs == [
        {"type": "macvlan", "master": "ens192", "cniVersion": "0.4.0", "name": "net"},
        {"type": "coordinator", "mode": "underlay", "cniVersion": "0.4.0", "name": "net"},
    ]
    with pytest.raises(ValueError, match="'empty'"):
        plugin_configs({"cniVersion": "0.4.0", "name": "empty", "plugins": []})


def test_upf03_coordinator_objects_are_complete_for_upstreams_agent() -> None:
    """UPF03: the SpiderCoordinator has every field upstream's agent dereferences without a nil check (hostRuleTable,
    podRPFilter, txQueueLen) and the podCIDRType its webhook requires; its status is Synced."""
    body, status = coordinator_objects()
    assert {"hostRuleTable", "podRPFilter", "txQueueLen", "podCIDRType", "mode"} <= set(body["spec"])
    assert body["metadata"]["name"] == "default"
    assert status["phase"] == "Synced"


def test_upf04_table_has_a_column_per_side_and_the_ratios() -> None:
    """UPF04: the benchmark's table: a column per side run, the p50 / p99 of each row, the ratios when both ran and
    the reason when ours did not."""
    figure = {"p50_ms": 10.0, "p99_ms": 20.0}
    side = dict.fromkeys(("chain_add", "chain_del", "coordinator_add", "coordinator_del", "macvlan_ipam_add"),
                         figure)
    both = table({"figures": {"ours": side, "upstream": side}, "ratios": {"chain_add_p50_vs_upstream": 1.0}})
    assert both.splitlines()[0] == "| | ours p50 / p99 | upstream p50 / p99 |"
    assert "| chain ADD (macvlan + IPAM + coordinator) | 10.0 / 20.0 ms | 10.0 / 20.0 ms |" in both
    assert "chain_add 1.0" in both
    alone = table({"figures": {"upstream": side}, "ours_missing": "not built"})
    assert alone.splitlines()[0] == "| | upstream p50 / p99 |"
    assert alone.splitlines()[-1] == "ours: not run: not built"
