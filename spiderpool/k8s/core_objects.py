"""Plain-JSON CRUD for the built-in kinds the testbed plays with: Namespaces, Nodes, Pods (binding, status), and the
workload kinds and Multus NetworkAttachmentDefinitions that upstream's example manifests carry.

The testbed plays the scheduler (``pods/binding``) and the kubelet (pod status, deletion with grace 0), so it needs
writes the agent never makes; they live here because only this package may talk to the API server.  Objects go in
and come out as the JSON dicts the API server speaks (camelCase keys), read without model deserialization, so
creating a thousand pods costs a thousand requests and nothing more.  Failures raise the store's typed errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, cast

from kubernetes_asyncio.client import ApiClient

from spiderpool.k8s.api_errors import NotFound
from spiderpool.k8s.api_requests import request_bytes, request_json
from spiderpool.k8s.bodies import Namespace, Node, Pod
from spiderpool.k8s.routes import ROUTES, ObjectRoute, route_of

__all__ = ["ROUTES", "CoreObjects", "ObjectRoute", "route_of"]

_POD: Final = ROUTES[("v1", "Pod")]
_NODE: Final = ROUTES[("v1", "Node")]
_NAMESPACE: Final = ROUTES[("v1", "Namespace")]


class CoreObjects:
    """Requests on one ``ApiClient``; ``request_timeout`` bounds each so a hung API server becomes a StoreError."""

    def __init__(self, api: ApiClient, *, request_timeout: float = 30.0) -> None:
        self._api = api
        self._timeout = request_timeout

    async def _request(
        self, method: str, path: str, *, what: str, body: object = None, query: Mapping[str, object] | None = None
    ) -> dict[str, Any]:
        return await request_json(self._api, method, path, what=what, body=body, query=query, timeout=self._timeout)

    async def read_metrics(self) -> str:
        """The API server's own ``/metrics`` (Prometheus text), e.g. ``apiserver_request_total`` to count writes."""
        raw = await request_bytes(self._api, "GET", "/metrics", what="get /metrics", accept="text/plain",
                                  timeout=self._timeout)
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
        query = {"labelSelector": label_selector}
        found = await self._request("GET", route.listing(namespace), what=f"list {route.plural}", query=query)
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

