"""Kubernetes Events (``core/v1``) about spiderpool objects: what an operator sees in ``kubectl describe``.

An Event's name is derived from what it says (object UID, reason, message), so every agent that reaches the same
decision about a pool writes the same Event: the first create wins and the others find it there (``AlreadyExists``)
instead of flooding the namespace with copies.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from kubernetes_asyncio.client import ApiClient

from spiderpool.k8s.api_requests import request_json
from spiderpool.k8s.crd_schema import GROUP, VERSION
from spiderpool.k8s.leases import micro_time
from spiderpool.k8s.routes import ROUTES
from spiderpool.k8s.store import AlreadyExists

EVENT_NAMESPACE = "default"
"""Where Events about cluster-scoped objects (SpiderIPPools) live, as for Nodes."""


def event_name(obj: Mapping[str, Any], *, reason: str, message: str) -> str:
    """``<object name>.<digest of uid, reason and message>``: one name per distinct statement about the object."""
    meta = obj["metadata"]
    digest = hashlib.sha256(f"{meta.get('uid', '')}\n{reason}\n{message}".encode()).hexdigest()[:16]
    return f"{meta['name'][:200]}.{digest}"


class EventRecorder:
    """Writes Events about spiderpool objects as ``component`` on ``host``."""

    def __init__(self, api: ApiClient, *, component: str, host: str, request_timeout: float = 10.0) -> None:
        self._api = api
        self._component, self._host = component, host
        self._timeout = request_timeout

    async def warn(self, obj: Mapping[str, Any], *, kind: str, reason: str, message: str) -> bool:
        """A Warning Event about ``obj``; False when the same statement was recorded already (by anyone)."""
        meta = obj["metadata"]
        name = event_name(obj, reason=reason, message=message)
        now = micro_time()
        body = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": EVENT_NAMESPACE},
            "involvedObject": {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "name": meta["name"],
                               "uid": meta.get("uid", ""), "resourceVersion": meta.get("resourceVersion", "")},
            "reason": reason, "message": message[:1024], "type": "Warning", "count": 1,
            "firstTimestamp": now[:19] + "Z", "lastTimestamp": now[:19] + "Z",
            "source": {"component": self._component, "host": self._host},
            "reportingComponent": self._component, "reportingInstance": self._host,
        }
        path = ROUTES[("v1", "Event")].collection(EVENT_NAMESPACE)
        try:
            await request_json(self._api, "POST", path, body=body, what=f"create Event {EVENT_NAMESPACE}/{name}",
                               timeout=self._timeout)
        except AlreadyExists:
            return False
        return True
