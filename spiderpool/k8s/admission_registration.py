"""``admissionregistration.k8s.io/v1`` Mutating/ValidatingWebhookConfigurations: put (create or replace) and delete."""

from __future__ import annotations

from typing import Any, Final

from kubernetes_asyncio.client import ApiClient

from spiderpool.k8s.json_requests import request_json
from spiderpool.k8s.store import AlreadyExists, NotFound

_PREFIX: Final = "/apis/admissionregistration.k8s.io/v1"
PLURALS: Final = {
    "MutatingWebhookConfiguration": "mutatingwebhookconfigurations",
    "ValidatingWebhookConfiguration": "validatingwebhookconfigurations",
}


class WebhookConfigurations:
    def __init__(self, api: ApiClient, *, request_timeout: float = 10.0) -> None:
        self._api = api
        self._timeout = request_timeout

    async def get(self, kind: str, name: str) -> dict[str, Any]:
        return await request_json(self._api, "GET", f"{_PREFIX}/{PLURALS[kind]}/{name}", what=f"get {kind} {name}",
                                  request_timeout=self._timeout)

    async def put(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create ``body``, or replace the existing object of that name (last writer wins: it is ours)."""
        kind, name = body["kind"], body["metadata"]["name"]
        collection = f"{_PREFIX}/{PLURALS[kind]}"
        try:
            return await request_json(self._api, "POST", collection, what=f"create {kind} {name}", body=body,
                                      request_timeout=self._timeout)
        except AlreadyExists:
            current = await self.get(kind, name)
            meta = {**body["metadata"], "resourceVersion": current["metadata"]["resourceVersion"]}
            return await request_json(self._api, "PUT", f"{collection}/{name}", what=f"replace {kind} {name}",
                                      body={**body, "metadata": meta}, request_timeout=self._timeout)

    async def delete(self, kind: str, name: str, *, uid: str | None = None) -> bool:
        """Delete (only that incarnation when ``uid`` is given); False when already gone."""
        options: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if uid is not None:
            options["preconditions"] = {"uid": uid}
        try:
            await request_json(self._api, "DELETE", f"{_PREFIX}/{PLURALS[kind]}/{name}", body=options,
                               what=f"delete {kind} {name}", request_timeout=self._timeout)
        except NotFound:
            return False
        return True
