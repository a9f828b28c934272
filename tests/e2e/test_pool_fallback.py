"""Ordered fallback to the next pool on exhaustion, and the CNI error a pod gets when every pool is exhausted."""

from __future__ import annotations

import json

import pytest
from upstream_examples import Corpus, corpus_params

from spiderpool.agent.ipam_errors import IpamCode
from spiderpool.testbed.members import NicAttachment
from spiderpool.testbed.testbed import Testbed

from .support import (
    Pools,
    audit,
    first_addresses,
    interface,
    pod_template_annotations,
    pool_documents,
    read_pool,
    unique,
)

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("corpus", corpus_params())
async def test_p01_fallback_in_order_then_a_clear_error(
    bed: Testbed, namespace: str, pools: Pools, corpus: Corpus
) -> None:
    """P01: a corpus' "fallback pools" (two pools of two addresses: upstream's ippool-multi_test-ipv4-ippools.yaml,
    or the project's fallback_ippools.yaml) and the pod annotation of its "fallback deployment", both unchanged: pods
    1-2 get the first pool, 3-4 the second in the order the annotation gives; pod 5 gets a CNI error (JSON on stdout,
    non-zero exit) naming both pools, and nothing is recorded for it."""
    await pools.apply_role(corpus, "fallback pools")
    pool_docs = {doc["metadata"]["name"]: doc for doc in pool_documents(corpus, "fallback pools")}
    annotations = pod_template_annotations(corpus, "fallback deployment")
    first, second = json.loads(annotations["ipam.spidernet.io/ippool"])["ipv4"]
    node = await bed.add_node(unique(f"{bed.prefix}-p01"))
    config = bed.macvlan(node, network="p01-net")
    pods = [await bed.create_pod(node, name=f"fb-{i}", namespace=namespace, annotations=annotations) for i in range(5)]

    runs = [await bed.cni.add(pod, config) for pod in pods]

    assert [run.ok for run in runs] == [True, True, True, True, False], [run.describe() for run in runs]
    addresses = [[str(a) for a in interface(pod).addresses] for pod in pods[:4]]
    expected = first_addresses(pool_docs[first], 2) + first_addresses(pool_docs[second], 2)
    assert addresses == [[address] for address in expected]
    # What the runtime sees through macvlan, and what our executable itself prints (macvlan re-prints the error
    # object without cniVersion): exactly one JSON error document on stdout, a non-zero exit, code 102 (spiderpool's
    # "every candidate pool is full": a retry alone will not help, unlike 11).
    through_macvlan = runs[4]
    direct = await bed.cni.pod_command(pods[4], "ADD", config, ifname="eth0", direct_ipam=True)
    for failed in (through_macvlan, direct):
        assert failed.exit_code != 0
        error = failed.json()
        assert error["code"] == IpamCode.POOL_EXHAUSTED, (through_macvlan.describe(), direct.describe())
        text = f"{error['msg']} {error.get('details', '')}"
        assert first in text, error
        assert second in text, error
    assert direct.json()["cniVersion"] == "1.0.0"
    verdict = await audit(bed, [first, second], namespace=namespace)
    assert verdict.clean, verdict.describe()
    assert verdict.addresses_of(pods[4].uid) == []
    for name in (first, second):
        assert (await read_pool(bed, name))["status"]["allocatedIPCount"] == 2


async def test_p02_a_released_address_is_reused(bed: Testbed, namespace: str, pools: Pools) -> None:
    """P02: exhaust a pool of one address, delete its pod (terminating, CNI DEL, gone): the next pod gets it."""
    pool = unique("p02-v4")
    await pools.create(pool, subnet="10.250.21.0/24", ips=["10.250.21.7"])
    node = await bed.add_node(unique(f"{bed.prefix}-p02"))
    config = bed.macvlan(node, network="p02-net", default_ipv4_ippool=[pool])
    first, second = [await bed.create_pod(node, name=f"reuse-{i}", namespace=namespace) for i in range(2)]
    assert (await bed.cni.add(first, config)).ok
    refused = await bed.cni.add(second, config)
    assert not refused.ok
    assert pool in refused.json()["msg"] + refused.json().get("details", "")

    deleted = await bed.remove_pod(first)
    await bed.replace_sandbox(second, failed=[NicAttachment(config, "eth0", direct_ipam=False)])

    assert [run.ok for run in deleted] == [True]
    assert (await read_pool(bed, pool)).get("status", {}).get("allocatedIPCount", 0) == 0
    retried = await bed.cni.add(second, config)
    assert retried.ok, retried.describe()
    assert [str(a) for a in interface(second).addresses] == ["10.250.21.7/24"]
