"""Plain-JSON CRUD for the built-in kinds the testbed plays with: Namespaces, Nodes, Pods (binding, status), and the
workload kinds and Multus NetworkAttachmentDefinitions that upstream's example manifests carry.

The testbed plays the scheduler (``pods/binding``) and the kubelet (pod status, deletion with grace 0), so it needs
writes the agent never makes; they live here because only this package may talk to the API server.  Objects go in
and come out as the JSON dicts the API server speaks (camelCase keys), read without model deserialization, so
creating a thousand pods costs a thousand requests and nothing more.  Failures raise the store's typed errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, cast

import orjson
from kubernetes_asyncio.client import ApiClient

from spiderpool.k8s.bodies import Namespace, Node, Pod
from spiderpool.k8s.crd_schema import GROUP, KINDS, VERSION
from spiderpool.k8s.store import NotFound, StoreError, error_for_status

__all__ = ["ROUTES", "CoreObjects", "ObjectRoute", "route_of"]


@dataclass(frozen=True, slots=True)
class ObjectRoute:
    """Where the API server serves one kind: ``/api/v1/...`` for the core group, ``/apis/<group>/<version>/...``."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool

    def collection(self, namespace: str | None) -> str:
        prefix = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        if self.namespaced:
            if not namespace:
                raise ValueError(f"metadata.namespace: {self.kind} is namespaced, got {namespace!r}")
            return f"{prefix}/namespaces/{namespace}/{self.plural}"
        if namespace:
            raise ValueError(f"metadata.namespace: {self.kind} is cluster-scoped, got {namespace!r}")
        return f"{prefix}/{self.plural}"

    def item(self, name: str, namespace: str | None) -> str:
        if not name:
            raise ValueError(f"metadata.name: required for a {self.kind}, got {name!r}")
        return f"{self.collection(namespace)}/{name}"


def _routes() -> dict[tuple[str, str], ObjectRoute]:
    builtin = [
        ObjectRoute("v1", "Namespace", "namespaces", namespaced=False),
        ObjectRoute("v1", "Node", "nodes", namespaced=False),
        ObjectRoute("v1", "Pod", "pods", namespaced=True),
        ObjectRoute("apps/v1", "Deployment", "deployments", namespaced=True),
        ObjectRoute("apps/v1", "ReplicaSet", "replicasets", namespaced=True),
        ObjectRoute("apps/v1", "StatefulSet", "statefulsets", namespaced=True),
        ObjectRoute("apps/v1", "DaemonSet", "daemonsets", namespaced=True),
        ObjectRoute("k8s.cni.cncf.io/v1", "NetworkAttachmentDefinition", "network-attachment-definitions", True),
    ]
    spiderpool = [ObjectRoute(f"{GROUP}/{VERSION}", kind.kind, kind.plural, kind.namespaced) for kind in KINDS]
    return {(route.api_version, route.kind): route for route in builtin + spiderpool}


ROUTES: Final[Mapping[tuple[str, str], ObjectRoute]] = _routes()
_POD: Final = ROUTES[("v1", "Pod")]
_NODE: Final = ROUTES[("v1", "Node")]
_NAMESPACE: Final = ROUTES[("v1", "Namespace")]


def route_of(body: Mapping[str, Any]) -> ObjectRoute:
    """The route of a manifest's ``apiVersion``/``kind``; ValueError naming both when the kind is not served here."""
    key = (str(body.get("apiVersion", "")), str(body.get("kind", "")))
    try:
        return ROUTES[key]
    except KeyError:
        known = ", ".join(f"{v} {k}" for v, k in ROUTES)
        raise ValueError(f"apiVersion/kind: {key[0]!r} {key[1]!r} is not one of: {known}") from None


def _error(status: int, body: bytes, *, what: str) -> StoreError:
    try:
        decoded = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        decoded = {}
    document = decoded if isinstance(decoded, dict) else {}
    reason, message = str(document.get("reason", "")), str(document.get("message", body[:300].decode(errors="replace")))
    return error_for_status(status, reason=reason, message=message, what=what)


