"""Top-controller resolution (with its TTL cache) and the agent's readiness rules."""

from __future__ import annotations

from typing import Any, cast

from spiderpool.agent.health import Readiness
from spiderpool.agent.owners import OwnerResolver
from spiderpool.core.selection_types import TopController
from spiderpool.k8s.workloads import WorkloadReader


class FakeReader:
    """The two reads the resolver makes, from a dict, counting them."""

    def __init__(self, objects: dict[tuple[str, str], dict[str, Any]]) -> None:
        self.objects = objects
        self.reads = 0

    async def replica_set(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.reads += 1
        return self.objects.get(("ReplicaSet", name))

    async def job(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.reads += 1
        return self.objects.get(("Job", name))


def ref(api_version: str, kind: str, name: str, *, controller: bool = True) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "name": name, "uid": f"uid-{name}", "controller": controller}


def pod(*owners: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "pod-uid", "ownerReferences": list(owners)}}


async def test_top_controllers() -> None:
    """AO01: Top controllers."""
    reader = FakeReader({
        ("ReplicaSet", "web-5d8f"): {"metadata": {"ownerReferences": [ref("apps/v1", "Deployment", "web")]}},
        ("ReplicaSet", "lonely"): {"metadata": {}},
        ("Job", "nightly-28"): {"metadata": {"ownerReferences": [ref("batch/v1", "CronJob", "nightly")]}},
    })
    now = [0.0]
    resolver = OwnerResolver(cast(WorkloadReader, reader), ttl=10.0, clock=lambda: now[0])

    async def top(*owners: dict[str, Any]) -> tuple[str, str, str]:
        controller: TopController = await resolver.top_controller(pod(*owners))
        return controller.api_version, controller.kind, controller.name

    assert await top() == ("v1", "Pod", "p")
    assert await top(ref("v1", "Node", "n", controller=False)) == ("v1", "Pod", "p")
    assert await top(ref("apps/v1", "ReplicaSet", "web-5d8f")) == ("apps/v1", "Deployment", "web")
    assert await top(ref("apps/v1", "ReplicaSet", "lonely")) == ("apps/v1", "ReplicaSet", "lonely")
    assert await top(ref("apps/v1", "ReplicaSet", "deleted")) == ("apps/v1", "ReplicaSet", "deleted")
    assert await top(ref("batch/v1", "Job", "nightly-28")) == ("batch/v1", "CronJob", "nightly")
    assert await top(ref("apps/v1", "StatefulSet", "db")) == ("apps/v1", "StatefulSet", "db")
    assert await top(ref("apps.kruise.io/v1alpha1", "CloneSet", "c")) == ("apps.kruise.io/v1alpha1", "CloneSet", "c")
    reads = reader.reads
    assert await top(ref("apps/v1", "ReplicaSet", "web-5d8f")) == ("apps/v1", "Deployment", "web")
    assert reader.reads == reads  # cached
    now[0] = 11.0
    await top(ref("apps/v1", "ReplicaSet", "web-5d8f"))
    assert reader.reads == reads + 1  # expired


def test_readiness_says_why_not() -> None:
    """AO02: Readiness says why not."""
    readiness = Readiness()
    assert readiness.problem() == "the agent's caches of pools, endpoints and pods have not synced yet"
    readiness.synced = True
    assert readiness.ready
    readiness.api_reachable = False
    assert readiness.problem() == "the Kubernetes API server is unreachable"
    readiness.stopping = True
    assert readiness.problem() == "the agent is stopping"
