"""One error mapping: the same failure, caused for real on the API server (or on a port nobody listens on), raises the
same exception type through every way this project talks to the API server.

The ways: the spiderpool kinds' store (custom objects), ``CoreObjects`` (built-in objects), ``LeaseStore`` (plain
JSON), ``WorkloadReader`` (the agent's direct reads), a watch source's list and watch, and ``SyncApi`` (the
devcluster's synchronous calls).  429 cannot be caused on demand without starving the shared API server; the unit
test of the mapping covers it (``tests/unit/test_api_errors.py``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import aclosing
from pathlib import Path
from typing import Any, cast

import pytest

from spiderpool.devcluster.cluster import ControlPlane
from spiderpool.devcluster.ports import free_port
from spiderpool.k8s.admission_registration import WebhookConfigurations
from spiderpool.k8s.api_errors import (
    AlreadyExists,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    ServerError,
    Unauthorized,
    Unavailable,
)
from spiderpool.k8s.client import ApiClient, close_api_client, make_api_client
from spiderpool.k8s.core_objects import ROUTES, CoreObjects
from spiderpool.k8s.leases import LeaseStore
from spiderpool.k8s.store import SpiderStores
from spiderpool.k8s.sync_api import SyncApi
from spiderpool.k8s.watch_cache import node_source
from spiderpool.k8s.workloads import WorkloadReader

from .api_support import new_service_account_token

pytestmark = pytest.mark.integration

Attempt = Callable[[], Awaitable[object]]
_NODE = ROUTES[("v1", "Node")]
_NAMESPACES = "/api/v1/namespaces"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def raised_by(attempts: dict[str, Attempt]) -> dict[str, type[BaseException] | None]:
    """The exception type each attempt raised (None: it did not fail)."""
    raised: dict[str, type[BaseException] | None] = {}
    for way, attempt in attempts.items():
        try:
            await attempt()
        except Exception as error:  # the point is to see which type comes out
            raised[way] = type(error)
        else:
            raised[way] = None
    return raised


def in_thread(call: Callable[[], object]) -> Attempt:
    """A SyncApi call run the way async code must run it (off the event loop's thread)."""

    async def attempt() -> object:
        return await asyncio.to_thread(call)

    return attempt


async def first_watch_event(api: ApiClient, resource_version: str) -> object:
    async with aclosing(node_source(api).watch(resource_version, 5)) as events:
        async for event in events:
            return event
    return None


def ways_of_reading(api: ApiClient, sync: SyncApi) -> dict[str, Attempt]:
    """One read through every way; each fails the same way when the server (or the network) refuses reads."""
    return {
        "custom object": lambda: SpiderStores(api, request_timeout=10).ippools.list(),
        "core object": lambda: CoreObjects(api, request_timeout=10).list_objects(_NODE),
        "lease": lambda: LeaseStore(api, namespace="default").get("anything"),
        "workload reader": lambda: WorkloadReader(api).pod("default", "anything"),
        "watch source": lambda: node_source(api).list(),
        "devcluster": in_thread(lambda: sync.get(_NAMESPACES)),
    }


@pytest.fixture
async def unreachable(control_plane: ControlPlane) -> AsyncIterator[tuple[ApiClient, SyncApi]]:
    """Clients for a port nobody listens on (connection refused), with the control plane's CA and token."""
    server = f"https://127.0.0.1:{free_port()}"
    api = await make_api_client(server=server, token=control_plane.token, ca_file=control_plane.ca_file)
    try:
        yield api, SyncApi(server=server, token=control_plane.token, ca_file=control_plane.ca_file, timeout=5)
    finally:
        await close_api_client(api)


async def test_ae01_connection_refused_is_unavailable_everywhere(unreachable: tuple[ApiClient, SyncApi]) -> None:
    """AE01: a stopped port: every way raises Unavailable (a StoreError with status 0, and a ConnectionError, so the
    CNI endpoint answers "try again"), never aiohttp's or the socket's own exception."""
    api, sync = unreachable
    raised = await raised_by(ways_of_reading(api, sync) | {"watch": lambda: first_watch_event(api, "1")})
    assert raised == dict.fromkeys(raised, Unavailable)
    assert await WorkloadReader(api).reachable(probe_seconds=5) is False
    with pytest.raises(Unavailable) as caught:
        await SpiderStores(api).ippools.get("anything")
    assert caught.value.status == 0
    assert isinstance(caught.value, ConnectionError)
    assert sync.is_ready() is False


async def test_ae02_not_found_is_not_found_everywhere(api: ApiClient, control_plane: ControlPlane) -> None:
    """AE02: HTTP 404 through the store, core objects, leases and the devcluster raises NotFound (the workload
    reader answers None by design)."""
    sync, name = control_plane.sync_api(), unique("absent")
    raised = await raised_by({
        "custom object": lambda: SpiderStores(api).ippools.get(name),
        "core object": lambda: CoreObjects(api).get(_NODE, name),
        "lease": lambda: LeaseStore(api, namespace="default").get(name),
        "devcluster": in_thread(lambda: sync.get(f"/api/v1/nodes/{name}")),
    })
    assert raised == dict.fromkeys(raised, NotFound)
    assert await WorkloadReader(api).pod("default", name) is None


async def test_ae03_conflicts_are_typed_everywhere(api: ApiClient, control_plane: ControlPlane) -> None:
    """AE03: HTTP 409: a create of an existing name raises AlreadyExists, a write on a stale resourceVersion raises
    Conflict, through every way that writes."""
    sync, stores, core, leases = control_plane.sync_api(), SpiderStores(api), CoreObjects(api), LeaseStore(
        api, namespace="default")
    pool = await stores.ippools.create({"metadata": {"name": unique("ae03")}, "spec": {"subnet": "10.203.0.0/24"}})
    namespace = await core.create_namespace(unique("ae03"))
    lease = await leases.create(unique("ae03"), spec={"holderIdentity": "a"})
    stale_namespace = {**namespace, "metadata": {**namespace["metadata"], "resourceVersion": "1"}}
    existing = namespace["metadata"]["name"]
    path = f"{_NAMESPACES}/{existing}"
    already = await raised_by({
        "custom object": lambda: stores.ippools.create({"metadata": {"name": pool["metadata"]["name"]}}),
        "core object": lambda: core.create_namespace(namespace["metadata"]["name"]),
        "lease": lambda: leases.create(lease["metadata"]["name"], spec={}),
        "devcluster": in_thread(lambda: sync.request("POST", _NAMESPACES, body=_namespace(existing))),
    })
    stale = await raised_by({
        "custom object": lambda: stores.ippools.replace(cast(Any, _stale(cast(Any, pool)))),
        "lease": lambda: leases.replace(_stale(lease)),
        "devcluster": in_thread(lambda: sync.request("PUT", path, body=stale_namespace)),
    })
    assert already == dict.fromkeys(already, AlreadyExists)
    assert stale == dict.fromkeys(stale, Conflict)


def _namespace(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}}


