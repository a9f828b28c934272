"""The one CRD installer: create or update each CRD, then wait until all are Established and served.

The daemons' tests call :func:`install_crds` on their event loop; the synchronous control-plane tooling calls it
through :class:`spiderpool.k8s.sync_api.SyncApi` (same requests, same errors).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final

from kubernetes_asyncio.client import ApiClient

from spiderpool.k8s.api_errors import AlreadyExists, Conflict, StoreError
from spiderpool.k8s.api_requests import request_json
from spiderpool.k8s.crd_schema import definitions_to_install
from spiderpool.k8s.routes import ObjectRoute

_CRD: Final = ObjectRoute("apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions", False)
_CONFLICT_RETRIES = 5
_POLL_INTERVAL = 0.1


class CrdNotEstablishedError(TimeoutError):
    """A CRD was not Established in time; the message carries its last conditions."""


async def install_crds(
    api: ApiClient,
    *,
    timeout: float = 60,  # noqa: ASYNC109 - the deadline spans many requests; the signature others code against
    crds: Sequence[Mapping[str, Any]] | None = None,
) -> list[str]:
    """Create or update ``crds`` (default: every project CRD and the NAD CRD), wait until each is Established and
    served; returns their names."""
    definitions = list(crds) if crds is not None else definitions_to_install()
    for crd in definitions:
        await _create_or_replace(api, crd)
    deadline = time.monotonic() + timeout
    for crd in definitions:
        await _wait_served(api, crd, deadline=deadline)
    return [crd["metadata"]["name"] for crd in definitions]


async def _create_or_replace(api: ApiClient, crd: Mapping[str, Any]) -> None:
    name = crd["metadata"]["name"]
    try:
        await request_json(api, "POST", _CRD.collection(None), what=f"create CRD {name}", body=dict(crd))
        return
    except AlreadyExists:
        pass
    for _ in range(_CONFLICT_RETRIES):
        current = await request_json(api, "GET", _CRD.item(name, None), what=f"get CRD {name}")
        version = current["metadata"]["resourceVersion"]
        body = {**crd, "metadata": {**crd["metadata"], "resourceVersion": version}}
        try:
            await request_json(api, "PUT", _CRD.item(name, None), what=f"replace CRD {name}", body=body,
                               resource_version=version)
            return
        except Conflict:
            continue
    raise RuntimeError(f"CRD {name}: {_CONFLICT_RETRIES} update attempts lost to concurrent writers (409 Conflict)")


def is_established(crd: Mapping[str, Any]) -> bool:
    conditions = crd.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


async def _served(api: ApiClient, crd: Mapping[str, Any]) -> str:
    """Empty when every served version lists; else why not (right after Established the resource's cache is still
    initializing and lists answer 429 "storage is (re)initializing")."""
    spec = crd["spec"]
    for version in (v["name"] for v in spec["versions"] if v.get("served", True)):
        path = f"/apis/{spec['group']}/{version}/{spec['names']['plural']}"
        try:
            await request_json(api, "GET", path, what=f"list {spec['names']['plural']}", query={"limit": 1})
        except StoreError as error:
            return f"listing {version} answers HTTP {error.status}"
    return ""


async def _wait_served(api: ApiClient, crd: Mapping[str, Any], *, deadline: float) -> None:
    name = crd["metadata"]["name"]
    while True:
        current = await request_json(api, "GET", _CRD.item(name, None), what=f"get CRD {name}")
        last = await _served(api, current) if is_established(current) else "not Established"
        if not last:
            return
        if time.monotonic() >= deadline:
            conditions = current.get("status", {}).get("conditions")
            raise CrdNotEstablishedError(f"CRD {name} not served in time ({last}); conditions: {conditions}")
        await asyncio.sleep(_POLL_INTERVAL)


async def every_crd_served(api: ApiClient) -> bool:
    """Every Established CRD answers a list.

    ``/readyz`` does not cover custom resources: after an API server (re)start each one's cache initializes anew and
    its lists answer 429 "storage is (re)initializing" for a moment, which clients would see as flaky failures.
    """
    listed = await request_json(api, "GET", _CRD.collection(None), what="list CRDs")
    for crd in listed.get("items") or []:
        if is_established(crd) and await _served(api, crd):
            return False
    return True
