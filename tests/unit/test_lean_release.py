"""Which pods the agent's DEL treats as having no SpiderEndpoint (``agent.release.goes_without_endpoint``)."""

from __future__ import annotations

from typing import Any

import pytest

from spiderpool.agent.release import goes_without_endpoint
from spiderpool.cluster_config import ClusterSettings


def _pod(*, owners: tuple[str, ...] = (), annotations: dict[str, str] | None = None) -> Any:
    refs = [{"kind": kind, "name": "o", "uid": "x", "controller": True, "apiVersion": "v1"} for kind in owners]
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u", "ownerReferences": refs,
                         "annotations": annotations or {}}}


@pytest.mark.parametrize(
    ("pod", "lean_mode", "expected"),
    [
        (_pod(), True, True),
        (_pod(owners=("ReplicaSet",)), True, True),
        (_pod(owners=("StatefulSet",)), True, False),
        (_pod(owners=("VirtualMachineInstance",)), True, False),
        (_pod(annotations={"ipam.spidernet.io/ippools": '[{"interface":"eth0","ipv4":["a"]}]'}), True, False),
        (_pod(annotations={"ipam.spidernet.io/ippool": '{"ipv4":["a"]}'}), True, True),
        (_pod(owners=("ReplicaSet",)), False, False),
    ],
)
def test_ldr01_only_pods_the_agent_writes_no_endpoint_for_skip_the_read(pod: Any, lean_mode: bool,
                                                                        expected: bool) -> None:
    """LDR01: lean mode and a pod with no StatefulSet or kubevirt owner and no ``ippools`` annotation: no endpoint
    (the DEL skips the direct read); any of those, or the full mode: it may have one."""
    settings = ClusterSettings(enable_stateless_spider_endpoint=not lean_mode)
    assert goes_without_endpoint(pod, settings) is expected