def _stale(body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "metadata": {**body["metadata"], "resourceVersion": "1"}}


async def test_ae04_invalid_bodies_are_invalid_everywhere(api: ApiClient, control_plane: ControlPlane) -> None:
    """AE04: HTTP 422 (a name the API server refuses, a spec its schema refuses) raises Invalid everywhere."""
    sync, pools = control_plane.sync_api(), SpiderStores(api).ippools
    bad = "Not_A_DNS_Name"
    raised = await raised_by({
        "custom object": lambda: pools.create(cast(Any, {"metadata": {"name": bad}, "spec": {"ipVersion": 5}})),
        "core object": lambda: CoreObjects(api).create_namespace(bad),
        "lease": lambda: LeaseStore(api, namespace="default").create(bad, spec={}),
        "devcluster": in_thread(lambda: sync.request("POST", _NAMESPACES, body=_namespace(bad))),
    })
    assert raised == dict.fromkeys(raised, Invalid)


@pytest.fixture(scope="module")
def uncached_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A control plane of this module's own whose API server reads etcd directly (``--watch-cache=false``): its
    answers about old resourceVersions are etcd's, which compaction makes "too old"."""
    with ControlPlane(state_dir=tmp_path_factory.mktemp("uncached"), apiserver_args=["--watch-cache=false"]) as plane:
        yield plane


async def test_ae05_gone_is_gone_everywhere(uncached_plane: ControlPlane) -> None:
    """AE05: etcd compacted (what kube-apiserver itself does every few minutes): a watch from a resourceVersion
    before the compaction (410 as an ERROR event) and an exact list at it (HTTP 410) both raise Gone, the error the
    watch cache answers with a relist."""
    await asyncio.to_thread(_compact_etcd, uncached_plane.etcd_url)
    sync = uncached_plane.sync_api()
    api = await make_api_client(kubeconfig=uncached_plane.kubeconfig)
    try:
        raised = await raised_by({
            "watch source": lambda: first_watch_event(api, "1"),
            "devcluster": in_thread(lambda: sync.get(_NAMESPACES, query={"resourceVersion": "1",
                                                                          "resourceVersionMatch": "Exact"})),
        })
    finally:
        await close_api_client(api)
    assert raised == dict.fromkeys(raised, Gone)


