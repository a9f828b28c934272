"""Multus NetworkAttachmentDefinitions (``k8s.cni.cncf.io/v1``): their CRD, reads and writes, a watch source, and
Events (the controller's way to say why it left a NAD alone).

Bodies are the plain JSON dicts the API server speaks; failures raise the store's typed errors.
"""

from __future__ import annotations

import datetime
from typing import Any, Final

from kubernetes_asyncio.client import ApiClient

from spiderpool.k8s.api_errors import NotFound
from spiderpool.k8s.api_requests import request_json
from spiderpool.k8s.crd_schema import NAD_GROUP, NAD_PLURAL, NAD_VERSION
from spiderpool.k8s.routes import ROUTES
from spiderpool.k8s.watch_cache import ListWatchSource, list_watch_source

_NAD: Final = ROUTES[(f"{NAD_GROUP}/{NAD_VERSION}", "NetworkAttachmentDefinition")]
_EVENT: Final = ROUTES[("v1", "Event")]


def _path(namespace: str, name: str = "") -> str:
    return _NAD.item(name, namespace) if name else _NAD.collection(namespace)


class NetworkAttachments:
    def __init__(self, api: ApiClient, *, request_timeout: float = 30.0) -> None:
        self._api = api
        self._timeout = request_timeout

    async def get(self, name: str, *, namespace: str) -> dict[str, Any] | None:
        """The NAD, or None when there is none of that name."""
        try:
            return await request_json(self._api, "GET", _path(namespace, name), what=f"get NAD {namespace}/{name}",
                                      timeout=self._timeout)
        except NotFound:
            return None

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        meta = body["metadata"]
        return await request_json(self._api, "POST", _path(meta["namespace"]), body=body,
                                  what=f"create NAD {meta['namespace']}/{meta['name']}", timeout=self._timeout)

    async def replace(self, body: dict[str, Any]) -> dict[str, Any]:
        """Compare-and-swap on ``metadata.resourceVersion`` (Conflict when it moved)."""
        meta = body["metadata"]
        return await request_json(self._api, "PUT", _path(meta["namespace"], meta["name"]), body=body,
                                  what=f"update NAD {meta['namespace']}/{meta['name']}", timeout=self._timeout,
                                  resource_version=str(meta.get("resourceVersion", "")))

    async def delete(self, name: str, *, namespace: str) -> bool:
        try:
            await request_json(self._api, "DELETE", _path(namespace, name), what=f"delete NAD {namespace}/{name}",
                               timeout=self._timeout)
        except NotFound:
            return False
        return True


def network_attachment_source(api: ApiClient) -> ListWatchSource[Any]:
    """Every NAD of every namespace."""
    return list_watch_source(api, _NAD, what=NAD_PLURAL)


async def record_event(api: ApiClient, involved: dict[str, Any], *, event_type: str, reason: str, message: str,
                       component: str = "spiderpool-controller") -> dict[str, Any]:
    """A ``core/v1`` Event about ``involved`` (an object with apiVersion, kind and metadata)."""
    meta = involved["metadata"]
    namespace = meta.get("namespace") or "default"
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": namespace},
        "involvedObject": {"apiVersion": involved.get("apiVersion", ""), "kind": involved.get("kind", ""),
                           "name": meta["name"], "namespace": meta.get("namespace", ""), "uid": meta.get("uid", ""),
                           "resourceVersion": meta.get("resourceVersion", "")},
        "type": event_type, "reason": reason, "message": message,
        "source": {"component": component}, "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        "reportingComponent": component,
    }
    return await request_json(api, "POST", _EVENT.collection(namespace), body=body,
                              what=f"create Event {reason} for {involved.get('kind')} {meta['name']}")


async def list_events(api: ApiClient, *, namespace: str, involved_name: str) -> list[dict[str, Any]]:
    found = await request_json(api, "GET", _EVENT.collection(namespace), what=f"list Events of {involved_name}",
                               query={"fieldSelector": f"involvedObject.name={involved_name}"})
    return list(found.get("items") or [])
