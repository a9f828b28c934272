"""``admissionregistration.k8s.io/v1`` Mutating/ValidatingWebhookConfigurations: put (create or replace) and delete."""

from __future__ import annotations

from typing import Any, Final

from kubernetes_asyncio.client import ApiClient

from spiderpool.k8s.api_errors import AlreadyExists, NotFound
from spiderpool.k8s.api_requests import request_json
from spiderpool.k8s.routes import ROUTES

_GROUP_VERSION: Final = "admissionregistration.k8s.io/v1"
KINDS: Final = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")


def _collection(kind: str) -> str:
    return ROUTES[(_GROUP_VERSION, kind)].collection(None)


class WebhookConfigurations:
    def __init__(self, api: ApiClient, *, request_timeout: float = 10.0) -> None:
        self._api = api
        self._timeout = request_timeout

    async def get(self, kind: str, name: str) -> dict[str, Any]:
        return await request_json(self._api, "GET", f"{_collection(kind)}/{name}", what=f"get {kind} {name}",
                                  timeout=self._timeout)

    async def put(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create ``body``, or replace the existing object of that name (last writer wins: it is ours)."""
        kind, name = body["kind"], body["metadata"]["name"]
        collection = _collection(kind)
        try:
            return await request_json(self._api, "POST", collection, what=f"create {kind} {name}", body=body,
                                      timeout=self._timeout)
        except AlreadyExists:
            current = await self.get(kind, name)
            meta = {**body["metadata"], "resourceVersion": current["metadata"]["resourceVersion"]}
            return await request_json(self._api, "PUT", f"{collection}/{name}", what=f"replace {kind} {name}",
                                      body={**body, "metadata": meta}, timeout=self._timeout)

    async def delete(self, kind: str, name: str, *, uid: str | None = None) -> bool:
        """Delete (only that incarnation when ``uid`` is given); False when already gone."""
        options: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if uid is not None:
            options["preconditions"] = {"uid": uid}
        try:
            await request_json(self._api, "DELETE", f"{_collection(kind)}/{name}", body=options,
                               what=f"delete {kind} {name}", timeout=self._timeout)
        except NotFound:
            return False
        return True