class CoreObjects:
    """Requests on one ``ApiClient``; ``request_timeout`` bounds each so a hung API server becomes a StoreError."""

    def __init__(self, api: ApiClient, *, request_timeout: float = 30.0) -> None:
        self._api = api
        self._timeout = request_timeout

    async def _send(
        self,
        method: str,
        path: str,
        *,
        what: str,
        body: object = None,
        query: Mapping[str, object] | None = None,
        accept: str = "application/json",
    ) -> bytes:
        response = await self._api.call_api(
            path,
            method,
            query_params=[(key, value) for key, value in (query or {}).items() if value is not None],
            header_params={"Accept": accept, "Content-Type": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
            _preload_content=False,
            _request_timeout=self._timeout,
        )
        raw: bytes = await response.read()
        if not 200 <= response.status < 300:
            raise _error(response.status, raw, what=what)
        return raw

    async def _request(
        self, method: str, path: str, *, what: str, body: object = None, query: Mapping[str, object] | None = None
    ) -> dict[str, Any]:
        raw = await self._send(method, path, what=what, body=body, query=query)
        return cast(dict[str, Any], orjson.loads(raw)) if raw else {}

    async def read_metrics(self) -> str:
        """The API server's own ``/metrics`` (Prometheus text), e.g. ``apiserver_request_total`` to count writes."""
        raw = await self._send("GET", "/metrics", what="get /metrics", accept="text/plain")
        return raw.decode()

    # --- any kind of ROUTES ------------------------------------------------------------------------------------------

    async def create(self, body: Mapping[str, Any], *, namespace: str | None = None) -> dict[str, Any]:
        """Create a manifest as it is (``namespace`` fills in a namespaced manifest that names none)."""
        route = route_of(body)
        meta = dict(body.get("metadata") or {})
        if route.namespaced:
            meta.setdefault("namespace", namespace or "default")
        name = meta.get("name") or f"{meta.get('generateName', '')}*"
        what = f"create {route.kind} {meta.get('namespace', '')}/{name}".replace(" /", " ")
        path = route.collection(meta.get("namespace"))
        return await self._request("POST", path, what=what, body={**body, "metadata": meta})

    async def get(self, route: ObjectRoute, name: str, *, namespace: str | None = None) -> dict[str, Any]:
        what = f"get {route.kind} {namespace + '/' if namespace else ''}{name}"
        return await self._request("GET", route.item(name, namespace), what=what)

    async def list_objects(
        self, route: ObjectRoute, *, namespace: str | None = None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        """Every object (of ``namespace``; of all namespaces when it is None for a namespaced kind)."""
        path = route.collection(namespace) if namespace or not route.namespaced else _all_namespaces(route)
        found = await self._request("GET", path, what=f"list {route.plural}", query={"labelSelector": label_selector})
        return list(found.get("items") or [])

    async def delete(
        self,
        route: ObjectRoute,
        name: str,
        *,
        namespace: str | None = None,
        grace_period_seconds: int | None = None,
        uid: str | None = None,
        propagation: str = "Background",
    ) -> bool:
        """Delete; False when already gone.  ``uid`` deletes only that incarnation of the name."""
        options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if uid is not None:
            options["preconditions"] = {"uid": uid}
        what = f"delete {route.kind} {namespace + '/' if namespace else ''}{name}"
        try:
            await self._request("DELETE", route.item(name, namespace), what=what, body=options)
        except NotFound:
            return False
        return True

    # --- namespaces and nodes ----------------------------------------------------------------------------------------

    async def create_namespace(
        self, name: str, *, labels: Mapping[str, str] | None = None, annotations: Mapping[str, str] | None = None
    ) -> Namespace:
        meta = {"name": name, "labels": dict(labels or {}), "annotations": dict(annotations or {})}
        return cast(Namespace, await self.create({"apiVersion": "v1", "kind": "Namespace", "metadata": meta}))

    async def delete_namespace(self, name: str) -> bool:
        return await self.delete(_NAMESPACE, name)

    async def create_node(self, name: str, *, labels: Mapping[str, str] | None = None) -> Node:
        """A Node object for a simulated node: no kubelet ever reports on it, so it carries no conditions."""
        meta = {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}}
        return cast(Node, await self.create({"apiVersion": "v1", "kind": "Node", "metadata": meta}))

    async def delete_node(self, name: str) -> bool:
        return await self.delete(_NODE, name)

    # --- pods --------------------------------------------------------------------------------------------------------

    async def create_pod(self, body: Pod) -> Pod:
        """Create a pod; with ``spec.nodeName`` set it is bound at birth (what a scheduler's binding would do)."""
        return cast(Pod, await self.create({"apiVersion": "v1", "kind": "Pod", **body}))

    async def get_pod(self, name: str, *, namespace: str) -> Pod:
        return cast(Pod, await self.get(_POD, name, namespace=namespace))

    async def list_pods(self, *, namespace: str | None = None, label_selector: str | None = None) -> list[Pod]:
        return cast(list[Pod], await self.list_objects(_POD, namespace=namespace, label_selector=label_selector))

    async def delete_pod(
        self, name: str, *, namespace: str, grace_period_seconds: int | None = 0, uid: str | None = None
    ) -> bool:
        """Delete a pod; grace 0 removes a bound pod at once, as a kubelet does once its containers are gone."""
        return await self.delete(_POD, name, namespace=namespace, grace_period_seconds=grace_period_seconds, uid=uid)

    async def bind_pod(self, name: str, *, namespace: str, node_name: str) -> None:
        """The scheduler's act: POST ``pods/<name>/binding`` targeting ``node_name``."""
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": namespace},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node_name},
        }
        path = f"{_POD.item(name, namespace)}/binding"
        await self._request("POST", path, what=f"bind Pod {namespace}/{name} to {node_name}", body=binding)

    async def report_pod_running(self, pod: Pod, *, pod_ips: list[str]) -> Pod:
        """The kubelet's status report: phase Running, Ready, ``podIP``/``podIPs``; compare-and-swap on the version."""
        meta = pod["metadata"]
        status = {
            **pod.get("status", {}),
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "podIP": pod_ips[0] if pod_ips else None,
            "podIPs": [{"ip": ip} for ip in pod_ips],
        }
        body = {**pod, "apiVersion": "v1", "kind": "Pod", "status": status}
        path = f"{_POD.item(meta['name'], meta.get('namespace'))}/status"
        what = f"update status of Pod {meta.get('namespace')}/{meta['name']}"
        return cast(Pod, await self._request("PUT", path, what=what, body=body))


def _all_namespaces(route: ObjectRoute) -> str:
    prefix = "/api/v1" if route.api_version == "v1" else f"/apis/{route.api_version}"
    return f"{prefix}/{route.plural}"
