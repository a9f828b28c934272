"""The testbed's chain runner (a conflist with libcni's semantics) on Debian's plugins: macvlan + host-local, then sbr.

``sbr`` (source-based routing) refuses to run without ``prevResult`` and works from its interfaces and addresses, so
it shows that each plugin got the result of the one before it; its DEL undoes its rules before macvlan's removes the
interface.
"""

from __future__ import annotations

import pytest

from spiderpool.testbed.cni_chain import CniChain
from spiderpool.testbed.netconf import host_local_ipam
from spiderpool.testbed.netns import run_ip
from spiderpool.testbed.netns_state import interface_names
from spiderpool.testbed.testbed import Testbed

from .support import result_ips

pytestmark = pytest.mark.e2e


def source_rules(netns: str) -> list[str]:
    """The pod's policy rules with a ``from <address>`` selector (what sbr adds), as ``ip rule`` prints them."""
    return [line for line in run_ip("rule", "show", netns=netns).splitlines() if "from all" not in line]


async def test_t04_chain_passes_prev_result_in_order_and_deletes_in_reverse(bed: Testbed, namespace: str) -> None:
    """T04: CniChain ADD runs macvlan then sbr, sbr getting macvlan's result (its rule names the address), and the
    list's result is sbr's; DEL runs sbr then macvlan with the cached result, leaving no rule and no eth0; a chain
    whose first plugin fails stops there with no result."""
    node = await bed.add_node(f"{bed.prefix}-chain", start_agent=False)
    ipam = host_local_ipam(data_dir=bed.run_dir / "chain-hl", ranges=[[{"subnet": "10.250.14.0/24"}]])
    macvlan = {"type": "macvlan", "master": "ens192", "mode": "bridge", "ipam": ipam}
    chain = CniChain({"cniVersion": "1.0.0", "name": "chain-net", "plugins": [macvlan, {"type": "sbr"}]},
                     cni_bin_dir=bed.cni_bin_dir)
    pod = await bed.create_pod(node, name="chain-0", namespace=namespace)

    added = await chain.add(pod)
    assert added.ok, added.describe()
    assert [kind for kind, _ in added.runs] == ["macvlan", "sbr"]
    assert added.result is not None
    address = result_ips(added.result)[0].split("/")[0]
    assert address.startswith("10.250.14.")
    assert added.result == added.runs[-1][1].json()
    rules = source_rules(pod.netns)
    assert any(f"from {address} lookup 100" in rule for rule in rules), rules

    deleted = await chain.delete(pod, cached=added.result)
    assert deleted.ok, deleted.describe()
    assert [kind for kind, _ in deleted.runs] == ["sbr", "macvlan"]
    assert source_rules(pod.netns) == []
    assert interface_names(pod.netns) == ["lo"]

    broken = CniChain({"cniVersion": "1.0.0", "name": "chain-broken",
                       "plugins": [{**macvlan, "master": "nosuchnic"}, {"type": "sbr"}]}, cni_bin_dir=bed.cni_bin_dir)
    failed = await broken.add(pod)
    assert not failed.ok
    assert [kind for kind, _ in failed.runs] == ["macvlan"]
    assert failed.result is None


async def test_t05_del_stops_at_the_first_failing_plugin(bed: Testbed, namespace: str) -> None:
    """T05: as libcni's DelNetworkList, the chain's DEL stops at the first plugin that fails (the runtime retries
    the whole list later): the last plugin, macvlan with an IPAM plugin missing from CNI_PATH, fails its DEL, and
    sbr before it in the list is never run."""
    node = await bed.add_node(f"{bed.prefix}-chdel", start_agent=False)
    macvlan = {"type": "macvlan", "master": "ens192", "mode": "bridge", "ipam": {"type": "no-such-ipam"}}
    chain = CniChain({"cniVersion": "1.0.0", "name": "chain-del", "plugins": [{"type": "sbr"}, macvlan]},
                     cni_bin_dir=bed.cni_bin_dir)
    pod = await bed.create_pod(node, name="chain-del-0", namespace=namespace)

    deleted = await chain.delete(pod, cached=None)

    assert not deleted.ok
    assert [kind for kind, _ in deleted.runs] == ["macvlan"], deleted.describe()
    assert "no-such-ipam" in deleted.describe()
