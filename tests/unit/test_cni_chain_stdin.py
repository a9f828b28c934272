"""The testbed's chain runner as libcni runs a list: what each DEL reads on stdin (no plugin is exec'd here)."""

from __future__ import annotations

from spiderpool.testbed.cni_chain import del_configs, plugin_configs


def test_chn01_del_gets_prev_result_only_from_cni_0_4_0() -> None:
    """CHN01: the chain's DEL stdins, in reverse order, carry the cached ``prevResult`` only when the list's
    ``cniVersion`` is 0.4.0 or later (as libcni's DelNetworkList), never without a cached result."""
    cached = {"cniVersion": "1.0.0", "ips": [{"address": "10.250.14.2/24"}]}
    for version, expected in (("0.3.1", False), ("0.4.0", True), ("1.0.0", True)):
        plugins = [{"type": "macvlan"}, {"type": "sbr"}]
        configs = plugin_configs({"cniVersion": version, "name": "n", "plugins": plugins})
        stdins = del_configs(configs, cached)
        assert [stdin["type"] for stdin in stdins] == ["sbr", "macvlan"]
        assert all(("prevResult" in stdin) == expected for stdin in stdins), version
        assert all("prevResult" not in stdin for stdin in del_configs(configs, None))