def _compact_etcd(etcd_url: str) -> None:
    """Compact etcd's history up to its current revision (its JSON gateway, as ``etcdctl compact`` would)."""
    def call(path: str, body: dict[str, object]) -> dict[str, Any]:
        request = urllib.request.Request(f"{etcd_url}{path}", data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(request, timeout=10) as reply:
            answer: dict[str, Any] = json.loads(reply.read())
        return answer

    revision = call("/v3/kv/range", {"key": base64.b64encode(b"/").decode()})["header"]["revision"]
    call("/v3/kv/compaction", {"revision": revision, "physical": True})


async def test_ae06_server_errors_are_server_errors_everywhere(api: ApiClient, control_plane: ControlPlane) -> None:
    """AE06: HTTP 500 (a validating webhook with failurePolicy Fail on a stopped port, for objects carrying this
    test's label only) raises ServerError, a Transient, through every way that creates."""
    label = {"spiderpool-test": unique("ae06")}
    webhook_name = f"{label['spiderpool-test']}.test.spiderpool.io"
    configurations = WebhookConfigurations(api)
    await configurations.put(_failing_webhook(webhook_name, label))
    sync = control_plane.sync_api()
    try:
        await _until_refused(CoreObjects(api), label)
        raised = await raised_by({
            "custom object": lambda: SpiderStores(api).ippools.create(
                {"metadata": {"name": unique("ae06"), "labels": label}, "spec": {"subnet": "10.206.0.0/24"}}),
            "core object": lambda: CoreObjects(api).create_namespace(unique("ae06"), labels=label),
            "devcluster": in_thread(lambda: sync.request("POST", _NAMESPACES, body=_namespace(unique("ae06"), label))),
        })
    finally:
        await configurations.delete("ValidatingWebhookConfiguration", webhook_name)
    assert raised == dict.fromkeys(raised, ServerError)


def _failing_webhook(name: str, label: dict[str, str]) -> dict[str, Any]:
    rules = [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["namespaces"]},
             {"apiGroups": ["spiderpool.spidernet.io"], "apiVersions": ["v2beta1"], "operations": ["CREATE"],
              "resources": ["spiderippools"]}]
    webhook = {"name": name, "rules": rules, "failurePolicy": "Fail", "sideEffects": "None",
               "admissionReviewVersions": ["v1"], "objectSelector": {"matchLabels": label}, "timeoutSeconds": 5,
               "clientConfig": {"url": f"https://127.0.0.1:{free_port()}/validate"}}
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": name}, "webhooks": [webhook]}


async def _until_refused(core: CoreObjects, label: dict[str, str], *, within: float = 30.0) -> None:
    """The API server picks a new webhook configuration up after a moment: wait until it is in force."""
    async with asyncio.timeout(within):
        while True:
            name = unique("ae06-probe")
            try:
                await core.create_namespace(name, labels=label)
            except ServerError:
                return
            await core.delete_namespace(name)
            await asyncio.sleep(0.2)


async def test_ae07_refused_credentials_are_typed_everywhere(
    api: ApiClient, control_plane: ControlPlane, tmp_path: Path
) -> None:
    """AE07: a ServiceAccount without any role (403) raises Forbidden, a token the server does not know (401)
    raises Unauthorized, through every way that reads."""
    _, token = await new_service_account_token(api, "ae07")
    outcomes = {}
    for label, credential in (("forbidden", token), ("unauthorized", "not-a-token")):
        client = await make_api_client(server=control_plane.server, token=credential, ca_file=control_plane.ca_file)
        sync = SyncApi(server=control_plane.server, token=credential, ca_file=control_plane.ca_file)
        try:
            outcomes[label] = await raised_by(ways_of_reading(client, sync))
        finally:
            await close_api_client(client)
    assert outcomes["forbidden"] == dict.fromkeys(outcomes["forbidden"], Forbidden)
    assert outcomes["unauthorized"] == dict.fromkeys(outcomes["unauthorized"], Unauthorized)
